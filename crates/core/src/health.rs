//! What the engine remembers about one target between requests: its circuit breaker, retry budget and
//! recent latency.

use crate::breaker::{Breaker, BreakerConfig};
use crate::budget::{BudgetConfig, TokenBucket};
use crate::latency::LatencyWindow;

/// One target's shared health state.
#[derive(Debug)]
pub(crate) struct Health {
    pub(crate) breaker: Breaker,
    /// Caps retries of this target; `None`: retries are bounded by `max_retries` alone.
    pub(crate) retry_budget: Option<TokenBucket>,
    /// Recent times to answer, for hedging at the p95: whole answers, and streams' first content chunks.
    pub(crate) latency: Latencies,
}

impl Health {
    /// Fresh state: breaker closed, budget full.
    pub(crate) fn new(breaker: Option<BreakerConfig>, retry_budget: Option<BudgetConfig>) -> Self {
        Self {
            breaker: Breaker::new(breaker),
            retry_budget: retry_budget.map(TokenBucket::new),
            latency: Latencies::default(),
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
