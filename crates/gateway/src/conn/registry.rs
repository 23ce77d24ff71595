//! The open connections, so a shutdown can reach each one; and the open-connections gauge.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::activity::{Activity, Stage};
use crate::state::AppState;

/// Every open connection's [`Activity`], by a sequence number.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    open: Mutex<HashMap<u64, Arc<Activity>>>,
    next: std::sync::atomic::AtomicU64,
}

impl Registry {
    /// Adds a connection; the returned guard removes it (and counts it closed) when dropped.
    pub(crate) fn add(self: &Arc<Self>, state: &Arc<AppState>) -> (Arc<Activity>, Open) {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let activity = Arc::new(Activity::new());
        self.open.lock().unwrap_or_else(PoisonError::into_inner).insert(id, activity.clone());
        state.metrics.connections.opened();
        (activity, Open { id, registry: self.clone(), state: state.clone() })
    }

    /// Moves every open connection to `stage` (the accept loop has stopped: no connection comes later).
    pub(crate) fn set_stage(&self, stage: Stage) {
        for activity in self.open.lock().unwrap_or_else(PoisonError::into_inner).values() {
            activity.set_stage(stage);
        }
    }
}

/// An open connection's place in the registry and the gauge.
#[derive(Debug)]
pub(crate) struct Open {
    id: u64,
    registry: Arc<Registry>,
    state: Arc<AppState>,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.registry.open.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
        self.state.metrics.connections.closed();
    }
}
