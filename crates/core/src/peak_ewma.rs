//! A peak-sensitive moving average of answer times (Finagle's and Envoy's "peak EWMA"): a slower sample
//! replaces the estimate at once, faster ones pull it down with a time constant. A target that turns slow
//! is avoided at once and trusted again gradually.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// How fast faster samples pull the estimate down: after this long, a sample weighs 63%.
const DECAY: Duration = Duration::from_secs(10);

/// One target's peak EWMA of answer times.
#[derive(Debug, Default)]
pub(crate) struct PeakEwma {
    /// The estimate in seconds and when it last changed; `None` before the first sample.
    state: Mutex<Option<(f64, Instant)>>,
}

impl PeakEwma {
    /// Adds one answer time, taken at `now` (the caller's clock reading: one per call, shared).
    pub(crate) fn record(&self, sample: Duration, now: Instant) {
        let sample = sample.as_secs_f64();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let estimate = match *state {
            Some((estimate, at)) if sample < estimate => {
                let kept = (-now.saturating_duration_since(at).as_secs_f64() / DECAY.as_secs_f64()).exp();
                estimate * kept + sample * (1.0 - kept)
            }
            _ => sample,
        };
        *state = Some((estimate, now));
    }

    /// The estimate in seconds; `None` before the first sample.
    pub(crate) fn estimate(&self) -> Option<f64> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).map(|(estimate, _)| estimate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_slow_sample_counts_at_once_and_fast_ones_decay_it() {
        let e = PeakEwma::default();
        assert_eq!(e.estimate(), None);
        e.record(Duration::from_millis(100), Instant::now());
        e.record(Duration::from_millis(500), Instant::now());
        assert_eq!(e.estimate(), Some(0.5), "a peak replaces the estimate");
        tokio::time::advance(DECAY).await;
        e.record(Duration::from_millis(100), Instant::now());
        let after = e.estimate().unwrap();
        // 0.5 * e^-1 + 0.1 * (1 - e^-1) ≈ 0.247
        assert!((after - 0.247).abs() < 0.001, "{after}");
        e.record(Duration::from_millis(100), Instant::now());
        assert!((e.estimate().unwrap() - after).abs() < 1e-9, "no time passed: the estimate barely moves");
    }
}
