//! Runtime overrides of a route's targets (admin enable, priority, max_retries), kept per (route, target)
//! so `/admin/routes` can show them and `DELETE …/override` can return a target to its config values
//! (SPEC-2 section 9). Where they persist is not this module's business: a [`OverrideSink`] hears every
//! change, and [`Overrides::restore`] takes what a store loaded.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use switchyard::TargetError;

use crate::state::Route;

/// One target's overrides on one route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    /// Enabled or disabled by an admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Priority set by an admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Retries set by an admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// The instance that made the last change.
    pub by: String,
    /// When, RFC 3339.
    pub at: String,
}

/// The fields of an admin change.
#[derive(Debug, Clone, Copy, Default)]
pub struct Change {
    /// New enabled flag.
    pub enabled: Option<bool>,
    /// New priority.
    pub priority: Option<i32>,
    /// New retries.
    pub max_retries: Option<u32>,
}

/// Hears every override change (Some: the new value; None: cleared), e.g. to store it.
pub trait OverrideSink: Send + Sync + std::fmt::Debug {
    /// `target` on `route` now has `value`.
    fn changed(&self, route: &str, target: &str, value: Option<&Override>);
}

/// Every override of this process.
#[derive(Debug)]
pub struct Overrides {
    instance: String,
    current: Mutex<BTreeMap<(String, String), Override>>,
    sink: Option<Arc<dyn OverrideSink>>,
}

impl Default for Overrides {
    fn default() -> Self {
        Overrides::new("local".to_owned(), None)
    }
}

impl Overrides {
    /// Overrides made by `instance`, each change told to `sink`.
    pub fn new(instance: String, sink: Option<Arc<dyn OverrideSink>>) -> Self {
        Overrides { instance, current: Mutex::new(BTreeMap::new()), sink }
    }

    /// Records an admin change of `target` on `route` (fields merge with earlier ones).
    pub fn record(&self, route: &str, target: &str, change: Change) {
        let value = {
            let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
            let entry = current.entry((route.to_owned(), target.to_owned())).or_insert_with(|| Override {
                enabled: None,
                priority: None,
                max_retries: None,
                by: String::new(),
                at: String::new(),
            });
            entry.enabled = change.enabled.or(entry.enabled);
            entry.priority = change.priority.or(entry.priority);
            entry.max_retries = change.max_retries.or(entry.max_retries);
            entry.by = self.instance.clone();
            entry.at = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
            entry.clone()
        };
        if let Some(sink) = &self.sink {
            sink.changed(route, target, Some(&value));
        }
    }

    /// Forgets the override of `target` on `route`; true when there was one.
    pub fn clear(&self, route: &str, target: &str) -> bool {
        let removed = self
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(route.to_owned(), target.to_owned()))
            .is_some();
        if let Some(sink) = &self.sink {
            sink.changed(route, target, None);
        }
        removed
    }

    /// The override of `target` on `route`, if any.
    pub fn get(&self, route: &str, target: &str) -> Option<Override> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).get(&(route.to_owned(), target.to_owned())).cloned()
    }

    /// Takes overrides a store loaded (without telling the sink), applying each to its route.
    pub fn restore(&self, loaded: Vec<(Arc<Route>, String, Override)>) {
        for (route, target, value) in loaded {
            let change = Change { enabled: value.enabled, priority: value.priority, max_retries: value.max_retries };
            if let Err(e) = apply(&route, &target, change) {
                tracing::warn!(route = %route.name, target_id = %target, "stored override not applied: {e}");
                continue;
            }
            self.current.lock().unwrap_or_else(PoisonError::into_inner).insert((route.name.to_string(), target), value);
        }
    }
}

/// Applies `change` to `target` on `route`'s engine.
pub fn apply(route: &Route, target: &str, change: Change) -> Result<(), TargetError> {
    if let Some(enabled) = change.enabled {
        if enabled {
            route.manager.enable_model(target)?;
        } else {
            route.manager.disable_model(target)?;
        }
    }
    if let Some(priority) = change.priority {
        route.manager.set_priority(target, priority)?;
    }
    if let Some(max_retries) = change.max_retries {
        route.manager.set_max_retries(target, max_retries)?;
    }
    Ok(())
}
