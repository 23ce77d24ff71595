//! The running gateway's state: one [`FallbackManager`] per route, one per target id for requests
//! that name a target directly, the keys, the metrics and the limits.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use switchyard::{
    BreakerConfig, BudgetConfig, FallbackManager, FallbackManagerBuilder, HealthRegistry, HedgeConfig, ModelFallback,
    SharedModel,
};

use crate::auth::Auth;
use crate::config::{
    AfterCommit, Backoff, Config, HedgeAfter, OnContentFilter, ProviderConfig, RouteConfig, TargetConfig,
};
use crate::metrics::{Metrics, RouteMetrics};
use crate::skip_count::SkipCounting;

/// Builds the model behind one target; the binary uses the HTTP providers, tests may use simulated models.
pub trait ModelFactory: Send + Sync {
    /// The model for `target` at `provider`; an `Err` disables the target with that reason.
    fn build(&self, provider: &ProviderConfig, target: &TargetConfig) -> Result<SharedModel, String>;
}

/// Builds real HTTP clients with `switchyard-providers`: one connection pool per provider (and connect
/// timeout, which belongs to the pool), shared by every model built on it.
#[derive(Debug, Default)]
pub struct HttpProviders {
    /// Pools by (provider name, connect timeout), or why one could not be built.
    pools: Mutex<BTreeMap<(String, Duration), Result<switchyard_providers::Provider, String>>>,
}

impl HttpProviders {
    /// How many connection pools were built.
    #[cfg(test)]
    fn pool_count(&self) -> usize {
        self.pools.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl ModelFactory for HttpProviders {
    fn build(&self, provider: &ProviderConfig, target: &TargetConfig) -> Result<SharedModel, String> {
        use switchyard_providers as p;
        let timeouts = p::Timeouts {
            connect: Some(target.timeouts.connect),
            first_chunk: Some(target.timeouts.first_chunk),
            idle: Some(target.timeouts.idle),
            total: Some(target.timeouts.total),
        };
        let mut pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        let pool = pools.entry((provider.name.clone(), target.timeouts.connect)).or_insert_with(|| {
            let kind = match provider.kind {
                crate::config::ProviderKind::Openai => p::ProviderKind::OpenAi,
                crate::config::ProviderKind::Anthropic => p::ProviderKind::Anthropic,
            };
            let mut cfg = p::ProviderConfig::new(kind, provider.name.clone(), target.model.clone());
            cfg.base_url.clone_from(&provider.base_url);
            cfg.api_key = provider.api_key.as_ref().map(|k| p::ApiKey::from(k.expose()));
            cfg.max_tokens = provider.max_tokens;
            cfg.headers = provider.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            cfg.timeouts = timeouts;
            p::Provider::new(&cfg).map_err(|e| e.to_string())
        });
        Ok(pool.as_ref().map_err(Clone::clone)?.model(target.model.clone(), timeouts))
    }
}

/// A route (or a directly addressed target) and its counters.
#[derive(Debug)]
pub struct Route {
    /// The route name, or the target id for a direct route.
    pub name: String,
    /// The engine serving it.
    pub manager: FallbackManager,
    /// Its metrics.
    pub metrics: Arc<RouteMetrics>,
    /// True when it serves one target addressed by id.
    pub direct: bool,
    /// Deadline for all attempts of one request, from the config.
    pub deadline: Option<Duration>,
    /// SSE keep-alive interval for streaming requests.
    pub keepalive: Option<Duration>,
    /// The upstream model name of each target id: answers name the model that served them.
    models: BTreeMap<String, String>,
    /// Each target's config values (enabled, priority, max_retries): where clearing an override returns it.
    configured: BTreeMap<String, crate::overrides::Change>,
}

impl Route {
    /// A route named `name` over `targets`, with its counters and the deadline and keep-alive of `config`.
    fn new(
        manager: FallbackManager,
        metrics: Arc<RouteMetrics>,
        targets: &[&TargetConfig],
        direct: bool,
        config: &RouteConfig,
    ) -> Self {
        Route {
            name: metrics.name().to_owned(),
            manager,
            metrics,
            direct,
            deadline: config.deadline,
            keepalive: config.keepalive,
            models: targets.iter().map(|t| (t.id.clone(), t.model.clone())).collect(),
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
}

/// Everything a request handler needs.
#[derive(Debug)]
pub struct AppState {
    /// Configured routes by name.
    pub routes: BTreeMap<String, Arc<Route>>,
    /// One single-target route per target id.
    pub direct: BTreeMap<String, Arc<Route>>,
    /// Each target's health (breaker, retry budget, latency), shared by every route and direct route.
    pub health: HealthRegistry,
    /// Client and admin keys.
    pub auth: Auth,
    /// Prometheus counters.
    pub metrics: Metrics,
    /// Largest request body, in bytes.
    pub max_body: usize,
    /// Timeouts and the cap of the connection layer.
    pub connections: crate::conn::ConnectionLimits,
    /// Where finished requests are recorded (the storage database and `/admin/events`).
    pub log: Arc<crate::request_log::RequestLog>,
    /// Admin changes of targets, for `/admin/events`.
    pub target_events: crate::target_events::TargetEvents,
    /// Admin overrides of targets, per route.
    pub overrides: crate::overrides::Overrides,
}

/// Why the state could not be built.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(pub String);

impl AppState {
    /// Builds every route's manager from a validated config.
    pub fn build(config: &Config, factory: &dyn ModelFactory) -> Result<AppState, BuildError> {
        let mut routes = BTreeMap::new();
        let mut direct: BTreeMap<String, Arc<Route>> = BTreeMap::new();
        let mut route_metrics = Vec::new();
        let mut direct_metrics = Vec::new();
        let mut built: BTreeMap<String, Result<SharedModel, String>> = BTreeMap::new();
        // One health record per target id: a sick upstream opens once for every route and direct request.
        let health = HealthRegistry::new();
        for route in config.routes.values() {
            let ids: Vec<String> = route.targets.iter().map(|t| t.id.clone()).collect();
            let metrics = Arc::new(RouteMetrics::new(&route.name, &ids));
            let mut builder = policy(FallbackManager::builder(), route).health(health.clone());
            let mut usable = 0;
            for target in &route.targets {
                let model = model_for(config, factory, target, &mut built);
                builder = match model {
                    Ok(model) => {
                        usable += 1;
                        builder.target(fallback(target, target.enabled), counted(model, &metrics, target))
                    }
                    Err(reason) => builder.unavailable_target(fallback(target, false), reason),
                };
                if !direct.contains_key(&target.id) && !config.routes.contains_key(&target.id) {
                    let metrics = Arc::new(RouteMetrics::new(&target.id, std::slice::from_ref(&target.id)));
                    let model = model_for(config, factory, target, &mut built);
                    let single = match model {
                        Ok(model) => {
                            FallbackManager::builder().target(fallback(target, true), counted(model, &metrics, target))
                        }
                        Err(reason) => FallbackManager::builder().unavailable_target(fallback(target, false), reason),
                    };
                    let manager = policy(single, route)
                        .health(health.clone())
                        .build()
                        .map_err(|e| BuildError(format!("target {}: {e}", target.id)))?;
                    direct_metrics.push(metrics.clone());
                    direct.insert(target.id.clone(), Arc::new(Route::new(manager, metrics, &[target], true, route)));
                }
            }
            if usable == 0 {
                return Err(BuildError(format!("routes.{}: no target can serve (none could be built)", route.name)));
            }
            let manager = builder.build().map_err(|e| BuildError(format!("routes.{}: {e}", route.name)))?;
            let targets: Vec<&TargetConfig> = route.targets.iter().collect();
            route_metrics.push(metrics.clone());
            routes.insert(route.name.clone(), Arc::new(Route::new(manager, metrics, &targets, false, route)));
        }
        Ok(AppState {
            routes,
            direct,
            health,
            auth: Auth::new(
                config.server.api_keys.iter().map(|k| k.expose()),
                config.server.admin_key.as_ref().map(|k| k.expose()),
            ),
            metrics: Metrics::new(route_metrics.into_iter().chain(direct_metrics).collect()),
            max_body: config.server.max_body,
            connections: config.server.connections,
            log: Arc::default(),
            target_events: Default::default(),
            overrides: Default::default(),
        })
    }

    /// The same state recording finished requests into `storage`.
    pub fn with_storage(mut self, storage: Arc<crate::storage::Storage>) -> Self {
        self.log = Arc::new(crate::request_log::RequestLog::new(Some(storage)));
        self
    }

    /// The same state keeping admin overrides in `overrides`.
    pub fn with_overrides(mut self, overrides: crate::overrides::Overrides) -> Self {
        self.overrides = overrides;
        self
    }

    /// The route a request's `model` names: a route name first, else a target id.
    pub fn resolve(&self, model: &str) -> Option<&Arc<Route>> {
        self.routes.get(model).or_else(|| self.direct.get(model))
    }
}

/// Builds (once per target id and provider) the model behind a target, or says why it cannot be.
fn model_for(
    config: &Config,
    factory: &dyn ModelFactory,
    target: &TargetConfig,
    built: &mut BTreeMap<String, Result<SharedModel, String>>,
) -> Result<SharedModel, String> {
    if let Some(reason) = &target.unavailable {
        return Err(reason.clone());
    }
    let key = format!("{}\u{0}{}\u{0}{:?}", target.provider, target.model, target.timeouts);
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

/// The target's model on one route, counting the stream events it skips in that route's metrics.
fn counted(model: SharedModel, metrics: &RouteMetrics, target: &TargetConfig) -> SharedModel {
    match metrics.skipped_events_counter(&target.id) {
        Some(counter) => SkipCounting::wrap(model, counter),
        None => model,
    }
}

fn fallback(t: &TargetConfig, enabled: bool) -> ModelFallback {
    ModelFallback {
        provider: t.provider.clone(),
        model: t.model.clone(),
        id: Some(t.id.clone()),
        priority: t.priority,
        max_retries: t.max_retries,
        enabled,
        context_window: t.context_window,
        supports_tools: Some(t.supports_tools),
        // The provider client enforces the target's timeouts (with the same values and its phases); a second
        // timer per attempt in the engine would only cost a timer registration and wake-up on every request.
        first_chunk_timeout: None,
        total_timeout: None,
    }
}

/// The route's backoff, breaker and retry budget on an engine builder.
fn policy(builder: FallbackManagerBuilder, route: &RouteConfig) -> FallbackManagerBuilder {
    let backoff = match route.backoff {
        Backoff::Linear { base } => switchyard::Backoff::Linear { base },
        Backoff::Exponential { base, max } => switchyard::Backoff::Exponential { base, max },
    };
    let breaker = route.breaker.map(|b| BreakerConfig::new(b.failures, b.cooldown));
    let budget = route.retry_budget.map(|b| BudgetConfig { ratio: b.ratio, min_per_second: b.min_per_second });
    let hedge = route.hedge.map(|h| match h {
        HedgeAfter::Fixed(d) => HedgeConfig::after(d),
        HedgeAfter::P95 { initial } => HedgeConfig::p95_or(initial),
    });
    let after_commit = match route.after_commit {
        AfterCommit::Error => switchyard::AfterCommit::Error,
        AfterCommit::Continue => switchyard::AfterCommit::Continue,
    };
    builder
        .backoff(backoff)
        .breaker(breaker)
        .retry_budget(budget)
        .hedge(hedge)
        .after_commit(after_commit)
        .strict_fields(route.strict_fields)
        .retry_timeouts(route.retry_timeouts)
        .on_content_filter(match route.on_content_filter {
            OnContentFilter::Error => switchyard::OnContentFilter::Error,
            OnContentFilter::Fallback => switchyard::OnContentFilter::Fallback,
        })
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
        assert_eq!(state.direct.len(), 4);
        assert_eq!(factory.pool_count(), 2, "one pool per provider, not one per target");
    }
}
