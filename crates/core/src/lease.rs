//! Cluster-wide `rpm`/`tpm`: a [`RateWindow`] made by a [`LeaseBoard`] admits only from small leases of
//! the shared budget that a background task (outside the core) takes from a shared store. The request path
//! touches only the window's mutex; when the leases are low it wakes the background task, which never makes
//! a request wait. Without a live lease (the store unreachable for [`LEASE_TTL`]) the window falls back to
//! its own count of the limit divided by the replicas last seen.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::rate_window::{RateLimitKind, RateWindow};

/// How long a lease stays usable without a word from the shared store: past it, the window falls back
/// to its own count and the units it held are dropped.
pub const LEASE_TTL: Duration = Duration::from_secs(2);

/// The share of a limit all replicas lease at once, in percent (each takes its part of it).
const LEASE_PERCENT: u64 = 5;

/// The wait a call refused for want of leased units is told: the next lease comes within a tick.
pub(crate) const REFILL_WAIT: Duration = Duration::from_secs(1);

/// Whose limit a leased window counts: the name of its budget in the shared store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LimitScope {
    /// A target's `rpm`/`tpm`, by target id.
    Target(String),
    /// A caller's named key's `rpm`/`tpm`, by key name.
    Client(String),
}

/// Every leased window of one process, the replica count for the fallback, and the low-lease signal.
#[derive(Debug)]
pub struct LeaseBoard {
    windows: Mutex<Vec<Weak<RateWindow>>>,
    replicas: AtomicU64,
    wake: Notify,
}

impl LeaseBoard {
    /// An empty board; one replica seen until told otherwise.
    pub fn new() -> Arc<Self> {
        Arc::new(Self { windows: Mutex::default(), replicas: AtomicU64::new(1), wake: Notify::new() })
    }

    /// A new window of `scope` with these limits, admitting from leases of this board.
    pub fn window(self: &Arc<Self>, scope: LimitScope, rpm: Option<u64>, tpm: Option<u64>) -> Arc<RateWindow> {
        let window = Arc::new(RateWindow::leased(rpm, tpm, self.clone(), scope));
        self.windows.lock().unwrap_or_else(PoisonError::into_inner).push(Arc::downgrade(&window));
        window
    }

    /// The windows still in use (forgetting the dropped ones).
    pub fn windows(&self) -> Vec<Arc<RateWindow>> {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        windows.retain(|w| w.strong_count() > 0);
        windows.iter().filter_map(Weak::upgrade).collect()
    }

    /// Sets how many replicas share the limits (at least 1): the fallback divides each limit by it, and the
    /// lease size is its part of 5% of the limit.
    pub fn set_replicas(&self, replicas: u64) {
        self.replicas.store(replicas.max(1), Relaxed);
    }

    /// The replicas last seen sharing the limits.
    pub fn replicas(&self) -> u64 {
        self.replicas.load(Relaxed).max(1)
    }

    /// Waits until some window runs low on leased units (or was refused for want of them).
    pub async fn wanted(&self) {
        self.wake.notified().await;
    }

    /// Says a window runs low; never blocks.
    pub(crate) fn signal(&self) {
        self.wake.notify_one();
    }

    /// The shared store is unreachable: every window drops its lease and counts on its own now.
    pub fn drop_leases(&self) {
        for window in self.windows() {
            window.drop_lease();
        }
    }
}

/// What the background task asks the shared store for, for one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaseAsk {
    /// Request units wanted.
    pub requests: u64,
    /// Token units wanted.
    pub tokens: u64,
    /// Requests admitted without a lease since the last report: to be counted in the store.
    pub used_requests: u64,
    /// Tokens used beyond the leases since the last report: to be counted in the store.
    pub used_tokens: u64,
}

impl LeaseAsk {
    /// Whether there is nothing to ask nor report.
    pub fn is_empty(&self) -> bool {
        *self == LeaseAsk::default()
    }
}

/// What the shared store granted one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaseGrant {
    /// Request units granted.
    pub requests: u64,
    /// Token units granted.
    pub tokens: u64,
    /// Requests left in the shared window after the grant, when known.
    pub requests_left: Option<u64>,
    /// Tokens left in the shared window after the grant, when known.
    pub tokens_left: Option<u64>,
}

/// One window's leased units and what it owes the shared store (inside the window's mutex).
#[derive(Debug, Default)]
pub(crate) struct Lease {
    /// Usable until then; `None`: never granted or dropped.
    until: Option<Instant>,
    requests: u64,
    tokens: u64,
    unreported_requests: u64,
    unreported_tokens: u64,
    /// The largest reservation refused for want of token units: the next ask covers it.
    wanted_tokens: u64,
    requests_left: u64,
    tokens_left: u64,
}

/// How many units one replica leases at once: its part of 5% of the limit, at least 1.
pub(crate) fn lease_size(limit: u64, replicas: u64) -> u64 {
    (limit * LEASE_PERCENT / 100 / replicas.max(1)).max(1)
}

impl Lease {
    /// Whether the lease may be used at `now`.
    pub(crate) fn live(&self, now: Instant) -> bool {
        self.until.is_some_and(|until| now < until)
    }

    /// Takes one request unit (when `rpm` is set) and `tokens` token units (when `tpm` is set), or says
    /// which is missing.
    pub(crate) fn take(&mut self, rpm: bool, tpm: bool, tokens: u64) -> Result<(), RateLimitKind> {
        if rpm && self.requests == 0 {
            return Err(RateLimitKind::Requests);
        }
        if tpm && self.tokens < tokens {
            self.wanted_tokens = self.wanted_tokens.max(tokens);
            return Err(RateLimitKind::Tokens);
        }
        if rpm {
            self.requests -= 1;
        }
        if tpm {
            self.tokens -= tokens;
        }
        Ok(())
    }

    /// Counts a call admitted without a lease, for the next report.
    pub(crate) fn owe(&mut self, tokens: u64) {
        self.unreported_requests += 1;
        self.unreported_tokens += tokens;
    }

    /// Takes back a call admitted without a lease and not reported yet: it is no longer owed.
    pub(crate) fn unowe(&mut self, tokens: u64) {
        self.unreported_requests = self.unreported_requests.saturating_sub(1);
        self.unreported_tokens = self.unreported_tokens.saturating_sub(tokens);
    }

    /// Gives a cancelled call's units back to the lease (a request unit when `rpm` is set, its tokens when
    /// `tpm` is), each up to a full lease.
    pub(crate) fn give_back(&mut self, request_size: Option<u64>, token_size: Option<u64>, tokens: u64) {
        if let Some(size) = request_size {
            self.requests = (self.requests + 1).min(size.max(self.requests));
        }
        if let Some(size) = token_size {
            self.tokens = (self.tokens + tokens).min(size.max(self.tokens));
        }
    }

    /// A reservation of `held` tokens settled at `used`: unused units go back to the lease (up to
    /// `cap`), extra use is taken from it or owed.
    pub(crate) fn settle(&mut self, now: Instant, held: u64, used: u64, cap: u64) {
        if used >= held {
            let extra = used - held;
            let taken = if self.live(now) { extra.min(self.tokens) } else { 0 };
            self.tokens -= taken;
            self.unreported_tokens += extra - taken;
        } else if self.live(now) {
            self.tokens = (self.tokens + held - used).min(cap.max(self.tokens));
        } else {
            self.unreported_tokens = self.unreported_tokens.saturating_sub(held - used);
        }
    }

    /// Whether the units held fell to half a lease or below.
    pub(crate) fn low(&self, now: Instant, request_size: Option<u64>, token_size: Option<u64>) -> bool {
        !self.live(now)
            || request_size.is_some_and(|size| self.requests * 2 <= size)
            || token_size.is_some_and(|size| self.tokens * 2 <= size.max(self.wanted_tokens))
    }

    /// What to ask for: a full lease of each dimension that runs low, and what is owed (at most what the
    /// window still counts, `counted`: older use has left the window anyway). The owed use is handed over:
    /// reported once, whatever the answer.
    pub(crate) fn ask(
        &mut self,
        now: Instant,
        request_size: Option<u64>,
        token_size: Option<u64>,
        counted: (u64, u64),
    ) -> LeaseAsk {
        let live = self.live(now);
        let held = |units: u64| if live { units } else { 0 };
        let want = |size: u64, units: u64| if units * 2 <= size { size - units } else { 0 };
        let ask = LeaseAsk {
            requests: request_size.map_or(0, |size| want(size, held(self.requests))),
            tokens: token_size.map_or(0, |size| want(size.max(self.wanted_tokens), held(self.tokens))),
            used_requests: self.unreported_requests.min(counted.0),
            used_tokens: self.unreported_tokens.min(counted.1),
        };
        self.unreported_requests = 0;
        self.unreported_tokens = 0;
        ask
    }

    /// The store answered `ask` with `grant` at `now`: the units are added and the lease lives on.
    pub(crate) fn granted(&mut self, now: Instant, grant: LeaseGrant) {
        if !self.live(now) {
            self.requests = 0;
            self.tokens = 0;
        }
        self.until = Some(now + LEASE_TTL);
        self.requests += grant.requests;
        self.tokens += grant.tokens;
        if self.tokens >= self.wanted_tokens {
            self.wanted_tokens = 0;
        }
        self.requests_left = grant.requests_left.unwrap_or(self.requests_left);
        self.tokens_left = grant.tokens_left.unwrap_or(self.tokens_left);
    }

    /// The store is away: the units are dropped, the window counts on its own.
    pub(crate) fn drop_units(&mut self) {
        self.until = None;
        self.requests = 0;
        self.tokens = 0;
    }

    /// Requests the cluster may still make, as far as this replica knows.
    pub(crate) fn requests_left(&self) -> u64 {
        self.requests + self.requests_left
    }

    /// Tokens the cluster may still use, as far as this replica knows.
    pub(crate) fn tokens_left(&self) -> u64 {
        self.tokens + self.tokens_left
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;
    use crate::rate_window::{RATE_SLOT, RATE_WINDOW};

    fn grant(requests: u64, tokens: u64) -> LeaseGrant {
        LeaseGrant { requests, tokens, requests_left: None, tokens_left: None }
    }

    /// Whether the low-lease signal was given (and takes it).
    fn signalled(board: &LeaseBoard) -> bool {
        board.wanted().now_or_never().is_some()
    }

    #[tokio::test(start_paused = true)]
    async fn a_leased_window_admits_only_its_units_and_signals_when_low() {
        let board = LeaseBoard::new();
        let window = board.window(LimitScope::Target("t".into()), Some(100), None);
        let now = Instant::now();
        let ask = window.lease_ask(now);
        assert_eq!(ask, LeaseAsk { requests: 5, ..LeaseAsk::default() }, "5% of 100 for one replica");
        window.lease_granted(now, grant(5, 0));
        assert!(!signalled(&board));
        window.try_acquire(now, 0).unwrap();
        window.try_acquire(now, 0).unwrap();
        assert!(!signalled(&board), "3 of 5 left: not low yet");
        window.try_acquire(now, 0).unwrap();
        assert!(signalled(&board), "2 of 5 left: low");
        assert_eq!(window.lease_ask(now).requests, 3, "asks to fill the lease up again");
        window.try_acquire(now, 0).unwrap();
        window.try_acquire(now, 0).unwrap();
        let denied = window.try_acquire(now, 0).unwrap_err();
        assert_eq!((denied.kind, denied.retry_after), (RateLimitKind::Requests, Some(REFILL_WAIT)));
        assert!(signalled(&board));
        assert_eq!(window.lease_ask(now).requests, 5);
        window.lease_granted(now, grant(5, 0));
        assert!(window.try_acquire(now, 0).is_ok(), "admits again once granted");
        assert_eq!(board.windows().len(), 1);
        drop(window);
        assert!(board.windows().is_empty(), "a dropped window leaves the board");
    }

    #[tokio::test(start_paused = true)]
    async fn an_unrenewed_lease_expires_and_the_window_counts_its_share_and_reports_it() {
        let board = LeaseBoard::new();
        board.set_replicas(4);
        let window = board.window(LimitScope::Client("k".into()), Some(40), None);
        let start = Instant::now();
        let ask = window.lease_ask(start);
        assert_eq!(ask.requests, 1, "5% of 40 is 2, halved by 4 replicas: at least 1");
        window.lease_granted(start, grant(1, 0));
        tokio::time::advance(LEASE_TTL).await;
        let now = Instant::now();
        // No word from the store for LEASE_TTL: the lease is gone, the window admits 40 / 4 on its own.
        for _ in 0..10 {
            window.try_acquire(now, 0).unwrap();
        }
        let denied = window.try_acquire(now, 0).unwrap_err();
        let wait = denied.retry_after.unwrap_or_default();
        assert_eq!(denied.limit, 10);
        assert!(
            (RATE_WINDOW..=RATE_WINDOW + RATE_SLOT).contains(&wait),
            "until the first call leaves the window (60 s after its slot ends): {wait:?}"
        );
        // Back in touch, the calls admitted on its own are reported, then admission is from leases again.
        let ask = window.lease_ask(now);
        assert_eq!((ask.requests, ask.used_requests), (1, 10));
        window.lease_granted(now, grant(1, 0));
        assert_eq!(window.lease_ask(now).used_requests, 0, "reported once");
        assert!(window.try_acquire(now, 0).is_ok());
        board.drop_leases();
        assert_eq!(window.try_acquire(now, 0).unwrap_err().limit, 10, "dropped: back to its share");
    }

    #[tokio::test(start_paused = true)]
    async fn unused_tokens_go_back_to_the_lease_and_a_large_reservation_is_asked_for() {
        let board = LeaseBoard::new();
        let window = board.window(LimitScope::Target("t".into()), None, Some(10_000));
        let now = Instant::now();
        let ask = window.lease_ask(now);
        assert_eq!(ask.tokens, 500);
        window.lease_granted(now, grant(0, 500));
        let (mut reservation, _) = window.try_acquire(now, 400).unwrap();
        window.settle(&mut reservation, 100);
        assert!(window.try_acquire(now, 400).is_ok(), "300 unused came back: 400 held");
        let denied = window.try_acquire(now, 2_000).unwrap_err();
        assert_eq!(denied.kind, RateLimitKind::Tokens);
        assert_eq!(window.lease_ask(now).tokens, 2_000, "the ask covers the refused reservation");
        let (mut reservation, _) = window.try_acquire(now, 0).unwrap();
        window.settle(&mut reservation, 600);
        assert_eq!(window.lease_ask(now).used_tokens, 600, "none held: all its use is owed");
        assert_eq!(window.lease_ask(now).used_tokens, 0, "and handed over once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_call_gives_its_units_back_once_and_never_unreports_reported_use() {
        let board = LeaseBoard::new();
        let window = board.window(LimitScope::Target("t".into()), Some(100), Some(10_000));
        let now = Instant::now();
        window.lease_granted(now, grant(5, 500));
        let (reservation, _) = window.try_acquire(now, 300).unwrap();
        // A reservation is not `Clone`: cancelling it again does not compile.
        window.cancel(reservation);
        let ask = window.lease_ask(now);
        assert_eq!((ask.requests, ask.tokens), (0, 0), "the lease is full again, not fuller");

        // Without a lease: a call owed and not reported yet is no longer owed once cancelled...
        board.drop_leases();
        let (owed, _) = window.try_acquire(now, 10).unwrap();
        window.cancel(owed);
        let ask = window.lease_ask(now);
        assert_eq!((ask.used_requests, ask.used_tokens), (0, 0));
        // ...but one already reported stays counted, and another call's debt is kept.
        let (reported, _) = window.try_acquire(now, 10).unwrap();
        assert_eq!(window.lease_ask(now).used_requests, 1);
        window.try_acquire(now, 20).unwrap();
        window.cancel(reported);
        let ask = window.lease_ask(now);
        assert_eq!((ask.used_requests, ask.used_tokens), (1, 20));
    }
}
