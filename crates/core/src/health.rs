//! What the engine remembers about one target between requests: its circuit breaker and retry budget.

use crate::breaker::{Breaker, BreakerConfig};
use crate::budget::{BudgetConfig, TokenBucket};

/// One target's shared health state.
#[derive(Debug)]
pub(crate) struct Health {
    pub(crate) breaker: Breaker,
    /// Caps retries of this target; `None`: retries are bounded by `max_retries` alone.
    pub(crate) retry_budget: Option<TokenBucket>,
}

impl Health {
    /// Fresh state: breaker closed, budget full.
    pub(crate) fn new(breaker: Option<BreakerConfig>, retry_budget: Option<BudgetConfig>) -> Self {
        Self { breaker: Breaker::new(breaker), retry_budget: retry_budget.map(TokenBucket::new) }
    }
}
