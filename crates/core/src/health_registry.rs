//! The health registry: one health entry (breaker, failure window, retry budget, latency window) per
//! target id, shared by every [`FallbackManager`](crate::FallbackManager) built with it, so an upstream
//! used by several managers opens its breaker once for all of them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use tokio::sync::broadcast;

use crate::breaker::{Announcer, BreakerChange, BreakerState};
use crate::health::{Health, HealthSettings};
use crate::lease::LeaseBoard;

/// Health entries by target id. Cheap to clone: clones share the entries.
///
/// ```
/// # use switchyard::{breaker::BreakerConfig, health::{HealthRegistry, HealthSettings}};
/// # use std::time::Duration;
/// let registry = HealthRegistry::new();
/// let settings = HealthSettings::default();
/// registry.entry("openai/gpt-4o", &settings).unwrap();
/// assert!(registry.entry("openai/gpt-4o", &settings).is_ok()); // the same entry
/// let other = HealthSettings { breaker: Some(BreakerConfig::new(2, Duration::from_secs(5))), ..settings };
/// assert!(registry.entry("openai/gpt-4o", &other).is_err()); // one target, one set of settings
/// ```
#[derive(Debug, Clone)]
pub struct HealthRegistry {
    entries: Arc<Mutex<HashMap<String, Arc<Health>>>>,
    changes: broadcast::Sender<BreakerChange>,
    probe_claims: Arc<AtomicBool>,
    /// Where targets' `rpm`/`tpm` lease a cluster-wide budget; `None`: limits per process.
    leases: Option<Arc<LeaseBoard>>,
}

/// Breaker changes a slow subscriber may fall behind by before it misses some.
const CHANGES_BUFFER: usize = 1024;

impl Default for HealthRegistry {
    fn default() -> Self {
        Self {
            entries: Arc::default(),
            changes: broadcast::channel(CHANGES_BUFFER).0,
            probe_claims: Arc::default(),
            leases: None,
        }
    }
}

impl HealthRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same empty registry whose targets' `rpm`/`tpm` lease from `board` (cluster-wide limits).
    pub fn with_leases(mut self, board: Arc<LeaseBoard>) -> Self {
        self.leases = Some(board);
        self
    }

    /// The board targets lease their `rpm`/`tpm` from, if limits are cluster-wide.
    pub fn leases(&self) -> Option<&Arc<LeaseBoard>> {
        self.leases.as_ref()
    }

    /// Every breaker change of every target from now on (opened, half-open for a probe, closed). A
    /// subscriber that falls more than a thousand changes behind is told how many it missed.
    pub fn subscribe(&self) -> broadcast::Receiver<BreakerChange> {
        self.changes.subscribe()
    }

    /// Turns probe claims on or off (default off). On, a breaker whose cooldown ended lets a request
    /// probe only after [`TargetHealth::allow_probe`]: replicas sharing breakers claim the one probe
    /// among them, and the others keep skipping the target until the winner's verdict arrives. Turn it
    /// off while the replicas cannot reach each other, so each probes for itself.
    pub fn set_probe_claims(&self, on: bool) {
        self.probe_claims.store(on, Ordering::Relaxed);
    }

    /// The entry for target `id`, created with `settings` if there is none yet. An existing entry built
    /// with other settings is an error: its breaker and budget cannot follow two configurations at once.
    pub fn entry(&self, id: &str, settings: &HealthSettings) -> Result<TargetHealth, HealthConflict> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(health) = entries.get(id) {
            if health.settings != *settings {
                return Err(HealthConflict {
                    id: id.to_owned(),
                    existing: Box::new(health.settings.clone()),
                    requested: Box::new(settings.clone()),
                });
            }
            return Ok(TargetHealth { health: health.clone() });
        }
        let announcer =
            Announcer { target: id.to_owned(), changes: self.changes.clone(), probe_claims: self.probe_claims.clone() };
        let health = Arc::new(Health::new(id, settings.clone(), Some(announcer), self.leases.as_ref()));
        entries.insert(id.to_owned(), health.clone());
        Ok(TargetHealth { health })
    }

    /// Drops the entry of target `id`: the next manager built with it starts with fresh health (managers
    /// built before keep the entry they hold). For a target removed from, or changed in, a reloaded config.
    pub fn forget(&self, id: &str) {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
    }

    /// A registry to build managers that are to replace the running ones with (a config reload): it has
    /// this registry's entries except those of `fresh`, which it creates anew when asked, and it changes
    /// nothing here until [`HealthStage::commit`]. Dropped uncommitted (the build failed), this registry
    /// stays as it was.
    ///
    /// ```
    /// # use switchyard::health::{HealthRegistry, HealthSettings};
    /// let registry = HealthRegistry::new();
    /// let (old, new) = (HealthSettings::default(), HealthSettings { retry_budget: None, ..Default::default() });
    /// registry.entry("a", &old).unwrap();
    /// let stage = registry.stage(["a".to_owned()]);
    /// assert!(stage.registry().entry("a", &new).is_ok(), "a starts fresh in the stage");
    /// drop(stage); // the build failed
    /// assert_eq!(*registry.get("a").unwrap().settings(), old);
    /// let stage = registry.stage(["a".to_owned()]);
    /// stage.registry().entry("a", &new).unwrap();
    /// stage.commit();
    /// assert_eq!(*registry.get("a").unwrap().settings(), new);
    /// ```
    pub fn stage(&self, fresh: impl IntoIterator<Item = String>) -> HealthStage {
        let fresh: Vec<String> = fresh.into_iter().collect();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner).clone();
        for id in &fresh {
            entries.remove(id);
        }
        let registry = HealthRegistry { entries: Arc::new(Mutex::new(entries)), ..self.clone() };
        HealthStage { origin: self.clone(), registry, fresh }
    }

    /// The entry for target `id`, if one was created.
    pub fn get(&self, id: &str) -> Option<TargetHealth> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(id).map(|health| TargetHealth { health: health.clone() })
    }

    /// The target ids that have an entry, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> =
            self.entries.lock().unwrap_or_else(PoisonError::into_inner).keys().cloned().collect();
        ids.sort_unstable();
        ids
    }
}

/// Health entries for managers being built to replace the running ones; see [`HealthRegistry::stage`].
#[derive(Debug)]
pub struct HealthStage {
    origin: HealthRegistry,
    registry: HealthRegistry,
    fresh: Vec<String>,
}

impl HealthStage {
    /// The registry to build the new managers with.
    pub fn registry(&self) -> &HealthRegistry {
        &self.registry
    }

    /// The new managers are built: the registry they were built with becomes the running one's (the old
    /// entries of the fresh targets are dropped, managers still serving keep the entry they hold).
    pub fn commit(self) {
        let staged = self.registry.entries.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let mut entries = self.origin.entries.lock().unwrap_or_else(PoisonError::into_inner);
        for id in &self.fresh {
            entries.remove(id);
        }
        entries.extend(staged);
    }
}

/// One target's entry in a [`HealthRegistry`]. Cheap to clone: clones are the same entry.
#[derive(Debug, Clone)]
pub struct TargetHealth {
    health: Arc<Health>,
}

impl TargetHealth {
    /// The settings the entry was created with.
    pub fn settings(&self) -> &HealthSettings {
        &self.health.settings
    }

    /// Its circuit breaker now.
    pub fn breaker_state(&self) -> BreakerState {
        self.health.breaker.state()
    }

    /// When its breaker last changed state; `None` if it never did.
    pub fn breaker_since(&self) -> Option<SystemTime> {
        self.health.breaker.since()
    }

    /// Another replica opened the breaker until `until` (wall clock): skip the target here until the same
    /// instant. Only extends an open period. Announced with `remote: true`.
    pub fn hold_open_until(&self, until: SystemTime) {
        self.health.breaker.hold_open_until(until);
    }

    /// Another replica's probe succeeded: close the breaker here too. Announced with `remote: true`.
    pub fn close(&self) {
        self.health.breaker.close();
    }

    /// This replica won the probe claim for the current open period: once the cooldown ends, the next
    /// request probes (see [`HealthRegistry::set_probe_claims`]).
    pub fn allow_probe(&self) {
        self.health.breaker.allow_probe();
    }

    /// Gives the probe claim back (no request came to probe while it was held) unless a probe already
    /// runs; true when it was given back. Other replicas may then claim the probe.
    pub fn withdraw_probe(&self) -> bool {
        self.health.breaker.withdraw_probe()
    }

    /// When the current open period ends (wall clock), while the breaker is open or half-open.
    pub fn open_until(&self) -> Option<SystemTime> {
        self.health.breaker.open_until()
    }

    /// True while a request probes the target here.
    pub fn probing(&self) -> bool {
        self.health.breaker.probing()
    }

    /// The shared state, for the engine's slots.
    pub(crate) fn shared(&self) -> &Arc<Health> {
        &self.health
    }
}

/// A target asked for with settings other than those its health entry has.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "target `{id}` already has health settings {existing:?}, not {requested:?}: every user of one target shares its \
     breaker and retry budget, so give them the same settings"
)]
pub struct HealthConflict {
    /// The target id.
    pub id: String,
    /// The entry's settings.
    pub existing: Box<HealthSettings>,
    /// The settings asked for.
    pub requested: Box<HealthSettings>,
}
