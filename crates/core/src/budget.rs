//! Token buckets that cap extra upstream calls (retries, hedges) at a share of requests plus a floor
//! per second, so an outage cannot multiply traffic and light traffic is never starved.

use std::sync::{Mutex, PoisonError};

use tokio::time::Instant;

/// How many extra calls a budget allows (SPEC section 6).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetConfig {
    /// Extra calls allowed per request (0.2: one for every five requests).
    pub ratio: f64,
    /// Extra calls always allowed per second, whatever the traffic. The bucket holds ten seconds of
    /// this floor (at least one call), so a burst after a quiet spell is served.
    pub min_per_second: f64,
}

impl BudgetConfig {
    /// Retries: 20% of requests plus 10 per second.
    pub const RETRY: BudgetConfig = BudgetConfig { ratio: 0.2, min_per_second: 10.0 };
    /// Hedges: 10% of requests plus 1 per second.
    pub const HEDGE: BudgetConfig = BudgetConfig { ratio: 0.1, min_per_second: 1.0 };

    fn capacity(&self) -> f64 {
        (self.min_per_second * 10.0).max(1.0)
    }
}

/// A budget in use. It starts full.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    config: BudgetConfig,
    /// (tokens, when they were last refilled)
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub(crate) fn new(config: BudgetConfig) -> Self {
        Self { config, state: Mutex::new((config.capacity(), Instant::now())) }
    }

    /// A request arrived at `now`: it earns `ratio` extra calls.
    pub(crate) fn deposit(&self, now: Instant) {
        self.change(self.config.ratio, now);
    }

    /// Takes one extra call if the budget has it.
    pub(crate) fn try_withdraw(&self) -> bool {
        self.change(-1.0, Instant::now())
    }

    fn change(&self, by: f64, now: Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (tokens, last) = *state;
        let refilled = tokens + now.saturating_duration_since(last).as_secs_f64() * self.config.min_per_second;
        let after = refilled.min(self.config.capacity()) + by;
        if after < 0.0 {
            *state = (refilled.min(self.config.capacity()), now);
            return false;
        }
        *state = (after.min(self.config.capacity()), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn starts_full_earns_per_request_and_refills_per_second() {
        let b = TokenBucket::new(BudgetConfig { ratio: 0.5, min_per_second: 0.2 });
        assert!(b.try_withdraw() && b.try_withdraw());
        assert!(!b.try_withdraw());
        b.deposit(Instant::now());
        b.deposit(Instant::now());
        assert!(b.try_withdraw());
        assert!(!b.try_withdraw());
        tokio::time::advance(std::time::Duration::from_secs(5)).await;
        assert!(b.try_withdraw());
        assert!(!b.try_withdraw());
        tokio::time::advance(std::time::Duration::from_secs(600)).await;
        assert!(b.try_withdraw() && b.try_withdraw());
        assert!(!b.try_withdraw(), "never more than ten seconds of the floor at once");
    }
}
