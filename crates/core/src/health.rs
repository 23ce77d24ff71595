//! What the engine remembers about one target between requests: its circuit breaker, retry budget and
//! recent latency, and what it admits (calls in flight).

use crate::breaker::{Announcer, Breaker, BreakerConfig};
use crate::budget::{BudgetConfig, TokenBucket};
use crate::gate::{Gate, TargetLimits};
use crate::latency::LatencyWindow;
use crate::lease::LeaseBoard;

pub use crate::health_registry::{HealthConflict, HealthRegistry, HealthStage, TargetHealth};

/// A target's health settings: its breaker, its retry budget and its limits. Every user of one target's
/// health shares them, so they come with the health entry (see [`HealthRegistry`]).
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSettings {
    /// The circuit breaker; `None`: it never opens.
    pub breaker: Option<BreakerConfig>,
    /// The retry budget; `None`: retries are bounded by `max_retries` alone.
    pub retry_budget: Option<BudgetConfig>,
    /// Its `rpm`, `tpm` and `max_concurrency` (a manager takes them from each [`ModelFallback`](crate::ModelFallback)).
    pub limits: TargetLimits,
}

impl Default for HealthSettings {
    /// The default breaker (5 failures, 30 s) and retry budget (20% plus 10 per second).
    fn default() -> Self {
        Self {
            breaker: Some(BreakerConfig::default()),
            retry_budget: Some(BudgetConfig::RETRY),
            limits: TargetLimits::default(),
        }
    }
}

/// One target's shared health state.
#[derive(Debug)]
pub(crate) struct Health {
    /// What the breaker and budget were built from.
    pub(crate) settings: HealthSettings,
    pub(crate) breaker: Breaker,
    /// Caps retries of this target; `None`: retries are bounded by `max_retries` alone.
    pub(crate) retry_budget: Option<TokenBucket>,
    /// Recent times to answer, for hedging at the p95: whole answers, and streams' first content chunks.
    pub(crate) latency: Latencies,
    /// Its limits and calls in flight.
    pub(crate) gate: Gate,
}

impl Health {
    /// Fresh state of target `id`: breaker closed, budget full; the breaker's changes go to `announcer`;
    /// `rpm`/`tpm` leased from `board` when there is one.
    pub(crate) fn new(
        id: &str,
        settings: HealthSettings,
        announcer: Option<Announcer>,
        board: Option<&std::sync::Arc<LeaseBoard>>,
    ) -> Self {
        Self {
            breaker: Breaker::new(settings.breaker.clone(), announcer),
            retry_budget: settings.retry_budget.map(TokenBucket::new),
            latency: Latencies::default(),
            gate: Gate::new(id, &settings.limits, board),
            settings,
        }
    }
}

/// Answer times by mode: a whole answer takes far longer than a stream's first chunk.
#[derive(Debug, Default)]
pub(crate) struct Latencies {
    whole: LatencyWindow,
    first_chunk: LatencyWindow,
}

impl Latencies {
    /// The window for whole answers (`true`) or streams' first chunks (`false`).
    pub(crate) fn of(&self, whole: bool) -> &LatencyWindow {
        if whole { &self.whole } else { &self.first_chunk }
    }
}
