//! `event: target` of `/admin/events`: a target's enabled flag or breaker changed on a route.

use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::state::Route;

/// One change of a target on one route.
#[derive(Debug, Clone, Serialize)]
pub struct TargetEvent {
    /// The route listing the target.
    pub route: String,
    /// The target id.
    pub target: String,
    /// Whether requests may call it.
    pub enabled: bool,
    /// `closed`, `open` or `half_open`.
    pub breaker: &'static str,
    /// When it changed, RFC 3339.
    pub at: String,
}

impl TargetEvent {
    /// The target's current state on `route`, changed `at`; None when the route does not list it.
    pub fn of(route: &Route, target: &str, at: SystemTime) -> Option<TargetEvent> {
        let info = route.manager.list_models().into_iter().find(|t| t.id == target)?;
        Some(TargetEvent {
            route: route.name.to_string(),
            target: info.id,
            enabled: info.enabled,
            breaker: info.breaker.as_str(),
            at: humantime::format_rfc3339_millis(at).to_string(),
        })
    }
}

/// Where admin changes are announced (breaker changes come from the health registry).
#[derive(Debug)]
pub struct TargetEvents(broadcast::Sender<TargetEvent>);

impl Default for TargetEvents {
    fn default() -> Self {
        TargetEvents(broadcast::channel(256).0)
    }
}

impl TargetEvents {
    /// Announces the current state of `target` on `route` (after an admin change).
    pub fn changed(&self, route: &Route, target: &str) {
        if self.0.receiver_count() > 0
            && let Some(event) = TargetEvent::of(route, target, SystemTime::now())
        {
            let _ = self.0.send(event);
        }
    }

    /// Admin changes as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<TargetEvent> {
        self.0.subscribe()
    }
}
