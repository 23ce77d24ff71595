//! The gateway's TOML configuration: parsing, `${VAR}` expansion, defaults and validation.
//!
//! Every error names the key path it is about, e.g. `routes.default.targets[1].provider: unknown provider "x"`.

mod client_keys;
mod diff;
mod duration;
mod env;
mod error;
mod file;
mod provider;
mod redact;
mod route;
mod secret;
mod server;
mod shared_health;
mod state;
mod storage;
mod timeouts;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

pub use client_keys::{ClientKeyConfig, ClientKeySection};
pub use diff::{changed_paths, needs_restart, paths_between};
pub use duration::{ByteSize, Dur};
pub use error::{ConfigError, KeyPath, Problem};
pub use file::{ConfigFile, hash_of};
pub use provider::{Kind as ProviderKind, ProviderConfig, ProviderSection};
pub use route::{RouteConfig, RouteSection, TargetConfig};
pub use secret::Secret;
pub use server::{ServerConfig, ServerSection};
pub use state::{Backend, RedisConfig, StateConfig, StateSection};
pub use storage::StorageSection;
pub use timeouts::{Timeouts, TimeoutsSection};

/// The whole file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[server]`.
    #[serde(default)]
    pub server: ServerSection,
    /// `[providers.NAME]`.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderSection>,
    /// `[routes.NAME]`.
    #[serde(default)]
    pub routes: BTreeMap<String, RouteSection>,
    /// `[state]`.
    #[serde(default)]
    pub state: StateSection,
    /// `[storage]`.
    #[serde(default)]
    pub storage: StorageSection,
}

/// Whether a target can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// It can.
    Ready,
    /// `enabled = false` in the config.
    Disabled,
    /// It cannot (e.g. its key variable is unset).
    Unavailable,
}

/// A validated configuration, ready to build the gateway from.
#[derive(Debug, Clone)]
pub struct Config {
    /// Server settings.
    pub server: ServerConfig,
    /// Providers by name.
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Routes by name.
    pub routes: BTreeMap<String, RouteConfig>,
    /// Where replicas share state.
    pub state: StateConfig,
    /// The request log's database; None when `storage.enabled = false`.
    pub storage: Option<crate::storage::StorageConfig>,
    /// The text it was read from, as a tree with variables expanded, and its hash.
    pub file: ConfigFile,
}

impl Config {
    /// Reads and validates a file, with variables from the process environment.
    pub fn load(path: &Path, listen_override: Option<&str>) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Read { file: path.to_owned(), message: e.to_string() })?;
        let mut config =
            Config::parse(&text, &|var| std::env::var(var).ok(), listen_override).map_err(|e| e.in_file(path))?;
        storage::relative_to(&mut config.storage, path);
        Ok(config)
    }

    /// Parses and validates TOML text; `lookup` reads variables.
    pub fn parse(
        text: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
        listen_override: Option<&str>,
    ) -> Result<Config, ConfigError> {
        let mut tree: toml::Value =
            toml::from_str(text).map_err(|e| ConfigError::Toml { file: None, message: e.to_string() })?;
        let unset = env::expand(&mut tree, lookup).map_err(|problem| ConfigError::from(vec![problem]))?;
        let file = ConfigFile::new(text, &tree);
        let raw: RawConfig = serde_path_to_error::deserialize(tree).map_err(|e| {
            let path = e.path().to_string();
            ConfigError::from(vec![Problem::at(path, e.into_inner().to_string())])
        })?;
        let mut config = Config::validate(raw, &unset, listen_override)?;
        config.file = file;
        Ok(config)
    }

    /// Validates a parsed file; `unset` lists the variables the environment lacked, by key path. Every problem
    /// is reported, one a line, not only the first.
    fn validate(raw: RawConfig, unset: &[env::Unset], listen_override: Option<&str>) -> Result<Config, ConfigError> {
        let unset_under = |prefix: &str| -> Vec<String> {
            let mut vars: Vec<String> = unset
                .iter()
                .filter(|u| u.path == prefix || u.path.starts_with(&format!("{prefix}.")))
                .map(|u| u.var.clone())
                .collect();
            vars.dedup();
            vars
        };
        let mut problems = Vec::new();
        // An unset variable in [server] must stop start-up: it must never switch auth off.
        for u in unset.iter().filter(|u| u.path.starts_with("server")) {
            problems.push(Problem::at(
                u.path.as_str(),
                format!("environment variable ${} is not set; set it, or remove the key", u.var),
            ));
        }
        let mut server = raw.server.validate(listen_override).map_err(|e| problems.push(e)).ok();
        let state = raw.state.validate(&unset_under("state")).map_err(|e| problems.push(e)).ok();
        let mut providers = BTreeMap::new();
        let mut broken_providers = Vec::new();
        for (name, section) in raw.providers {
            let vars = unset_under(&format!("providers.{name}"));
            match section.validate(&name, &vars) {
                Ok(provider) => {
                    providers.insert(name.clone(), provider);
                }
                Err(e) => {
                    problems.push(e);
                    broken_providers.push(name);
                }
            }
        }
        if raw.routes.is_empty() {
            problems.push(Problem::at("routes", "no route is configured; add e.g. [routes.default]"));
        }
        let declared: Vec<String> = raw.routes.keys().cloned().collect();
        let mut routes = BTreeMap::new();
        for (name, section) in raw.routes {
            // A route over a provider already reported is checked once that provider is fixed.
            if section.targets.iter().any(|t| broken_providers.contains(&t.provider)) {
                continue;
            }
            let vars = unset_under(&format!("routes.{name}"));
            match section.validate(&name, &providers, &vars) {
                Ok(route) => {
                    routes.insert(name.clone(), route);
                }
                Err(e) => problems.push(e),
            }
        }
        if let Some(server) = &mut server
            && let Err(unknown) = client_keys::allowed_models(&mut server.keys, &routes, &declared)
        {
            problems.extend(unknown);
        }
        if let Err(conflict) = shared_health::check(&routes) {
            problems.push(conflict);
        }
        let storage = raw.storage.validate().map_err(|e| problems.push(e)).ok().flatten();
        match server {
            Some(server) if problems.is_empty() => Ok(Config {
                server,
                providers,
                routes,
                state: state.unwrap_or_default(),
                storage,
                file: ConfigFile::default(),
            }),
            _ => Err(ConfigError::from(problems)),
        }
    }

    /// Lines saying which targets can serve and which cannot (and why), for the start-up log and `check`.
    pub fn readiness(&self) -> Vec<(Readiness, String)> {
        let mut lines = Vec::new();
        for route in self.routes.values() {
            for t in &route.targets {
                lines.push(match (&t.unavailable, t.enabled) {
                    (Some(reason), _) => {
                        (Readiness::Unavailable, format!("route {}: {} unavailable: {reason}", route.name, t.id))
                    }
                    (None, false) => {
                        (Readiness::Disabled, format!("route {}: {} disabled in config", route.name, t.id))
                    }
                    (None, true) => {
                        (Readiness::Ready, format!("route {}: {} ready{}", route.name, t.id, spreading(route, t)))
                    }
                });
            }
        }
        lines
    }
}

/// How a target shares traffic, for `check` and the start-up log: its tier (when it shares its priority)
/// and its limits, e.g. ` (tier of 2 by weighted, weight 3; rpm 600, max_concurrency 8)`; empty when none.
fn spreading(route: &route::RouteConfig, t: &route::TargetConfig) -> String {
    let mut parts = Vec::new();
    let tier = route.targets.iter().filter(|o| o.priority == t.priority).count();
    if tier > 1 {
        let balance = match route.balance {
            switchyard::manager::Balance::Latency => "latency",
            _ => "weighted",
        };
        parts.push(format!("tier of {tier} by {balance}, weight {}", t.weight));
    }
    let limits: Vec<String> =
        [("rpm", t.limits.rpm), ("tpm", t.limits.tpm), ("max_concurrency", t.limits.max_concurrency.map(u64::from))]
            .into_iter()
            .filter_map(|(key, value)| value.map(|v| format!("{key} {v}")))
            .collect();
    if !limits.is_empty() {
        parts.push(limits.join(", "));
    }
    if parts.is_empty() { String::new() } else { format!(" ({})", parts.join("; ")) }
}

#[cfg(test)]
mod tests;
