//! Hedged requests: when the first target has not answered after a delay, the next one is called too,
//! and the first answer (for streams: the first content chunk) wins.

use std::sync::Arc;
use std::time::Duration;

use crate::budget::{BudgetConfig, TokenBucket};

/// When to start the hedged call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HedgeAfter {
    /// After this long without an answer.
    Fixed(Duration),
    /// After the primary's observed 95th-percentile time to answer (first content chunk for streams),
    /// over its last 200 successful calls, once it has 20 of them; until then after `initial` (`None`: no
    /// hedging until then).
    P95 {
        /// The delay while there are fewer than 20 samples.
        initial: Option<Duration>,
    },
}

/// Hedging settings (SPEC section 6).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HedgeConfig {
    /// When to start the extra call.
    pub after: HedgeAfter,
    /// Caps the extra calls (default: 10% of requests plus 1 per second).
    pub budget: BudgetConfig,
}

impl Default for HedgeConfig {
    /// After the primary's p95, or after [`HedgeConfig::DEFAULT_INITIAL`] until it has 20 samples; the
    /// gateway's default for a route without a `hedge` key. A manager hedges only when given a config.
    fn default() -> Self {
        Self::p95_or(Self::DEFAULT_INITIAL)
    }
}

impl HedgeConfig {
    /// The delay of the default p95 hedge while the primary has fewer than 20 samples: 10 s.
    pub const DEFAULT_INITIAL: Duration = Duration::from_secs(10);

    /// Hedge after a fixed delay, with the default budget.
    pub fn after(delay: Duration) -> Self {
        Self { after: HedgeAfter::Fixed(delay), budget: BudgetConfig::HEDGE }
    }

    /// Hedge after the primary's p95, with the default budget; no hedging until it has 20 samples.
    pub fn p95() -> Self {
        Self { after: HedgeAfter::P95 { initial: None }, budget: BudgetConfig::HEDGE }
    }

    /// Hedge after the primary's p95, or after `initial` until it has 20 samples, with the default budget
    /// (the gateway's default: `initial` 10 s).
    pub fn p95_or(initial: Duration) -> Self {
        Self { after: HedgeAfter::P95 { initial: Some(initial) }, budget: BudgetConfig::HEDGE }
    }
}

/// Hedging in use: the settings and the shared budget.
#[derive(Debug, Clone)]
pub(crate) struct Hedge {
    pub(crate) after: HedgeAfter,
    pub(crate) budget: Arc<TokenBucket>,
}

impl Hedge {
    pub(crate) fn new(config: HedgeConfig) -> Self {
        Self { after: config.after, budget: Arc::new(TokenBucket::new(config.budget)) }
    }
}
