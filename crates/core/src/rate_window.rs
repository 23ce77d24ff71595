//! Requests and tokens in any 60-second window: the `rpm` and `tpm` limits of a target or a client
//! key. Tokens are reserved up front (an estimate) and settled from the usage the answer reports. A window
//! made by a [`LeaseBoard`] also admits only from leases of a cluster-wide budget (see [`crate::lease`]).

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::lease::{Lease, LeaseAsk, LeaseBoard, LeaseGrant, LimitScope, REFILL_WAIT, lease_size};

/// The length of the window both limits count over.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);

/// Which limit of a [`RateWindow`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateLimitKind {
    /// Requests per minute.
    Requests,
    /// Tokens per minute.
    Tokens,
}

impl RateLimitKind {
    /// `rpm` or `tpm`, as the config keys are named.
    pub fn key(self) -> &'static str {
        match self {
            RateLimitKind::Requests => "rpm",
            RateLimitKind::Tokens => "tpm",
        }
    }
}

/// Why a [`RateWindow`] refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDenied {
    /// The limit that was reached.
    pub kind: RateLimitKind,
    /// Its configured value.
    pub limit: u64,
    /// How long until enough of the window expires for this call; `None` when the call alone asks
    /// for more tokens than the limit, so it never fits.
    pub retry_after: Option<Duration>,
}

impl fmt::Display for RateDenied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.retry_after {
            Some(_) => write!(f, "{} limit {} reached", self.kind.key(), self.limit),
            None => {
                write!(f, "the request's token estimate alone exceeds its {} limit of {}", self.kind.key(), self.limit)
            }
        }
    }
}

/// What one admitted call holds in a [`RateWindow`]: settle it with the tokens really used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateReservation {
    seq: u64,
    tokens: u64,
}

impl RateReservation {
    /// The tokens reserved.
    pub fn tokens(&self) -> u64 {
        self.tokens
    }
}

/// The state of a window after an admitted call, for `x-ratelimit-remaining-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateRemaining {
    /// Requests left in the window, when `rpm` is set.
    pub requests: Option<u64>,
    /// Tokens left in the window, when `tpm` is set.
    pub tokens: Option<u64>,
}

/// An exact sliding window over the last 60 seconds: at most `rpm` calls and `tpm` tokens in any
/// 60 s, a burst of `rpm` allowed. Each call is one entry until it leaves the window, so memory is
/// bounded by the calls of one minute. Safe to share between threads.
#[derive(Debug)]
pub struct RateWindow {
    rpm: Option<u64>,
    tpm: Option<u64>,
    state: Mutex<Entries>,
    /// The board and budget name of a cluster-wide window; `None`: this process only.
    shared: Option<(Arc<LeaseBoard>, LimitScope)>,
}

#[derive(Debug, Default)]
struct Entries {
    /// Admitted calls in admission order: (sequence number, when, tokens held).
    calls: VecDeque<Entry>,
    tokens: u64,
    next_seq: u64,
    /// The leased units of a cluster-wide window.
    lease: Lease,
    /// How many times the owed use was handed over ([`RateWindow::lease_ask`]): an entry owed since the
    /// last hand-over is still unreported.
    reports: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    seq: u64,
    at: Instant,
    tokens: u64,
    /// Where a cluster-wide window's units for it came from (what [`RateWindow::cancel`] gives back).
    source: Source,
}

/// Where an admitted call's units came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// A window of this process only.
    Local,
    /// Taken from the lease.
    Lease,
    /// Admitted without a live lease: owed to the shared store, reported at the hand-over after this many.
    Owed(u64),
}

impl Entries {
    fn expire(&mut self, now: Instant) {
        while let Some(first) = self.calls.front() {
            if now.saturating_duration_since(first.at) < RATE_WINDOW {
                break;
            }
            self.tokens -= first.tokens;
            self.calls.pop_front();
        }
    }

    /// How long until the calls admitted so far hold no more than `allowed` tokens.
    fn wait_for_tokens(&self, now: Instant, allowed: u64) -> Duration {
        let mut held = self.tokens;
        for entry in &self.calls {
            if held <= allowed {
                break;
            }
            held -= entry.tokens;
            if held <= allowed {
                return (entry.at + RATE_WINDOW).saturating_duration_since(now);
            }
        }
        Duration::ZERO
    }
}

impl RateWindow {
    /// A window with these limits; `None` leaves that dimension unlimited.
    pub fn new(rpm: Option<u64>, tpm: Option<u64>) -> Self {
        Self { rpm, tpm, state: Mutex::default(), shared: None }
    }

    /// A cluster-wide window of `scope` (made by [`LeaseBoard::window`]).
    pub(crate) fn leased(rpm: Option<u64>, tpm: Option<u64>, board: Arc<LeaseBoard>, scope: LimitScope) -> Self {
        Self { rpm, tpm, state: Mutex::default(), shared: Some((board, scope)) }
    }

    /// Its requests-per-minute limit.
    pub fn rpm(&self) -> Option<u64> {
        self.rpm
    }

    /// Its tokens-per-minute limit.
    pub fn tpm(&self) -> Option<u64> {
        self.tpm
    }

    /// Whose budget it counts, for a cluster-wide window.
    pub fn scope(&self) -> Option<&LimitScope> {
        self.shared.as_ref().map(|(_, scope)| scope)
    }

    /// The limits this process enforces on its own count now: the configured ones, or for a cluster-wide
    /// window without a live lease, each divided by the replicas last seen.
    fn local_limits(&self, lease_live: bool) -> (Option<u64>, Option<u64>) {
        match &self.shared {
            Some((board, _)) if !lease_live => {
                let share = board.replicas();
                (self.rpm.map(|l| (l / share).max(1)), self.tpm.map(|l| (l / share).max(1)))
            }
            _ => (self.rpm, self.tpm),
        }
    }

    /// The lease sizes of each set limit.
    fn lease_sizes(&self, board: &LeaseBoard) -> (Option<u64>, Option<u64>) {
        let replicas = board.replicas();
        (self.rpm.map(|l| lease_size(l, replicas)), self.tpm.map(|l| lease_size(l, replicas)))
    }

    /// Admits one call reserving `tokens`, or says which limit refuses it and for how long. Atomic:
    /// concurrent callers never admit more than the limits between them.
    pub fn try_acquire(&self, now: Instant, tokens: u64) -> Result<(RateReservation, RateRemaining), RateDenied> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.expire(now);
        let lease_live = self.shared.is_some() && state.lease.live(now);
        let (rpm, tpm) = self.local_limits(lease_live);
        if let Some(rpm) = rpm
            && state.calls.len() as u64 >= rpm
        {
            let freed = state.calls.len() + 1 - rpm as usize;
            let wait = state
                .calls
                .get(freed - 1)
                .map_or(Duration::ZERO, |e| (e.at + RATE_WINDOW).saturating_duration_since(now));
            return Err(RateDenied { kind: RateLimitKind::Requests, limit: rpm, retry_after: Some(wait) });
        }
        if let Some(tpm) = tpm {
            if tokens > tpm {
                return Err(RateDenied { kind: RateLimitKind::Tokens, limit: tpm, retry_after: None });
            }
            if state.tokens + tokens > tpm {
                let wait = state.wait_for_tokens(now, tpm - tokens);
                return Err(RateDenied { kind: RateLimitKind::Tokens, limit: tpm, retry_after: Some(wait) });
            }
        }
        let mut source = Source::Local;
        if let Some((board, _)) = &self.shared {
            source = if lease_live { Source::Lease } else { Source::Owed(state.reports) };
            if !lease_live {
                state.lease.owe(tokens);
            } else if let Err(kind) = state.lease.take(self.rpm.is_some(), self.tpm.is_some(), tokens) {
                board.signal();
                let limit = match kind {
                    RateLimitKind::Requests => self.rpm,
                    RateLimitKind::Tokens => self.tpm,
                };
                return Err(RateDenied { kind, limit: limit.unwrap_or(0), retry_after: Some(REFILL_WAIT) });
            }
            let (request_size, token_size) = self.lease_sizes(board);
            if state.lease.low(now, request_size, token_size) {
                board.signal();
            }
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.calls.push_back(Entry { seq, at: now, tokens, source });
        state.tokens += tokens;
        let remaining = self.remaining_of(&state, now);
        Ok((RateReservation { seq, tokens }, remaining))
    }

    fn remaining_of(&self, state: &Entries, now: Instant) -> RateRemaining {
        let lease_live = self.shared.is_some() && state.lease.live(now);
        let (rpm, tpm) = self.local_limits(lease_live);
        let mut remaining = RateRemaining {
            requests: rpm.map(|rpm| rpm.saturating_sub(state.calls.len() as u64)),
            tokens: tpm.map(|tpm| tpm.saturating_sub(state.tokens)),
        };
        if lease_live {
            remaining.requests = remaining.requests.map(|left| left.min(state.lease.requests_left()));
            remaining.tokens = remaining.tokens.map(|left| left.min(state.lease.tokens_left()));
        }
        remaining
    }

    /// Replaces a reservation's estimate with the tokens the call really used. A reservation that
    /// already left the window changes nothing.
    pub fn settle(&self, reservation: RateReservation, used: u64) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Ok(index) = state.calls.binary_search_by_key(&reservation.seq, |e| e.seq) else {
            return;
        };
        let held = state.calls[index].tokens;
        state.calls[index].tokens = used;
        state.tokens = state.tokens - held + used;
        if let Some((board, _)) = &self.shared {
            let cap = self.lease_sizes(board).1.unwrap_or(0);
            state.lease.settle(Instant::now(), held, used, cap);
        }
    }

    /// Takes back a reservation whose call was never made: its request and tokens leave the window. In a
    /// cluster-wide window its units go back to the lease, or are no longer owed; units already reported to
    /// the shared store, or taken from a lease since dropped, stay counted there (never twice, never less).
    pub fn cancel(&self, reservation: RateReservation) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Ok(index) = state.calls.binary_search_by_key(&reservation.seq, |e| e.seq) else {
            return;
        };
        let Some(entry) = state.calls.remove(index) else { return };
        state.tokens -= entry.tokens;
        let Some((board, _)) = &self.shared else { return };
        match entry.source {
            Source::Lease if state.lease.live(Instant::now()) => {
                let (request_size, token_size) = self.lease_sizes(board);
                state.lease.give_back(request_size, token_size, entry.tokens);
            }
            Source::Owed(reports) if reports == state.reports => state.lease.unowe(entry.tokens),
            Source::Local | Source::Lease | Source::Owed(_) => {}
        }
    }

    /// What is left in the window at `now`, without admitting anything.
    pub fn remaining(&self, now: Instant) -> RateRemaining {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.expire(now);
        self.remaining_of(&state, now)
    }

    /// What a cluster-wide window asks the shared store for at `now` (empty for a local window). The use it
    /// owes (admitted without a lease) is handed over with the ask: report it once.
    pub fn lease_ask(&self, now: Instant) -> LeaseAsk {
        let Some((board, _)) = &self.shared else { return LeaseAsk::default() };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.expire(now);
        let (request_size, token_size) = self.lease_sizes(board);
        let counted = (state.calls.len() as u64, state.tokens);
        state.reports += 1;
        state.lease.ask(now, request_size, token_size, counted)
    }

    /// The shared store answered `ask` with `grant` at `now`: the units join the lease, which lives on for
    /// [`LEASE_TTL`](crate::LEASE_TTL).
    pub fn lease_granted(&self, now: Instant, grant: LeaseGrant) {
        if self.shared.is_some() {
            self.state.lock().unwrap_or_else(PoisonError::into_inner).lease.granted(now, grant);
        }
    }

    /// Drops the leased units: the window counts on its own from now on.
    pub(crate) fn drop_lease(&self) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).lease.drop_units();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_burst_of_rpm_then_refused_until_the_first_call_leaves_the_window() {
        let w = RateWindow::new(Some(3), None);
        let t0 = Instant::now();
        for i in 0..3 {
            let (_, left) = w.try_acquire(t0 + secs(i), 0).unwrap();
            assert_eq!(left.requests, Some(2 - i));
        }
        let denied = w.try_acquire(t0 + secs(10), 0).unwrap_err();
        assert_eq!(denied.kind, RateLimitKind::Requests);
        assert_eq!(denied.retry_after, Some(secs(50)));
        assert_eq!(denied.to_string(), "rpm limit 3 reached");
        assert!(w.try_acquire(t0 + secs(60), 0).is_ok(), "the first call left the window");
        assert!(w.try_acquire(t0 + secs(60), 0).is_err(), "the second has not");
    }

    #[test]
    fn tokens_are_reserved_then_settled() {
        let w = RateWindow::new(None, Some(1000));
        let t0 = Instant::now();
        let (big, _) = w.try_acquire(t0, 900).unwrap();
        let denied = w.try_acquire(t0 + secs(1), 200).unwrap_err();
        assert_eq!((denied.kind, denied.retry_after), (RateLimitKind::Tokens, Some(secs(59))));
        w.settle(big, 100);
        let (_, left) = w.try_acquire(t0 + secs(1), 200).unwrap();
        assert_eq!(left.tokens, Some(700));
    }

    #[test]
    fn a_request_larger_than_tpm_never_fits() {
        let w = RateWindow::new(Some(10), Some(100));
        let denied = w.try_acquire(Instant::now(), 101).unwrap_err();
        assert_eq!(denied.retry_after, None);
        assert_eq!(w.remaining(Instant::now()).requests, Some(10), "a refusal holds nothing");
    }

    #[test]
    fn the_token_wait_is_until_enough_calls_leave() {
        let w = RateWindow::new(None, Some(100));
        let t0 = Instant::now();
        w.try_acquire(t0, 40).unwrap();
        w.try_acquire(t0 + secs(5), 40).unwrap();
        w.try_acquire(t0 + secs(9), 20).unwrap();
        // 70 more need 70 free: the first two calls must leave.
        let denied = w.try_acquire(t0 + secs(10), 70).unwrap_err();
        assert_eq!(denied.retry_after, Some(secs(55)));
    }

    #[test]
    fn settling_an_expired_reservation_changes_nothing() {
        let w = RateWindow::new(None, Some(100));
        let t0 = Instant::now();
        let (r, _) = w.try_acquire(t0, 50).unwrap();
        w.try_acquire(t0 + secs(61), 10).unwrap();
        w.settle(r, 90);
        assert_eq!(w.remaining(t0 + secs(61)).tokens, Some(90));
    }

    #[test]
    fn a_cancelled_reservation_leaves_the_window() {
        let w = RateWindow::new(Some(2), Some(100));
        let t0 = Instant::now();
        let (first, _) = w.try_acquire(t0, 60).unwrap();
        w.cancel(first);
        w.cancel(first);
        assert_eq!(w.remaining(t0), RateRemaining { requests: Some(2), tokens: Some(100) }, "as if never taken");
        w.try_acquire(t0, 60).unwrap();
        assert!(w.try_acquire(t0, 40).is_ok());
    }

    #[test]
    fn concurrent_callers_never_admit_more_than_rpm() {
        let w = std::sync::Arc::new(RateWindow::new(Some(100), None));
        let now = Instant::now();
        let admitted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let w = w.clone();
                    s.spawn(move || (0..50).filter(|_| w.try_acquire(now, 1).is_ok()).count())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(admitted, 100);
    }
}
