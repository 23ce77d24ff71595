//! A target's recent answer times (to the first content chunk for streams), for hedging at its p95 and
//! for latency-aware balancing (their peak EWMA).

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::peak_ewma::PeakEwma;

/// Samples kept.
const KEEP: usize = 200;
/// Samples needed before a percentile means anything; until then, `p95` hedging waits.
const MIN_SAMPLES: usize = 20;

/// The last [`KEEP`] answer times of one target.
#[derive(Debug, Default)]
pub(crate) struct LatencyWindow {
    samples: Mutex<VecDeque<Duration>>,
    ewma: PeakEwma,
}

impl LatencyWindow {
    /// Records one successful call's time to answer, which ended at `now`.
    pub(crate) fn record(&self, elapsed: Duration, now: Instant) {
        self.ewma.record(elapsed, now);
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        if samples.len() == KEEP {
            samples.pop_front();
        }
        samples.push_back(elapsed);
    }

    /// The peak EWMA of the answer times in seconds, once there is a sample.
    pub(crate) fn peak_ewma(&self) -> Option<f64> {
        self.ewma.estimate()
    }

    /// The 95th percentile of the recent samples, once there are enough of them.
    pub(crate) fn p95(&self) -> Option<Duration> {
        let mut samples: Vec<Duration> =
            self.samples.lock().unwrap_or_else(PoisonError::into_inner).iter().copied().collect();
        if samples.len() < MIN_SAMPLES {
            return None;
        }
        let rank = (samples.len() * 95).div_ceil(100);
        // Selection, not a full sort: this runs on every hedged request (a sort of 200 samples was ~27k
        // instructions, a sixth of a proxied request).
        let (_, p95, _) = samples.select_nth_unstable(rank.saturating_sub(1));
        Some(*p95)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p95_needs_twenty_samples_and_ignores_the_slowest_five_percent() {
        let w = LatencyWindow::default();
        for i in 0..19 {
            w.record(Duration::from_millis(i), Instant::now());
        }
        assert_eq!(w.p95(), None);
        w.record(Duration::from_millis(19), Instant::now());
        assert_eq!(w.p95(), Some(Duration::from_millis(18)));
        for _ in 0..190 {
            w.record(Duration::from_millis(50), Instant::now());
        }
        for _ in 0..10 {
            w.record(Duration::from_secs(2), Instant::now());
        }
        assert_eq!(w.p95(), Some(Duration::from_millis(50)));
    }
}
