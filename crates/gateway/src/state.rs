//! The running gateway's state. What the config builds (one [`FallbackManager`] per route, one per target
//! id for requests that name a target directly, the keys) is a [`Snapshot`] behind one atomic pointer, which a
//! reload replaces; a request loads it once and finishes on it. What outlives a config (metrics, health,
//! overrides, storage, the shared state link) lives beside it in [`AppState`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;

use switchyard::{FallbackManager, FallbackManagerBuilder, ModelFallback, SharedModel, health::HealthRegistry};

use crate::auth::Auth;
use crate::client_keys::ClientKey;
use crate::config::{Config, ProviderConfig, RouteConfig, StateConfig, TargetConfig};
use crate::metrics::{Metrics, RouteMetrics};
use crate::overrides::Overrides;
use crate::shared_state::SharedState;

/// Builds the model behind one target; the binary uses the HTTP providers, tests may use simulated models.
pub trait ModelFactory: Send + Sync {
    /// The model for `target` at `provider`; an `Err` disables the target with that reason.
    fn build(&self, provider: &ProviderConfig, target: &TargetConfig) -> Result<SharedModel, String>;

    /// Lets go of what it keeps for building (e.g. connection pools) that `config` no longer uses; models
    /// built before keep what they use until they go. Called after each reload.
    fn retain_used(&self, _config: &Config) {}
}

/// Builds real HTTP clients with `switchyard-providers`: one connection pool per provider (and connect
/// timeout, which belongs to the pool), shared by every model built on it.
#[derive(Debug, Default)]
pub struct HttpProviders {
    /// Pools by (provider name, connect timeout): the settings each was built with, and the pool or why
    /// it could not be built. A reloaded provider whose settings changed gets a new pool; models built
    /// on the old one keep it until they go. A reload forgets the pools its config does not use
    /// ([`ModelFactory::retain_used`]), so a pool is freed once no running model uses it.
    pools: Mutex<BTreeMap<(String, Duration), Pool>>,
}

/// A pool, or why it could not be built, with the settings it was built from.
type Pool = (PoolSettings, Result<switchyard_providers::Provider, String>);

/// What a provider's pool is built from, besides its name and connect timeout.
#[derive(Debug, PartialEq)]
struct PoolSettings {
    kind: crate::config::ProviderKind,
    base_url: String,
    api_key: Option<crate::config::Secret>,
    max_tokens: u32,
    headers: BTreeMap<String, String>,
}

impl PoolSettings {
    fn of(provider: &ProviderConfig) -> Self {
        Self {
            kind: provider.kind,
            base_url: provider.base_url.clone(),
            api_key: provider.api_key.clone(),
            max_tokens: provider.max_tokens,
            headers: provider.headers.clone(),
        }
    }
}

impl HttpProviders {
    /// How many connection pools were built.
    #[cfg(test)]
    fn pool_count(&self) -> usize {
        self.pools.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// The (provider, connect timeout) of each pool kept.
    #[cfg(test)]
    fn pool_keys(&self) -> Vec<(String, Duration)> {
        self.pools.lock().unwrap_or_else(PoisonError::into_inner).keys().cloned().collect()
    }

    fn pool(provider: &ProviderConfig, target: &TargetConfig) -> Result<switchyard_providers::Provider, String> {
        use switchyard_providers as p;
        let kind = match provider.kind {
            crate::config::ProviderKind::Openai => p::ProviderKind::OpenAi,
            crate::config::ProviderKind::Anthropic => p::ProviderKind::Anthropic,
        };
        let mut cfg = p::ProviderConfig::new(kind, provider.name.clone(), target.model.clone());
        cfg.base_url.clone_from(&provider.base_url);
        cfg.api_key = provider.api_key.as_ref().map(|k| p::ApiKey::from(k.expose()));
        cfg.max_tokens = provider.max_tokens;
        cfg.headers = provider.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        cfg.timeouts.connect = Some(target.timeouts.connect);
        p::Provider::new(&cfg).map_err(|e| e.to_string())
    }
}

impl ModelFactory for HttpProviders {
    fn build(&self, provider: &ProviderConfig, target: &TargetConfig) -> Result<SharedModel, String> {
        let timeouts =
            switchyard_providers::Timeouts { connect: Some(target.timeouts.connect), idle: Some(target.timeouts.idle) };
        let settings = PoolSettings::of(provider);
        let mut pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = pools
            .entry((provider.name.clone(), target.timeouts.connect))
            .or_insert_with(|| (PoolSettings::of(provider), Self::pool(provider, target)));
        if entry.0 != settings {
            *entry = (settings, Self::pool(provider, target));
        }
        Ok(entry.1.as_ref().map_err(Clone::clone)?.model(target.model.clone(), timeouts))
    }

    fn retain_used(&self, config: &Config) {
        let used: BTreeSet<(&str, Duration)> = config
            .routes
            .values()
            .flat_map(|r| &r.targets)
            .map(|t| (t.provider.as_str(), t.timeouts.connect))
            .collect();
        let mut pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        pools.retain(|(name, connect), (settings, _)| {
            used.contains(&(name.as_str(), *connect))
                && config.providers.get(name).is_some_and(|p| *settings == PoolSettings::of(p))
        });
    }
}

/// A route (or a directly addressed target) and its counters.
#[derive(Debug)]
pub struct Route {
    /// The route name, or the target id for a direct route (shared with the request log's rows).
    pub name: Arc<str>,
    /// The engine serving it.
    pub manager: FallbackManager,
    /// Its metrics.
    pub metrics: Arc<RouteMetrics>,
    /// True when it serves one target addressed by id.
    pub direct: bool,
    /// SSE keep-alive interval for streaming requests.
    pub keepalive: Option<Duration>,
    /// The upstream model name of each target id: answers name the model that served them. The ids are
    /// shared with the request log's rows.
    models: BTreeMap<Arc<str>, String>,
    /// Each target's config values (enabled, priority, max_retries): where clearing an override returns it.
    configured: BTreeMap<String, crate::overrides::Change>,
}

impl Route {
    /// A route named `name` over `targets`, with its counters and the keep-alive of `config`.
    fn new(
        manager: FallbackManager,
        metrics: Arc<RouteMetrics>,
        targets: &[&TargetConfig],
        direct: bool,
        config: &RouteConfig,
    ) -> Self {
        Route {
            name: Arc::from(metrics.name()),
            manager,
            metrics,
            direct,
            keepalive: config.keepalive,
            models: targets.iter().map(|t| (Arc::from(t.id.as_str()), t.model.clone())).collect(),
            configured: targets
                .iter()
                .map(|t| {
                    let enabled = t.unavailable.is_none() && (direct || t.enabled);
                    let change = crate::overrides::Change {
                        enabled: Some(enabled),
                        priority: Some(t.priority),
                        max_retries: Some(t.max_retries),
                    };
                    (t.id.clone(), change)
                })
                .collect(),
        }
    }

    /// The config values of target `id` on this route.
    pub fn configured(&self, id: &str) -> Option<crate::overrides::Change> {
        self.configured.get(id).copied()
    }

    /// The upstream model name of the target `id` (the `model` an answer it served carries).
    pub fn model_of(&self, id: &str) -> Option<&str> {
        self.models.get(id).map(String::as_str)
    }

    /// The shared id of target `id` (a copy only for an id the route does not know).
    pub fn target_id(&self, id: &str) -> Arc<str> {
        self.models.get_key_value(id).map_or_else(|| Arc::from(id), |(k, _)| k.clone())
    }
}

/// What one config builds: its routes and keys. Replaced whole by a reload.
#[derive(Debug)]
pub struct Snapshot {
    /// Configured routes by name.
    pub routes: BTreeMap<String, Arc<Route>>,
    /// One single-target route per target id.
    pub direct: BTreeMap<String, Arc<Route>>,
    /// Client and admin keys.
    pub auth: Auth,
    /// The config it was built from.
    pub config: Config,
    /// When it was built.
    pub loaded_at: SystemTime,
}

/// What a snapshot built to replace `previous` carries on from it.
#[derive(Debug, Clone, Copy)]
pub struct Carry<'a> {
    /// The snapshot being replaced.
    pub previous: &'a Snapshot,
    /// Target ids whose provider and model are unchanged: they keep their counters.
    pub unchanged: &'a BTreeSet<String>,
}

/// Everything a request handler needs.
#[derive(Debug)]
pub struct AppState {
    /// The running config's routes and keys; see [`AppState::current`].
    running: ArcSwap<Snapshot>,
    /// Each target's health (breaker, retry budget, latency), shared by every route and direct route, by id.
    pub health: HealthRegistry,
    /// Prometheus counters.
    pub metrics: Metrics,
    /// Largest request body, in bytes.
    pub max_body: usize,
    /// Timeouts and the cap of the connection layer.
    pub connections: crate::conn::ConnectionLimits,
    /// The link to the other replicas (`[state] backend = "redis"`); `None`: this process only.
    pub shared: Option<Arc<SharedState>>,
    /// Where finished requests are recorded (the storage database and `/admin/events`).
    pub log: Arc<crate::request_log::RequestLog>,
    /// Admin changes of targets, for `/admin/events`.
    pub target_events: crate::target_events::TargetEvents,
    /// Admin overrides of targets, per route.
    pub overrides: crate::overrides::Overrides,
    /// Where a reload reads the config from; `None`: it cannot be reloaded.
    pub(crate) reloader: Option<crate::reload::Reloader>,
}

/// Why the state could not be built; each names the config key path at fault.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// None of the route's targets could be built.
    #[error("routes.{route}: no target can serve (none could be built)")]
    NoUsableTarget {
        /// The route name.
        route: String,
    },
    /// The engine refused the route's targets.
    #[error("routes.{route}: {source}")]
    Route {
        /// The route name.
        route: String,
        /// What the engine said.
        source: switchyard::ConfigError,
    },
    /// The engine refused a directly addressed target (its id, as configured in `route`).
    #[error("routes.{route}: target {id}: {source}")]
    Direct {
        /// The route that first lists the target (its settings apply to direct requests).
        route: String,
        /// The target id.
        id: String,
        /// What the engine said.
        source: switchyard::ConfigError,
    },
    /// `state.url` is not a Redis URL the client can use (the URL itself is not repeated: it may hold a password).
    #[error("state.url: {category}")]
    StateUrl {
        /// What kind of problem the Redis client found.
        category: String,
    },
}

impl BuildError {
    /// The config key path at fault.
    pub fn path(&self) -> crate::config::KeyPath {
        match self {
            BuildError::NoUsableTarget { route }
            | BuildError::Route { route, .. }
            | BuildError::Direct { route, .. } => format!("routes.{route}").into(),
            BuildError::StateUrl { .. } => "state.url".into(),
        }
    }
}

/// What one built model is shared by: the same provider, upstream model and timeouts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ModelKey {
    provider: String,
    model: String,
    timeouts: crate::config::Timeouts,
}

impl AppState {
    /// Builds every route's manager from a validated config.
    pub fn build(config: &Config, factory: &dyn ModelFactory) -> Result<AppState, BuildError> {
        // One health record per target id: a sick upstream opens once for every route and direct request.
        // With Redis, targets' and keys' rpm/tpm lease a cluster-wide budget.
        let health = match &config.state {
            StateConfig::Memory => HealthRegistry::new(),
            StateConfig::Redis(_) => HealthRegistry::new().with_leases(switchyard::limits::LeaseBoard::new()),
        };
        let snapshot = Snapshot::build(config, factory, &health, None)?;
        let shared = match &config.state {
            StateConfig::Memory => None,
            StateConfig::Redis(redis) => Some(Arc::new(
                SharedState::new(redis).map_err(|e| BuildError::StateUrl { category: e.category().to_owned() })?,
            )),
        };
        // Overrides carry the replica's id in `by`; with Redis, every change also travels to the others.
        let overrides = match &shared {
            Some(shared) => Overrides::new(shared.instance_id().to_owned()).with_sink(shared.override_sink()),
            None => Overrides::new(uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()),
        };
        Ok(AppState {
            running: ArcSwap::from_pointee(snapshot),
            health,
            metrics: Metrics::default(),
            max_body: config.server.max_body,
            connections: config.server.connections,
            shared,
            log: Arc::default(),
            target_events: Default::default(),
            overrides,
            reloader: None,
        })
    }

    /// The running config's routes and keys. A request loads them once and finishes on them, whatever
    /// reloads happen meanwhile.
    pub fn current(&self) -> Arc<Snapshot> {
        self.running.load_full()
    }

    /// Makes `snapshot` the running config (requests already started keep theirs).
    pub(crate) fn swap(&self, snapshot: Snapshot) {
        self.running.store(Arc::new(snapshot));
    }

    /// The same state, reloadable from the file at `path` (read with `listen` overriding `server.listen`, as at
    /// start-up), building models with `factory`.
    pub fn reloadable(
        mut self,
        path: std::path::PathBuf,
        listen: Option<String>,
        factory: Arc<dyn ModelFactory>,
    ) -> Self {
        let started = self.current().config.clone();
        self.reloader = Some(crate::reload::Reloader::new(path, listen, factory, started));
        self
    }

    /// The same state recording finished requests into `storage`.
    pub fn with_storage(mut self, storage: Arc<crate::storage::Storage>) -> Self {
        self.log = Arc::new(crate::request_log::RequestLog::new(Some(storage)));
        self
    }

    /// The same state telling every later admin override to `sink` too.
    pub fn with_override_sink(mut self, sink: Arc<dyn crate::overrides::OverrideSink>) -> Self {
        self.overrides = std::mem::take(&mut self.overrides).with_sink(sink);
        self
    }

    /// The route a request's `model` names in the running config: a route name first, else a target id.
    pub fn resolve(&self, model: &str) -> Option<Arc<Route>> {
        self.current().resolve(model).cloned()
    }
}

impl Snapshot {
    /// Builds every route's manager from a validated config, with target health from `health`; a snapshot
    /// replacing another carries its counters on (see [`Carry`]).
    pub fn build(
        config: &Config,
        factory: &dyn ModelFactory,
        health: &HealthRegistry,
        carry: Option<Carry<'_>>,
    ) -> Result<Snapshot, BuildError> {
        let mut routes = BTreeMap::new();
        let mut direct: BTreeMap<String, Arc<Route>> = BTreeMap::new();
        let mut built: BTreeMap<ModelKey, Result<SharedModel, String>> = BTreeMap::new();
        for route in config.routes.values() {
            let ids: Vec<String> = route.targets.iter().map(|t| t.id.clone()).collect();
            let before = carry.and_then(|c| c.previous.routes.get(&route.name).map(|r| (r, c.unchanged)));
            let metrics = metrics_for(&route.name, &ids, before.map(|(r, _)| r));
            let mut builder = carried(policy(FallbackManager::builder(), route).health(health.clone()), before);
            let mut usable = 0;
            for target in &route.targets {
                let model = model_for(config, factory, target, &mut built);
                builder = match model {
                    Ok(model) => {
                        usable += 1;
                        builder.target(fallback(target, target.enabled), model)
                    }
                    Err(reason) => builder.unavailable_target(fallback(target, false), reason),
                };
                if !direct.contains_key(&target.id) && !config.routes.contains_key(&target.id) {
                    let before = carry.and_then(|c| c.previous.direct.get(&target.id).map(|r| (r, c.unchanged)));
                    let metrics = metrics_for(&target.id, std::slice::from_ref(&target.id), before.map(|(r, _)| r));
                    let model = model_for(config, factory, target, &mut built);
                    let single = match model {
                        Ok(model) => FallbackManager::builder().target(fallback(target, true), model),
                        Err(reason) => FallbackManager::builder().unavailable_target(fallback(target, false), reason),
                    };
                    let manager =
                        carried(policy(single, route).health(health.clone()), before).build().map_err(|source| {
                            BuildError::Direct { route: route.name.clone(), id: target.id.clone(), source }
                        })?;
                    direct.insert(target.id.clone(), Arc::new(Route::new(manager, metrics, &[target], true, route)));
                }
            }
            if usable == 0 {
                return Err(BuildError::NoUsableTarget { route: route.name.clone() });
            }
            let manager = builder.build().map_err(|source| BuildError::Route { route: route.name.clone(), source })?;
            let targets: Vec<&TargetConfig> = route.targets.iter().collect();
            routes.insert(route.name.clone(), Arc::new(Route::new(manager, metrics, &targets, false, route)));
        }
        Ok(Snapshot {
            routes,
            direct,
            auth: Auth::new(
                config.server.api_keys.iter().map(|k| k.expose()),
                config.server.admin_key.as_ref().map(|k| k.expose()),
            )
            .with_named(config.server.keys.iter().map(|k| {
                let before = carry.as_ref().and_then(|c| c.previous.auth.named(&k.name));
                (k.key.expose(), Arc::new(ClientKey::new(k, before.map(Arc::as_ref), health.leases())))
            })),
            config: config.clone(),
            loaded_at: SystemTime::now(),
        })
    }

    /// The route a request's `model` names: a route name first, else a target id.
    pub fn resolve(&self, model: &str) -> Option<&Arc<Route>> {
        self.routes.get(model).or_else(|| self.direct.get(model))
    }

    /// Every route's and direct route's counters.
    pub fn route_metrics(&self) -> Vec<Arc<RouteMetrics>> {
        self.routes.values().chain(self.direct.values()).map(|r| r.metrics.clone()).collect()
    }
}

/// The counters of route `name`: those of `before` (the route it replaces) when it has the same targets, so
/// `/metrics` keeps counting across a reload; fresh ones otherwise.
fn metrics_for(name: &str, ids: &[String], before: Option<&Arc<Route>>) -> Arc<RouteMetrics> {
    match before {
        Some(route) if route.metrics.has_targets(ids) => route.metrics.clone(),
        _ => Arc::new(RouteMetrics::new(name, ids)),
    }
}

/// The builder going on from the stats of `before` (the route it replaces) for its unchanged targets.
fn carried(
    builder: FallbackManagerBuilder,
    before: Option<(&Arc<Route>, &BTreeSet<String>)>,
) -> FallbackManagerBuilder {
    match before {
        Some((route, unchanged)) => {
            let unchanged = unchanged.clone();
            builder.carry_stats(&route.manager, move |id| unchanged.contains(id))
        }
        None => builder,
    }
}

/// Builds (once per target id and provider) the model behind a target, or says why it cannot be.
fn model_for(
    config: &Config,
    factory: &dyn ModelFactory,
    target: &TargetConfig,
    built: &mut BTreeMap<ModelKey, Result<SharedModel, String>>,
) -> Result<SharedModel, String> {
    if let Some(reason) = &target.unavailable {
        return Err(reason.clone());
    }
    let key = ModelKey { provider: target.provider.clone(), model: target.model.clone(), timeouts: target.timeouts };
    if let Some(model) = built.get(&key) {
        return model.clone();
    }
    let model = match config.providers.get(&target.provider) {
        Some(provider) => factory.build(provider, target),
        None => Err(format!("unknown provider {:?}", target.provider)),
    };
    if let Err(reason) = &model {
        tracing::warn!(target_id = %target.id, "target cannot serve: {reason}");
    }
    built.insert(key, model.clone());
    model
}

fn fallback(t: &TargetConfig, enabled: bool) -> ModelFallback {
    ModelFallback {
        provider: t.provider.clone(),
        model: t.model.clone(),
        id: Some(t.id.clone()),
        priority: t.priority,
        weight: t.weight,
        max_retries: t.max_retries,
        enabled,
        context_window: t.context_window,
        supports_tools: Some(t.supports_tools),
        // The engine owns these two phases (and shrinks them to the deadline); the client owns connect and idle.
        first_chunk_timeout: Some(t.timeouts.first_chunk),
        total_timeout: Some(t.timeouts.total),
        continuation: t.continuation,
        limits: t.limits,
    }
}

/// The route's policy (backoff, breaker, retry budget, hedge, stream and field rules) on an engine builder.
fn policy(mut builder: FallbackManagerBuilder, route: &RouteConfig) -> FallbackManagerBuilder {
    if let Some(deadline) = route.deadline {
        builder = builder.deadline(deadline);
    }
    builder
        .backoff(route.backoff.clone())
        .breaker(route.breaker.clone())
        .retry_budget(route.retry_budget)
        .hedge(route.hedge)
        .after_commit(route.after_commit)
        .strict_fields(route.strict_fields)
        .retry_timeouts(route.retry_timeouts)
        .on_content_filter(route.on_content_filter)
        .balance(route.balance)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn models_of_one_provider_share_one_connection_pool() {
        let config = Config::parse(
            "[providers.p]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\
             [providers.q]\nkind = \"anthropic\"\nbase_url = \"http://127.0.0.1:9\"\n\
             [routes.a]\ntargets = [{ provider = \"p\", model = \"m\" }, { provider = \"p\", model = \"n\" }]\n\
             [routes.b]\ntargets = [{ provider = \"p\", model = \"o\" }, { provider = \"q\", model = \"m\" }]\n",
            &|_| None,
            None,
        )
        .unwrap();
        let factory = HttpProviders::default();
        let state = AppState::build(&config, &factory).unwrap();
        assert_eq!(state.current().direct.len(), 4);
        assert_eq!(factory.pool_count(), 2, "one pool per provider, not one per target");
    }

    #[test]
    fn a_reload_frees_the_pools_of_providers_it_no_longer_uses() {
        let providers = "[providers.p]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\
                         [providers.q]\nkind = \"anthropic\"\nbase_url = \"http://127.0.0.1:9\"\n";
        let both = format!(
            "{providers}[routes.a]\ntargets = [{{ provider = \"p\", model = \"m\" }}, {{ provider = \"q\", model = \"m\" }}]\n"
        );
        // q is still defined but no target uses it; p's target now connects with another timeout.
        let only_p = format!(
            "{providers}[routes.a]\ntimeouts = {{ connect = \"2s\" }}\ntargets = [{{ provider = \"p\", model = \"m\" }}]\n"
        );
        let path = std::env::temp_dir().join(format!("switchyard-pools-{}.toml", std::process::id()));
        std::fs::write(&path, &both).unwrap();
        let factory = Arc::new(HttpProviders::default());
        let config = Config::load(&path, None).unwrap();
        let refusing_bad = Arc::new(RefusingBad(factory.clone()));
        let state = AppState::build(&config, factory.as_ref()).unwrap().reloadable(path.clone(), None, refusing_bad);
        let five = Duration::from_secs(5);
        assert_eq!(factory.pool_keys(), [("p".to_owned(), five), ("q".to_owned(), five)]);

        std::fs::write(&path, &only_p).unwrap();
        state.reload(crate::reload::Trigger::Admin).unwrap();
        assert_eq!(factory.pool_keys(), [("p".to_owned(), Duration::from_secs(2))]);

        // A reload whose build fails after making a pool (route `b` on `t`, then `c`, whose only provider cannot
        // be built) leaves only the running config's pools.
        let failing = format!(
            "{only_p}[providers.t]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\
             [providers.bad]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\
             [routes.b]\ntargets = [{{ provider = \"t\", model = \"m\" }}]\n\
             [routes.c]\ntargets = [{{ provider = \"bad\", model = \"m\" }}]\n"
        );
        std::fs::write(&path, failing).unwrap();
        let error = state.reload(crate::reload::Trigger::Admin).unwrap_err();
        assert!(error.to_string().contains("routes.c"), "{error}");
        assert_eq!(factory.pool_keys(), [("p".to_owned(), Duration::from_secs(2))]);
        std::fs::remove_file(&path).unwrap();
    }

    /// [`HttpProviders`], except that provider `bad` cannot be built (every config mistake that would make a real
    /// build fail is refused when the config loads).
    struct RefusingBad(Arc<HttpProviders>);

    impl ModelFactory for RefusingBad {
        fn build(
            &self,
            provider: &crate::config::ProviderConfig,
            target: &crate::config::TargetConfig,
        ) -> Result<SharedModel, String> {
            if provider.name == "bad" {
                return Err("refused".to_owned());
            }
            self.0.build(provider, target)
        }

        fn retain_used(&self, config: &Config) {
            self.0.retain_used(config);
        }
    }

    #[test]
    fn a_build_error_carries_its_key_path_as_data() {
        let config = Config::parse(
            "[providers.bad]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\
             [routes.a]\ntargets = [{ provider = \"bad\", model = \"m\" }]\n",
            &|_| None,
            None,
        )
        .unwrap();
        let Err(err) = AppState::build(&config, &RefusingBad(Arc::default())) else { panic!("nothing can be built") };
        assert_eq!(err.path().as_str(), "routes.a");
        assert_eq!(err.to_string(), "routes.a: no target can serve (none could be built)");
    }
}
