//! Lock-free, exact counters of a [`FallbackManager`](crate::FallbackManager), and the per-request
//! tracker that feeds them (its drop guard counts a request the caller abandoned as cancelled).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::ErrorKind;

const NO_TARGET: usize = usize::MAX;

/// Counters of one target.
#[derive(Debug, Default)]
struct TargetCounters {
    attempts: AtomicU64,
    successes: AtomicU64,
    cancelled: AtomicU64,
    stream_failures: AtomicU64,
    usage_count: AtomicU64,
    latency_nanos: AtomicU64,
    skipped: AtomicU64,
    retries_refused: AtomicU64,
    hedges: AtomicU64,
    /// Shared with the target's streams, which add each malformed event they skip.
    events_skipped: Arc<AtomicU64>,
    failures: [AtomicU64; ErrorKind::ALL.len()],
}

/// Counters of the requests themselves (not of one target).
#[derive(Debug, Default)]
struct Totals {
    success: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
    fallbacks: AtomicU64,
    in_flight: AtomicU64,
    /// Milliseconds since the Unix epoch, plus one (0: never).
    last_fallback: AtomicU64,
}

/// The live counters. Every field is an atomic, so recording never blocks a request. The totals and each
/// target's counters are shared (`Arc`) so a manager rebuilt from a new config can carry them on: requests
/// still finishing on the old manager then count in the same place.
#[derive(Debug)]
pub(crate) struct Stats {
    totals: Arc<Totals>,
    /// Index of the target that served the last success (not cleared by a reset: it is state, not a count).
    current: AtomicUsize,
    ids: Vec<String>,
    targets: Vec<Arc<TargetCounters>>,
}

/// A copy of the counters at one moment.
///
/// A request is counted when it ends, by its outcome; `total` is the sum of the three outcomes, so
/// `total == success + failed + cancelled` holds in every snapshot, even across
/// [`reset_stats`](crate::FallbackManager::reset_stats) with requests in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Requests that ended.
    pub total: u64,
    /// Requests answered (for streams: that ended with their finish).
    pub success: u64,
    /// Requests that ended in an error.
    pub failed: u64,
    /// Requests the caller abandoned (dropped) or that a nested call reported cancelled.
    pub cancelled: u64,
    /// Requests running now (not cleared by a reset).
    pub in_flight: u64,
    /// Requests that needed a fallback: a target failed and another was called (counted once per request).
    pub fallbacks: u64,
    /// When a request last fell back.
    pub last_fallback: Option<SystemTime>,
    /// Per target, by id.
    pub targets: BTreeMap<String, TargetStatsSnapshot>,
}

/// A copy of one target's counters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TargetStatsSnapshot {
    /// Calls made (`successes + failures + cancelled`).
    pub attempts: u64,
    /// Calls that answered (for streams: reached their first content chunk).
    pub successes: u64,
    /// Calls that failed before answering, by kind (kinds with no failure are left out).
    pub failures: BTreeMap<ErrorKind, u64>,
    /// Calls still running when the caller went away.
    pub cancelled: u64,
    /// Committed streams that failed afterwards.
    pub stream_failures: u64,
    /// Requests this target served.
    pub usage_count: u64,
    /// Time spent in calls (to the first content chunk for streams).
    pub latency_total: Duration,
    /// Times it was passed over without a call (breaker open, disabled, cannot serve the request).
    pub skipped: u64,
    /// Retries its retry budget refused (the request fell back instead).
    pub retries_refused: u64,
    /// Hedged calls started to it while another target was still working on the request.
    pub hedges: u64,
    /// Malformed events its streams skipped (an event that is not valid JSON, or of no known shape,
    /// inside an otherwise healthy stream).
    pub events_skipped: u64,
}

impl TargetStatsSnapshot {
    /// All failures, whatever their kind.
    pub fn failure_count(&self) -> u64 {
        self.failures.values().sum()
    }

    /// Mean time per call.
    pub fn mean_latency(&self) -> Duration {
        match u32::try_from(self.attempts) {
            Ok(n) if n > 0 => self.latency_total / n,
            _ => Duration::ZERO,
        }
    }
}

impl Stats {
    /// Counters for these target ids (in the manager's insertion order).
    pub(crate) fn new(ids: Vec<String>) -> Self {
        let targets = ids.iter().map(|_| Arc::default()).collect();
        Self { totals: Arc::default(), current: AtomicUsize::new(NO_TARGET), ids, targets }
    }

    /// Counters for these target ids that go on from `previous`: its totals, and the counters of each id
    /// `keep` accepts that `previous` has (the others start at zero).
    pub(crate) fn carried(ids: Vec<String>, previous: &Stats, keep: &dyn Fn(&str) -> bool) -> Self {
        let targets = ids
            .iter()
            .map(|id| match previous.ids.iter().position(|p| p == id) {
                Some(i) if keep(id) => previous.targets[i].clone(),
                _ => Arc::default(),
            })
            .collect();
        Self { totals: previous.totals.clone(), current: AtomicUsize::new(NO_TARGET), ids, targets }
    }

    /// Index of the target that served the last success.
    pub(crate) fn current(&self) -> Option<usize> {
        match self.current.load(Relaxed) {
            NO_TARGET => None,
            i => Some(i),
        }
    }

    /// Requests served by this target.
    pub(crate) fn usage_count(&self, slot: usize) -> u64 {
        self.targets.get(slot).map_or(0, |t| t.usage_count.load(Relaxed))
    }

    /// Sets every count to zero (the in-flight gauge and the current target stay).
    pub(crate) fn reset(&self) {
        let totals = &*self.totals;
        for counter in [&totals.success, &totals.failed, &totals.cancelled, &totals.fallbacks, &totals.last_fallback] {
            counter.store(0, Relaxed);
        }
        for t in &self.targets {
            for counter in [
                &t.attempts,
                &t.successes,
                &t.cancelled,
                &t.stream_failures,
                &t.usage_count,
                &t.latency_nanos,
                &t.skipped,
                &t.retries_refused,
                &t.hedges,
                &t.events_skipped,
            ] {
                counter.store(0, Relaxed);
            }
            for counter in &t.failures {
                counter.store(0, Relaxed);
            }
        }
    }

    /// A copy of the counters.
    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        let targets = self
            .ids
            .iter()
            .zip(&self.targets)
            .map(|(id, t)| {
                let failures = ErrorKind::ALL
                    .iter()
                    .zip(&t.failures)
                    .filter_map(|(kind, n)| match n.load(Relaxed) {
                        0 => None,
                        n => Some((*kind, n)),
                    })
                    .collect();
                let snapshot = TargetStatsSnapshot {
                    attempts: t.attempts.load(Relaxed),
                    successes: t.successes.load(Relaxed),
                    failures,
                    cancelled: t.cancelled.load(Relaxed),
                    stream_failures: t.stream_failures.load(Relaxed),
                    usage_count: t.usage_count.load(Relaxed),
                    latency_total: Duration::from_nanos(t.latency_nanos.load(Relaxed)),
                    skipped: t.skipped.load(Relaxed),
                    retries_refused: t.retries_refused.load(Relaxed),
                    hedges: t.hedges.load(Relaxed),
                    events_skipped: t.events_skipped.load(Relaxed),
                };
                (id.clone(), snapshot)
            })
            .collect();
        let totals = &*self.totals;
        let last_fallback = match totals.last_fallback.load(Relaxed) {
            0 => None,
            millis => Some(UNIX_EPOCH + Duration::from_millis(millis - 1)),
        };
        let (success, failed, cancelled) =
            (totals.success.load(Relaxed), totals.failed.load(Relaxed), totals.cancelled.load(Relaxed));
        StatsSnapshot {
            total: success + failed + cancelled,
            success,
            failed,
            cancelled,
            in_flight: totals.in_flight.load(Relaxed),
            fallbacks: totals.fallbacks.load(Relaxed),
            last_fallback,
            targets,
        }
    }

    fn target(&self, slot: usize) -> Option<&TargetCounters> {
        self.targets.get(slot).map(|t| &**t)
    }
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    Failed,
    Cancelled,
}

/// Records one request. If it is dropped before [`finish`](Self::finish) (the caller abandoned the
/// future or the stream), the request counts as cancelled, as does the call it was waiting on.
#[derive(Debug)]
pub(crate) struct RequestTracker {
    stats: Option<Arc<Stats>>,
    /// Calls running now (two while a hedge races).
    in_attempt: Vec<usize>,
    fell_back: bool,
    settled: bool,
    /// False for a continuation's calls: they count per target, not as a request of their own.
    counts_request: bool,
}

impl RequestTracker {
    /// Starts tracking; with `None`, records nothing (interceptors keep no stats).
    pub(crate) fn new(stats: Option<Arc<Stats>>) -> Self {
        if let Some(stats) = &stats {
            stats.totals.in_flight.fetch_add(1, Relaxed);
        }
        Self { stats, in_attempt: Vec::new(), fell_back: false, settled: false, counts_request: true }
    }

    /// Tracks the calls made to continue a broken stream, which belong to the request already counted.
    pub(crate) fn nested(stats: Option<Arc<Stats>>) -> Self {
        Self { stats, in_attempt: Vec::new(), fell_back: false, settled: false, counts_request: false }
    }

    fn target(&self, slot: usize) -> Option<&TargetCounters> {
        self.stats.as_deref().and_then(|s| s.target(slot))
    }

    /// The counter the target's streams add their skipped events to (none without stats).
    pub(crate) fn events_skipped(&self, slot: usize) -> Option<Arc<AtomicU64>> {
        self.target(slot).map(|t| t.events_skipped.clone())
    }

    /// A call to this target starts.
    pub(crate) fn attempt_started(&mut self, slot: usize) {
        if let Some(t) = self.target(slot) {
            t.attempts.fetch_add(1, Relaxed);
        }
        self.in_attempt.push(slot);
    }

    /// The call failed with this kind.
    pub(crate) fn attempt_failed(&mut self, slot: usize, kind: ErrorKind, elapsed: Duration) {
        self.ended(slot);
        if let Some(t) = self.target(slot) {
            if let Some(i) = ErrorKind::ALL.iter().position(|k| *k == kind) {
                t.failures[i].fetch_add(1, Relaxed);
            }
            t.latency_nanos.fetch_add(nanos(elapsed), Relaxed);
        }
    }

    /// The call answered: this target serves the request.
    pub(crate) fn attempt_succeeded(&mut self, slot: usize, elapsed: Duration) {
        self.ended(slot);
        if let Some(t) = self.target(slot) {
            t.successes.fetch_add(1, Relaxed);
            t.usage_count.fetch_add(1, Relaxed);
            t.latency_nanos.fetch_add(nanos(elapsed), Relaxed);
        }
        if let Some(stats) = &self.stats {
            stats.current.store(slot, Relaxed);
        }
    }

    /// A committed stream from this target failed afterwards.
    pub(crate) fn stream_failed(&mut self, slot: usize) {
        if let Some(t) = self.target(slot) {
            t.stream_failures.fetch_add(1, Relaxed);
        }
    }

    fn ended(&mut self, slot: usize) {
        if let Some(i) = self.in_attempt.iter().position(|s| *s == slot) {
            self.in_attempt.swap_remove(i);
        }
    }

    /// The call lost a hedge race and was dropped.
    pub(crate) fn attempt_cancelled(&mut self, slot: usize) {
        self.ended(slot);
        if let Some(t) = self.target(slot) {
            t.cancelled.fetch_add(1, Relaxed);
        }
    }

    /// A hedged call to this target started.
    pub(crate) fn hedged(&mut self, slot: usize) {
        if let Some(t) = self.target(slot) {
            t.hedges.fetch_add(1, Relaxed);
        }
    }

    /// The target was passed over without a call.
    pub(crate) fn skipped(&mut self, slot: usize) {
        if let Some(t) = self.target(slot) {
            t.skipped.fetch_add(1, Relaxed);
        }
    }

    /// The target's retry budget refused a retry.
    pub(crate) fn retry_refused(&mut self, slot: usize) {
        if let Some(t) = self.target(slot) {
            t.retries_refused.fetch_add(1, Relaxed);
        }
    }

    /// The request moved on to another target after a failure (counted once per request).
    pub(crate) fn fell_back(&mut self) {
        if self.fell_back || !self.counts_request {
            return;
        }
        self.fell_back = true;
        if let Some(stats) = &self.stats {
            stats.totals.fallbacks.fetch_add(1, Relaxed);
            let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
            stats.totals.last_fallback.store(u64::try_from(millis).unwrap_or(u64::MAX - 1) + 1, Relaxed);
        }
    }

    /// The request ended.
    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.settle(outcome);
    }

    fn settle(&mut self, outcome: Outcome) {
        if self.settled {
            return;
        }
        self.settled = true;
        if outcome == Outcome::Cancelled {
            for slot in &self.in_attempt {
                if let Some(t) = self.target(*slot) {
                    t.cancelled.fetch_add(1, Relaxed);
                }
            }
        }
        let Some(stats) = &self.stats else { return };
        if !self.counts_request {
            return;
        }
        let counter = match outcome {
            Outcome::Success => &stats.totals.success,
            Outcome::Failed => &stats.totals.failed,
            Outcome::Cancelled => &stats.totals.cancelled,
        };
        counter.fetch_add(1, Relaxed);
        stats.totals.in_flight.fetch_sub(1, Relaxed);
    }
}

impl Drop for RequestTracker {
    fn drop(&mut self) {
        self.settle(Outcome::Cancelled);
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_tracker_counts_as_cancelled_with_its_open_call() {
        let stats = Arc::new(Stats::new(vec!["a".into(), "b".into()]));
        let mut t = RequestTracker::new(Some(stats.clone()));
        t.attempt_started(0);
        t.attempt_failed(0, ErrorKind::Server, Duration::from_millis(3));
        t.fell_back();
        t.fell_back();
        t.attempt_started(1);
        assert_eq!(stats.snapshot().in_flight, 1);
        drop(t);
        let s = stats.snapshot();
        assert_eq!((s.total, s.success, s.failed, s.cancelled, s.fallbacks, s.in_flight), (1, 0, 0, 1, 1, 0));
        assert!(s.last_fallback.is_some());
        assert_eq!(s.targets["a"].failures[&ErrorKind::Server], 1);
        assert_eq!(s.targets["b"].cancelled, 1);
        assert_eq!(s.targets["b"].attempts, 1);
    }

    #[test]
    fn reset_clears_counts_and_snapshots_are_copies() {
        let stats = Arc::new(Stats::new(vec!["a".into()]));
        let mut t = RequestTracker::new(Some(stats.clone()));
        t.attempt_started(0);
        t.attempt_succeeded(0, Duration::from_millis(1));
        t.finish(Outcome::Success);
        let before = stats.snapshot();
        stats.reset();
        assert_eq!(before.success, 1);
        let after = stats.snapshot();
        assert_eq!((after.total, after.success, after.targets["a"].usage_count), (0, 0, 0));
        assert_eq!(stats.current(), Some(0));
    }
}
