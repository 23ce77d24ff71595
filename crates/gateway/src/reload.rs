//! Reloading the config without a restart (SPEC-2 section 13): the file is read and validated exactly as at
//! start-up, a new [`Snapshot`] is built that carries the health, counters and overrides of the targets whose
//! id, provider and model are unchanged, and it replaces the running one atomically.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use switchyard::health::{HealthRegistry, HealthSettings};

use crate::config::{Config, ConfigError, changed_paths, needs_restart};
use crate::state::{AppState, BuildError, Carry, ModelFactory, Snapshot};

/// Where a reload reads the config from and how it builds models.
pub(crate) struct Reloader {
    path: PathBuf,
    listen: Option<String>,
    factory: Arc<dyn ModelFactory>,
    /// The config the process started with: what settings needing a restart are compared to.
    started: Config,
    /// One reload at a time.
    one: Mutex<()>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Reloader {
    pub(crate) fn new(path: PathBuf, listen: Option<String>, factory: Arc<dyn ModelFactory>, started: Config) -> Self {
        Reloader { path, listen, factory, started, one: Mutex::new(()) }
    }
}

/// What a reload changed: the answer of `POST /admin/reload`.
#[derive(Debug, Clone, Serialize)]
pub struct Reloaded {
    /// Always true.
    pub reloaded: bool,
    /// sha256 of the file now running.
    pub hash: String,
    /// Key paths whose new values now apply.
    pub changed: Vec<String>,
    /// Key paths that differ from the running process's start but apply only after a restart.
    pub ignored: Vec<String>,
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The gateway runs the built-in default config.
    #[error("the gateway runs the built-in default config, which has no file to reload; start it with --config FILE")]
    NoFile,
    /// The file is invalid: the same text as `switchyard check`.
    #[error("{0}")]
    Invalid(#[from] ConfigError),
    /// The file is valid but a route cannot be built.
    #[error("{0}")]
    Build(#[from] BuildError),
}

/// What asked for a reload, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// `POST /admin/reload`.
    Admin,
    /// `SIGHUP`.
    Signal,
    /// `[server] watch_config`: the file changed.
    Watch,
}

impl AppState {
    /// Reloads the config file: on success the new config serves every request that starts from now on; on
    /// failure nothing changes. Either way it is logged and counted.
    pub fn reload(&self, trigger: Trigger) -> Result<Reloaded, ReloadError> {
        let result = self.try_reload();
        self.metrics.reloaded(result.is_ok());
        match &result {
            Ok(r) => {
                tracing::info!(?trigger, hash = %r.hash, changed = ?r.changed, "config reloaded");
                if !r.ignored.is_empty() {
                    tracing::warn!(ignored = ?r.ignored, "config keys changed that apply only after a restart");
                }
            }
            Err(e) => tracing::warn!(?trigger, "config not reloaded, the running one stays: {e}"),
        }
        result
    }

    fn try_reload(&self) -> Result<Reloaded, ReloadError> {
        let reloader = self.reloader.as_ref().ok_or(ReloadError::NoFile)?;
        let _one = reloader.one.lock().unwrap_or_else(PoisonError::into_inner);
        let result = self.reload_with(reloader);
        // Whether or not it succeeded (a failed build may have made pools too), the factory keeps only what
        // the running config uses; requests still on older models keep theirs until they finish.
        reloader.factory.retain_used(&self.current().config);
        result
    }

    /// The reload itself, `reloader`'s lock held.
    fn reload_with(&self, reloader: &Reloader) -> Result<Reloaded, ReloadError> {
        let config = Config::load(&reloader.path, reloader.listen.as_deref())?;
        let previous = self.current();
        let unchanged = unchanged_targets(&previous.config, &config);
        // Built on staged health: a build that fails leaves every entry as it was.
        let health = self.health.stage(start_fresh(&self.health, &config, &unchanged));
        let carry = Carry { previous: &previous, unchanged: &unchanged };
        let snapshot = Snapshot::build(&config, reloader.factory.as_ref(), health.registry(), Some(carry))?;
        health.commit();
        self.overrides.reapply(&snapshot, &unchanged);
        self.swap(snapshot);
        // Again on the running snapshot: an admin change made on the old one while this one was built applies.
        self.overrides.reapply(&self.current(), &unchanged);
        // Removed targets start fresh if they come back (managers still serving requests keep their entry).
        let now = targets(&config);
        for id in targets(&previous.config).keys().filter(|id| !now.contains_key(*id)) {
            self.health.forget(id);
        }
        let changed = changed_paths(&previous.config, &config).into_iter().filter(|p| !needs_restart(p)).collect();
        let ignored = changed_paths(&reloader.started, &config).into_iter().filter(|p| needs_restart(p)).collect();
        Ok(Reloaded { reloaded: true, hash: config.file.hash.clone(), changed, ignored })
    }
}

/// Each target id of `config` with its (provider, model).
fn targets(config: &Config) -> BTreeMap<&str, (&str, &str)> {
    config
        .routes
        .values()
        .flat_map(|r| &r.targets)
        .map(|t| (t.id.as_str(), (t.provider.as_str(), t.model.as_str())))
        .collect()
}

/// The target ids of `new` whose provider and model are those they had in `old`.
fn unchanged_targets(old: &Config, new: &Config) -> BTreeSet<String> {
    let before = targets(old);
    targets(new).into_iter().filter(|(id, t)| before.get(id) == Some(t)).map(|(id, _)| id.to_owned()).collect()
}

/// The targets of `config` whose health must start fresh: new or changed ones (not in `unchanged`), and
/// those whose breaker, retry budget or limits changed (one entry cannot follow two settings, and an open
/// breaker under the old settings would not mean the same under the new).
fn start_fresh(health: &HealthRegistry, config: &Config, unchanged: &BTreeSet<String>) -> Vec<String> {
    let mut fresh = Vec::new();
    for route in config.routes.values() {
        for target in &route.targets {
            let settings = HealthSettings {
                breaker: route.breaker.clone(),
                retry_budget: route.retry_budget,
                limits: target.limits,
            };
            let Some(entry) = health.get(&target.id) else { continue };
            if !unchanged.contains(&target.id) {
                fresh.push(target.id.clone());
            } else if *entry.settings() != settings {
                tracing::info!(target_id = %target.id, "breaker, retry budget or limits changed: its health starts fresh with the new config");
                fresh.push(target.id.clone());
            }
        }
    }
    fresh
}
