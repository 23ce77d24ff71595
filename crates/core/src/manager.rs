//! `FallbackManager`: targets tried by priority, each with its retries, behind one [`ChatModel`];
//! runtime control (enable, disable, priorities, retries) and exact stats.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering::Relaxed};
use std::time::Duration;

use async_trait::async_trait;

use crate::backoff::Backoff;
use crate::balance::{Balancer, Member};
use crate::breaker::BreakerConfig;
use crate::budget::BudgetConfig;
use crate::error::Error;
use crate::health::{Health, HealthSettings};
use crate::health_registry::HealthRegistry;
use crate::hedge::{Hedge, HedgeConfig};
use crate::model::{ChatModel, ChatStream, SharedModel};
use crate::runner::{self, Policy, Target};
use crate::skip::SkipReason;
use crate::stats::{Stats, StatsSnapshot};
use crate::streaming::Continuer;
use crate::target::{ConfigError, ModelFallback, TargetError, TargetInfo, check_unique};
use crate::time_limits::{AttemptLimits, within};
use crate::types::{ChatRequest, ChatResponse};
use crate::validate::ResponseValidator;

pub use crate::balance::Balance;
pub use crate::runner::{AfterCommit, OnContentFilter, RetryPredicate};

/// Tries its targets in priority order (lower first; targets of equal priority form a tier, ordered
/// per request by its [`Balance`], by default in insertion order), retrying each as the error kind allows, and falls back to the next. Cheap to clone: clones share targets and stats.
///
/// ```
/// # use std::sync::Arc;
/// # use switchyard::{Backoff, ChatModel, ChatRequest, Error, FallbackManager, ModelFallback};
/// # use switchyard_sim::SimModel;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let primary = SimModel::failing("gpt-4o", Error::server(503, "unavailable"));
/// let backup = SimModel::replying("claude", "hello from the backup");
/// let manager = FallbackManager::builder()
///     .target(ModelFallback::new("openai", "gpt-4o").with_max_retries(1), Arc::new(primary))
///     .target(ModelFallback::new("anthropic", "claude").with_priority(1), Arc::new(backup))
///     .backoff(Backoff::linear())
///     .build()?;
/// let answer = manager.complete(ChatRequest::user("hi")).await?;
/// assert_eq!(answer.served_by.as_deref(), Some("anthropic/claude"));
/// assert_eq!(answer.attempts.len(), 3); // two failed calls to the primary, then the backup
/// assert_eq!(manager.stats().fallbacks, 1);
/// manager.disable_model("openai/gpt-4o")?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct FallbackManager {
    inner: Arc<Inner>,
}

struct Inner {
    slots: Vec<Slot>,
    policy: Policy,
    /// The whole chain's deadline, from the moment a request arrives.
    deadline: Option<Duration>,
    stats: Arc<Stats>,
    /// Orders each tier per request.
    balancer: Balancer,
}

/// One target and its runtime settings.
struct Slot {
    id: String,
    config: ModelFallback,
    /// The model, or why it could not be built (such a target stays disabled).
    model: Result<SharedModel, String>,
    enabled: AtomicBool,
    priority: AtomicI32,
    max_retries: AtomicU32,
    /// Breaker and other state shared by requests.
    health: Arc<Health>,
}

impl Slot {
    /// Whether a request would call it now: built, enabled and not held off by its breaker.
    fn callable(&self) -> bool {
        self.model.is_ok() && self.enabled.load(Relaxed) && !self.health.breaker.skips_now()
    }

    fn disabled_reason(&self) -> Option<SkipReason> {
        match (&self.model, self.enabled.load(Relaxed)) {
            (Err(reason), _) => Some(SkipReason::NotBuilt { reason: reason.clone() }),
            (Ok(_), false) => Some(SkipReason::Disabled),
            (Ok(_), true) => None,
        }
    }
}

/// Stands in for a target that could not be built; never called, since such targets are skipped.
struct NotBuilt;

#[async_trait]
impl ChatModel for NotBuilt {
    async fn complete(&self, _request: ChatRequest) -> Result<ChatResponse, Error> {
        Err(not_built())
    }

    async fn stream(&self, _request: ChatRequest) -> Result<ChatStream, Error> {
        Err(not_built())
    }
}

fn not_built() -> Error {
    Error::Unavailable { reason: "this target could not be built".to_owned(), attempts: Vec::new() }
}

impl FallbackManager {
    /// Starts a builder.
    pub fn builder() -> FallbackManagerBuilder {
        FallbackManagerBuilder::default()
    }

    /// A copy of the stats.
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// Sets every count to zero.
    pub fn reset_stats(&self) {
        self.inner.stats.reset();
    }

    /// Lets requests call this target again.
    pub fn enable_model(&self, id: &str) -> Result<(), TargetError> {
        let slot = self.slot(id)?;
        if let Err(reason) = &slot.model {
            return Err(TargetError::Unavailable { id: slot.id.clone(), reason: reason.clone() });
        }
        slot.enabled.store(true, Relaxed);
        tracing::info!(target_id = id, "enabled model {id}");
        Ok(())
    }

    /// Stops requests from calling this target (calls already running finish).
    pub fn disable_model(&self, id: &str) -> Result<(), TargetError> {
        self.slot(id)?.enabled.store(false, Relaxed);
        tracing::info!(target_id = id, "disabled model {id}");
        Ok(())
    }

    /// Changes a target's priority; the next request uses the new order.
    pub fn set_priority(&self, id: &str, priority: i32) -> Result<(), TargetError> {
        self.slot(id)?.priority.store(priority, Relaxed);
        Ok(())
    }

    /// Changes a target's retries after the first attempt.
    pub fn set_max_retries(&self, id: &str, max_retries: u32) -> Result<(), TargetError> {
        self.slot(id)?.max_retries.store(max_retries, Relaxed);
        Ok(())
    }

    /// The id of the target that served the last successful request, if any did.
    pub fn current_target(&self) -> Option<&str> {
        self.inner.stats.current().map(|i| self.inner.slots[i].id.as_str())
    }

    /// Every target, in the order requests try them.
    pub fn list_models(&self) -> Vec<TargetInfo> {
        let current = self.inner.stats.current();
        self.inner
            .order()
            .into_iter()
            .map(|i| {
                let slot = &self.inner.slots[i];
                let (last_failure, last_recovery) = slot.health.breaker.history();
                TargetInfo {
                    id: slot.id.clone(),
                    provider: slot.config.provider.clone(),
                    model: slot.config.model.clone(),
                    enabled: slot.model.is_ok() && slot.enabled.load(Relaxed),
                    priority: slot.priority.load(Relaxed),
                    max_retries: slot.max_retries.load(Relaxed),
                    is_current: current == Some(i),
                    usage_count: self.inner.stats.usage_count(i),
                    disabled_reason: slot.disabled_reason(),
                    context_window: slot.config.context_window,
                    supports_tools: slot.config.supports_tools,
                    breaker: slot.health.breaker.state(),
                    breaker_since: slot.health.breaker.since(),
                    breaker_opened: slot.health.breaker.opened(),
                    last_failure,
                    last_recovery,
                }
            })
            .collect()
    }

    /// The request's input tokens as counted by the first target, in order, whose API can count them
    /// (disabled targets skipped; a failure moves on to the next), with that target's id; `None` when
    /// none could. Each call has the target's first-chunk timeout, shrunk to the request's deadline.
    pub async fn count_tokens(&self, request: &ChatRequest) -> Option<(String, u64)> {
        for target in self.inner.plan(true) {
            if target.skip.is_some() {
                continue;
            }
            let limits = AttemptLimits::new(
                tokio::time::Instant::now(),
                target.first_chunk_timeout,
                target.total_timeout,
                request.deadline,
            );
            match within(limits.first, target.model.count_tokens(request)).await {
                Ok(Some(tokens)) => return Some((target.id.to_owned(), tokens)),
                Ok(None) => {}
                Err(error) => tracing::warn!(target_id = target.id, %error, "count_tokens failed at {}", target.id),
            }
        }
        None
    }

    /// Continues broken streams with the targets after the last one used.
    fn continuer(&self) -> Continuer {
        let manager = self.clone();
        Arc::new(move |request, used| {
            let manager = manager.clone();
            Box::pin(async move { manager.continue_stream(request, used).await })
        })
    }

    async fn continue_stream(&self, request: ChatRequest, used: Vec<String>) -> Result<ChatStream, Error> {
        let inner = &self.inner;
        let plan = inner.plan(false);
        let after = plan.iter().rposition(|t| used.iter().any(|u| u == t.id)).map_or(0, |i| i + 1);
        // A target set to `continuation = none` is never asked.
        let plan: Vec<Target<'_>> = plan.into_iter().skip(after).filter(|t| t.continuation.style().is_some()).collect();
        // One level of splicing: the outer stream keeps continuing if this one breaks too.
        let policy = Policy { after_commit: AfterCommit::Error, hedge: None, continuing: true, ..inner.policy.clone() };
        runner::stream_continuation(&policy, &plan, request, Some(inner.stats.clone())).await
    }

    fn slot(&self, id: &str) -> Result<&Slot, TargetError> {
        self.inner.slots.iter().find(|s| s.id == id).ok_or_else(|| TargetError::NotFound {
            id: id.to_owned(),
            known: self.inner.slots.iter().map(|s| s.id.as_str()).collect::<Vec<_>>().join(", "),
        })
    }
}

impl Inner {
    /// The request's own deadline or the manager's, whichever is sooner.
    fn with_deadline(&self, mut request: ChatRequest) -> ChatRequest {
        if let Some(deadline) = self.deadline {
            let ours = tokio::time::Instant::now() + deadline;
            request.deadline = Some(request.deadline.map_or(ours, |theirs| theirs.min(ours)));
        }
        request
    }

    /// Slot indexes by (priority, insertion index).
    fn order(&self) -> Vec<usize> {
        self.keyed_order().into_iter().map(|(_, i)| i).collect()
    }

    /// (priority, slot index) sorted; priorities may change at runtime, so each is read once and the
    /// sort sees one consistent set of keys.
    fn keyed_order(&self) -> Vec<(i32, usize)> {
        let mut keyed: Vec<(i32, usize)> =
            self.slots.iter().enumerate().map(|(i, s)| (s.priority.load(Relaxed), i)).collect();
        keyed.sort_unstable();
        keyed
    }

    /// [`order`](Self::order) with each tier in this request's order; `whole`: the request is for a
    /// whole answer (latency balancing compares answer times of the same kind).
    fn balanced_order(&self, whole: bool) -> Vec<usize> {
        let order = self.keyed_order();
        // Nothing to balance (no tier of two, or `ordered`): the order as configured, without the members
        // (collected in place, no allocation).
        let shared_priority = order.windows(2).any(|pair| pair[0].0 == pair[1].0);
        if !shared_priority || !self.balancer.reorders() {
            return order.into_iter().map(|(_, i)| i).collect();
        }
        let mut members: Vec<Member> = order
            .iter()
            .map(|&(_, i)| {
                let slot = &self.slots[i];
                let (latency, in_flight, callable) = if self.balancer.needs_load() {
                    (slot.health.latency.of(whole).peak_ewma(), slot.health.gate.in_flight(), slot.callable())
                } else {
                    (None, 0, true)
                };
                Member { slot: i, weight: slot.config.weight, latency, in_flight, callable }
            })
            .collect();
        let mut start = 0;
        while start < members.len() {
            let priority = order[start].0;
            let len = order[start..].iter().take_while(|(p, _)| *p == priority).count();
            self.balancer.order(&mut members[start..start + len]);
            start += len;
        }
        members.into_iter().map(|m| m.slot).collect()
    }

    /// The targets for one request, in order, with their settings as they are now.
    fn plan(&self, whole: bool) -> Vec<Target<'_>> {
        self.balanced_order(whole)
            .into_iter()
            .map(|i| {
                let slot = &self.slots[i];
                Target {
                    slot: i,
                    id: &slot.id,
                    model: slot.model.as_deref().unwrap_or(&NotBuilt),
                    max_retries: slot.max_retries.load(Relaxed),
                    skip: slot.disabled_reason(),
                    context_window: slot.config.context_window,
                    supports_tools: slot.config.supports_tools,
                    first_chunk_timeout: slot.config.first_chunk_timeout,
                    total_timeout: slot.config.total_timeout,
                    health: Some(&slot.health),
                    transparent: false,
                    continuation: slot.config.continuation,
                }
            })
            .collect()
    }
}

#[async_trait]
impl ChatModel for FallbackManager {
    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, Error> {
        let inner = &self.inner;
        let request = inner.with_deadline(request);
        runner::complete(&inner.policy, &inner.plan(true), request, Some(inner.stats.clone())).await
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, Error> {
        let inner = &self.inner;
        let request = inner.with_deadline(request);
        let continuer = (inner.policy.after_commit == AfterCommit::Continue).then(|| self.continuer());
        runner::stream(&inner.policy, &inner.plan(false), request, Some(inner.stats.clone()), continuer).await
    }
}

impl std::fmt::Debug for FallbackManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FallbackManager").field("targets", &self.list_models()).finish_non_exhaustive()
    }
}

/// Builds a [`FallbackManager`].
#[derive(Default)]
pub struct FallbackManagerBuilder {
    entries: Vec<(ModelFallback, Result<SharedModel, String>)>,
    policy: Policy,
    health_settings: HealthSettings,
    /// Shared health; `None`: the manager keeps its own.
    health: Option<HealthRegistry>,
    deadline: Option<Duration>,
    /// Counters to go on from (a manager this one replaces), and which target ids keep theirs.
    carried: Option<(Arc<Stats>, CarryFilter)>,
    balance: Balance,
    seed: Option<u64>,
}

/// Which target ids keep their counters when a manager is rebuilt.
type CarryFilter = Box<dyn Fn(&str) -> bool + Send + Sync>;

impl FallbackManagerBuilder {
    /// Adds a target.
    pub fn target(mut self, config: ModelFallback, model: SharedModel) -> Self {
        self.entries.push((config, Ok(model)));
        self
    }

    /// Adds a target that could not be built (e.g. its API key is missing): it stays disabled,
    /// `list_models` shows the reason, and the other targets still serve.
    pub fn unavailable_target(mut self, config: ModelFallback, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        // The caller has the reason and reports it once (a gateway builds several engines over one target).
        tracing::debug!(target_id = %config.id(), "failed to create provider for {}: {reason}", config.id());
        self.entries.push((config, Err(reason)));
        self
    }

    /// The wait between retries of one target (default: exponential with full jitter).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.policy.backoff = backoff;
        self
    }

    /// Marks some successful-looking answers as failures (InvalidResponse), which are retried or fall back.
    pub fn validator(mut self, validator: Arc<dyn ResponseValidator>) -> Self {
        self.policy.validator = Some(validator);
        self
    }

    /// The longest Retry-After the manager waits for; a longer one falls back at once (default 30 s).
    pub fn max_retry_wait(mut self, max: Duration) -> Self {
        self.policy.max_retry_wait = Some(max);
        self
    }

    /// What a content-filter refusal does (default [`OnContentFilter::Error`]: it is answered at once).
    pub fn on_content_filter(mut self, action: OnContentFilter) -> Self {
        self.policy.on_content_filter = action;
        self
    }

    /// Whether a first-chunk or total timeout is retried on the same target (default false: it falls back
    /// to the next target at once, since retrying a target that did not answer mostly multiplies the wait).
    /// Connect timeouts and broken connections are retried either way.
    pub fn retry_timeouts(mut self, retry: bool) -> Self {
        self.policy.retry_timeouts = retry;
        self
    }

    /// Each target's circuit breaker (default: 5 consecutive failures open it for 30 s; `None`: never opens).
    pub fn breaker(mut self, breaker: Option<BreakerConfig>) -> Self {
        self.health_settings.breaker = breaker;
        self
    }

    /// Each target's retry budget (default: 20% of its requests plus 10 per second; `None`: no cap beyond
    /// `max_retries`). When it is empty, a failure falls back at once instead of retrying.
    pub fn retry_budget(mut self, budget: Option<BudgetConfig>) -> Self {
        self.health_settings.retry_budget = budget;
        self
    }

    /// Shares each target's health (breaker, failure window, retry budget, latency window) with every
    /// other manager built with the same registry, by target id. Without it the manager keeps its own.
    /// A target already in the registry must have the same `breaker` and `retry_budget` settings, or
    /// [`build`](Self::build) fails with [`ConfigError::SharedHealth`].
    pub fn health(mut self, registry: HealthRegistry) -> Self {
        self.health = Some(registry);
        self
    }

    /// Goes on counting where `previous` (the manager this one replaces, e.g. after a config reload) counts:
    /// the request totals, and the counters of each target id both have and `keep` accepts (shared, so
    /// requests still finishing on `previous` count too). Other targets start at zero.
    pub fn carry_stats(
        mut self,
        previous: &FallbackManager,
        keep: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.carried = Some((previous.inner.stats.clone(), Box::new(keep)));
        self
    }

    /// One deadline for each request's whole chain (all attempts, waits and fallbacks), counted from
    /// its arrival; a request's own [`ChatRequest::deadline`], if sooner, wins. Default: none.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Hedged requests: when the first target called has not answered after a delay, the next one is
    /// called too and the first answer wins (default: off).
    pub fn hedge(mut self, hedge: Option<HedgeConfig>) -> Self {
        self.policy.hedge = hedge.map(Hedge::new);
        self
    }

    /// What a committed stream that breaks does: end with a typed error (the default), or, for
    /// text-only streams, be continued by the next target from the partial answer.
    pub fn after_commit(mut self, after_commit: AfterCommit) -> Self {
        self.policy.after_commit = after_commit;
        self
    }

    /// Whether a target that would drop a request field is skipped instead of called (default false:
    /// it is called, and the attempt names the dropped fields). SPEC-2 section 14.
    pub fn strict_fields(mut self, strict: bool) -> Self {
        self.policy.strict_fields = strict;
        self
    }

    /// How each tier (targets of equal priority) is ordered per request (default [`Balance::Ordered`]:
    /// insertion order, as before tiers existed).
    pub fn balance(mut self, balance: Balance) -> Self {
        self.balance = balance;
        self
    }

    /// Fixes the balancer's random numbers, so the order of tiers is reproducible (for tests).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Checks the targets and builds the manager.
    pub fn build(self) -> Result<FallbackManager, ConfigError> {
        if self.entries.is_empty() {
            return Err(ConfigError::NoTargets);
        }
        let ids: Vec<String> = self.entries.iter().map(|(config, _)| config.id()).collect();
        check_unique(ids.iter().map(String::as_str))?;
        let mut slots: Vec<Slot> = Vec::with_capacity(self.entries.len());
        let registry = self.health.unwrap_or_default();
        for ((config, model), id) in self.entries.into_iter().zip(ids) {
            if config.weight == 0 {
                return Err(ConfigError::Invalid {
                    field: "weight",
                    message: format!("target `{id}` has weight 0; give it 1 or more (disable it to stop its traffic)"),
                });
            }
            let settings = HealthSettings { limits: config.limits, ..self.health_settings.clone() };
            let health = registry.entry(&id, &settings).map_err(|conflict| {
                tracing::warn!(target_id = %id, "{conflict}");
                ConfigError::SharedHealth { id: id.clone() }
            })?;
            slots.push(Slot {
                enabled: AtomicBool::new(config.enabled && model.is_ok()),
                priority: AtomicI32::new(config.priority),
                max_retries: AtomicU32::new(config.max_retries),
                health: health.shared().clone(),
                id,
                config,
                model,
            });
        }
        let ids = slots.iter().map(|s| s.id.clone()).collect();
        let stats = Arc::new(match &self.carried {
            Some((previous, keep)) => Stats::carried(ids, previous, keep),
            None => Stats::new(ids),
        });
        let balancer = Balancer::new(self.balance, self.seed);
        let inner = Inner { slots, policy: self.policy, deadline: self.deadline, stats, balancer };
        Ok(FallbackManager { inner: Arc::new(inner) })
    }
}
