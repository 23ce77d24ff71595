//! What the engine remembers about one target between requests: its circuit breaker.

use crate::breaker::{Breaker, BreakerConfig};

/// One target's shared health state.
#[derive(Debug)]
pub(crate) struct Health {
    pub(crate) breaker: Breaker,
}

impl Health {
    /// Fresh state: breaker closed.
    pub(crate) fn new(breaker: Option<BreakerConfig>) -> Self {
        Self { breaker: Breaker::new(breaker) }
    }
}
