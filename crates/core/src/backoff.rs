//! How long to wait before retrying the same target.

use std::time::Duration;

/// A retry delay policy. `delay(retry)` is the wait before retry number `retry` (1 = first retry).
///
/// A Retry-After from the provider is a floor on whatever this returns.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Backoff {
    /// No wait: retry at once.
    Immediate,
    /// The same wait every time.
    Constant {
        /// The wait.
        delay: Duration,
    },
    /// `retry × base` (the Go seed's, with base 500 ms): 500 ms, 1 s, 1.5 s, …
    Linear {
        /// The step.
        base: Duration,
    },
    /// `base × 2^(retry-1)` capped at `max`, then a uniformly random wait up to that ("full jitter"),
    /// so that many clients retrying at once do not hit the provider in step. The default.
    Exponential {
        /// The first cap.
        base: Duration,
        /// The largest cap.
        max: Duration,
    },
    /// `initial × multiplier^(retry-1)` capped at `max`, without jitter (the Java seed's retry interceptor).
    Geometric {
        /// The first wait.
        initial: Duration,
        /// The growth factor (at least 1.0).
        multiplier: f64,
        /// The largest wait.
        max: Duration,
    },
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::Exponential { base: Backoff::DEFAULT_BASE, max: Backoff::DEFAULT_MAX }
    }
}

impl Backoff {
    /// The base of the default linear and exponential backoffs: 500 ms.
    pub const DEFAULT_BASE: Duration = Duration::from_millis(500);
    /// The cap of the default exponential backoff: 30 s.
    pub const DEFAULT_MAX: Duration = Duration::from_secs(30);

    /// The Go seed's linear backoff: `retry × 500 ms`.
    pub fn linear() -> Self {
        Backoff::Linear { base: Backoff::DEFAULT_BASE }
    }

    /// Capped exponential backoff with full jitter: base 500 ms, cap 30 s.
    pub fn exponential() -> Self {
        Self::default()
    }

    /// The wait before retry number `retry` (1 for the first retry; 0 gives no wait).
    pub fn delay(&self, retry: u32) -> Duration {
        if retry == 0 {
            return Duration::ZERO;
        }
        match self {
            Backoff::Immediate => Duration::ZERO,
            Backoff::Constant { delay } => *delay,
            Backoff::Linear { base } => base.saturating_mul(retry),
            Backoff::Exponential { .. } => jitter(self.ceiling(retry)),
            Backoff::Geometric { initial, multiplier, max } => {
                let factor = multiplier.max(1.0).powi(i32::try_from(retry - 1).unwrap_or(i32::MAX));
                let secs = initial.as_secs_f64() * factor;
                if secs.is_finite() && secs < max.as_secs_f64() { Duration::from_secs_f64(secs) } else { *max }
            }
        }
    }

    /// The largest wait `delay(retry)` can return (the jitter's upper bound for `Exponential`).
    pub fn ceiling(&self, retry: u32) -> Duration {
        match self {
            Backoff::Exponential { base, max } => {
                if retry == 0 {
                    return Duration::ZERO;
                }
                let doubling = 2u32.checked_pow(retry - 1).unwrap_or(u32::MAX);
                base.saturating_mul(doubling).min(*max)
            }
            other => other.delay(retry),
        }
    }
}

fn jitter(cap: Duration) -> Duration {
    let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(rand::random_range(0..=nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn linear_is_retry_times_base() {
        let b = Backoff::linear();
        assert_eq!([b.delay(0), b.delay(1), b.delay(2), b.delay(3)], [Duration::ZERO, MS * 500, MS * 1000, MS * 1500]);
    }

    #[test]
    fn exponential_doubles_up_to_the_cap_with_jitter_below_it() {
        let b = Backoff::Exponential { base: MS * 100, max: MS * 1000 };
        assert_eq!(
            [b.ceiling(1), b.ceiling(2), b.ceiling(3), b.ceiling(5), b.ceiling(40)],
            [MS * 100, MS * 200, MS * 400, MS * 1000, MS * 1000]
        );
        for retry in 1..10 {
            for _ in 0..50 {
                assert!(b.delay(retry) <= b.ceiling(retry));
            }
        }
        // Full jitter spreads the waits: 200 draws below a 1 s cap are not all equal.
        let draws: std::collections::BTreeSet<_> = (0..200).map(|_| b.delay(8)).collect();
        assert!(draws.len() > 1);
    }

    #[test]
    fn geometric_multiplies_and_caps_without_jitter() {
        let b = Backoff::Geometric { initial: MS * 1000, multiplier: 2.0, max: MS * 5000 };
        assert_eq!(
            [b.delay(1), b.delay(2), b.delay(3), b.delay(4), b.delay(60)],
            [MS * 1000, MS * 2000, MS * 4000, MS * 5000, MS * 5000]
        );
    }
}
