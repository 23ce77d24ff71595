//! Runtime overrides of a route's targets (admin enable, priority, max_retries), kept per (route, target)
//! so `/admin/routes` can show them and `DELETE …/override` can return a target to its config values
//! (SPEC-2 section 9). Where they persist or travel is not this module's business: each [`OverrideSink`]
//! hears every change made here, [`Overrides::restore`] takes what a store loaded, and
//! [`Overrides::set_shared`] takes what another replica made.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use switchyard::TargetError;

use crate::state::{Route, Snapshot};

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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Change {
    /// New enabled flag.
    pub enabled: Option<bool>,
    /// New priority.
    pub priority: Option<i32>,
    /// New retries.
    pub max_retries: Option<u32>,
}

/// Hears every override change made on this replica, e.g. to store it or share it.
pub trait OverrideSink: Send + Sync + std::fmt::Debug {
    /// `target` on `route` now has `value` (None: cleared); `set` holds the fields this change wrote
    /// (all None when cleared), so a sink can tell them from fields set earlier.
    fn changed(&self, route: &str, target: &str, value: Option<&Override>, set: Change);

    /// A reload took `target` on `route` out of this replica's config, so its override went here only:
    /// other replicas may still run the target (a rolling config change). A sink keeping this replica's own
    /// record forgets it; one telling other replicas must not. Default: nothing.
    fn dropped(&self, _route: &str, _target: &str) {}
}

/// Every override of this process.
#[derive(Debug)]
pub struct Overrides {
    instance: String,
    current: Mutex<BTreeMap<(String, String), Override>>,
    sinks: Vec<Arc<dyn OverrideSink>>,
}

impl Default for Overrides {
    fn default() -> Self {
        Overrides::new("local".to_owned())
    }
}

impl Overrides {
    /// Overrides made by `instance`, told to no sink yet.
    pub fn new(instance: String) -> Self {
        Overrides { instance, current: Mutex::new(BTreeMap::new()), sinks: Vec::new() }
    }

    /// The same overrides, each later change also told to `sink`.
    pub fn with_sink(mut self, sink: Arc<dyn OverrideSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// The instance id changes made here carry in `by`.
    pub fn instance(&self) -> &str {
        &self.instance
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
        for sink in &self.sinks {
            sink.changed(route, target, Some(&value), change);
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
        for sink in &self.sinks {
            sink.changed(route, target, None, Change::default());
        }
        removed
    }

    /// Forgets the override of `target` on `route` here only, for a target gone from this replica's config:
    /// sinks hear [`OverrideSink::dropped`], not a clear (other replicas keep theirs).
    fn drop_local(&self, route: &str, target: &str) {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).remove(&(route.to_owned(), target.to_owned()));
        for sink in &self.sinks {
            sink.dropped(route, target);
        }
    }

    /// The override of `target` on `route`, if any.
    pub fn get(&self, route: &str, target: &str) -> Option<Override> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).get(&(route.to_owned(), target.to_owned())).cloned()
    }

    /// Every override, by (route, target).
    pub fn all(&self) -> Vec<((String, String), Override)> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Takes the override of `target` on `route` another replica made (None: cleared there), without
    /// telling the sinks: the caller has already applied it to the route.
    pub fn set_shared(&self, route: &str, target: &str, value: Option<Override>) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (route.to_owned(), target.to_owned());
        match value {
            Some(value) => current.insert(key, value),
            None => current.remove(&key),
        };
    }

    /// Takes overrides a store loaded (without telling the sink), applying each to its route.
    pub fn restore(&self, loaded: Vec<(Arc<Route>, String, Override)>) {
        for (route, target, value) in loaded {
            if let Err(e) = apply(&route, &target, value.change()) {
                tracing::warn!(route = %route.name, target_id = %target, "stored override not applied: {e}");
                continue;
            }
            self.current.lock().unwrap_or_else(PoisonError::into_inner).insert((route.name.to_string(), target), value);
        }
    }
}

impl Overrides {
    /// Applies every override to a snapshot built from a reloaded config (overrides win over the file until
    /// cleared). An override of a route or target the snapshot lacks, or of a target whose provider or model
    /// changed (not in `unchanged`), is dropped here, not cleared cluster-wide: such a target starts fresh on
    /// this replica (and after its restart), while replicas still running the old config keep theirs.
    pub fn reapply(&self, snapshot: &Snapshot, unchanged: &BTreeSet<String>) {
        let current: Vec<_> = self.current.lock().unwrap_or_else(PoisonError::into_inner).clone().into_iter().collect();
        for ((route_name, target), value) in current {
            let route = snapshot.resolve(&route_name).filter(|r| r.configured(&target).is_some());
            let applied = match route {
                Some(route) if unchanged.contains(&target) => apply(route, &target, value.change()),
                _ => {
                    tracing::info!(route = %route_name, target_id = %target, "override dropped: gone from the config");
                    self.drop_local(&route_name, &target);
                    continue;
                }
            };
            if let Err(e) = applied {
                tracing::warn!(route = %route_name, target_id = %target, "override not applied after reload: {e}");
            }
        }
    }
}

impl Override {
    /// The fields it sets.
    fn change(&self) -> Change {
        Change { enabled: self.enabled, priority: self.priority, max_retries: self.max_retries }
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
