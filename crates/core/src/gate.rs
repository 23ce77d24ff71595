//! What a target admits: its own limits (`rpm`, `tpm`, `max_concurrency`; SPEC-2 section 12) and its
//! calls in flight (also read by latency-aware balancing). Each call holds a [`CallPermit`] until it ends
//! (for a stream: until the stream ends or is dropped). Calls in flight are per process; `rpm`/`tpm` are
//! cluster-wide when the registry has a [`LeaseBoard`] (see [`crate::lease`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::Duration;

use tokio::time::Instant;

use crate::health::Health;
use crate::lease::{LeaseBoard, LimitScope};
use crate::rate_window::{RateReservation, RateWindow};
use crate::skip::SkipReason;

/// A target's own limits; `None` leaves one unlimited. Every call counts, retries and hedges included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetLimits {
    /// Calls in any 60 s window (a burst up to `rpm` is allowed).
    pub rpm: Option<u64>,
    /// Tokens in any 60 s window: each call reserves the request's estimate (prompt plus `max_tokens`)
    /// and settles it from the usage reported (a call that fails or is dropped before any usage: at 0).
    pub tpm: Option<u64>,
    /// Calls in flight at once.
    pub max_concurrency: Option<u32>,
}

/// A target's admission state, in its shared health entry.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    in_flight: AtomicU32,
    max_concurrency: Option<u32>,
    /// `rpm` and `tpm`, when either is set.
    window: Option<Arc<RateWindow>>,
}

impl Gate {
    /// A gate enforcing `limits` for target `id`, with `rpm`/`tpm` leased from `board` when there is one.
    pub(crate) fn new(id: &str, limits: &TargetLimits, board: Option<&Arc<LeaseBoard>>) -> Self {
        let window = (limits.rpm.is_some() || limits.tpm.is_some()).then(|| match board {
            Some(board) => board.window(LimitScope::Target(id.to_owned()), limits.rpm, limits.tpm),
            None => Arc::new(RateWindow::new(limits.rpm, limits.tpm)),
        });
        Self { in_flight: AtomicU32::new(0), max_concurrency: limits.max_concurrency, window }
    }

    /// Calls under way now.
    pub(crate) fn in_flight(&self) -> u32 {
        self.in_flight.load(Relaxed)
    }

    /// Whether calls reserve tokens (a `tpm` is set), so the request's estimate is needed.
    pub(crate) fn counts_tokens(&self) -> bool {
        self.window.as_ref().is_some_and(|w| w.tpm().is_some())
    }

    /// Takes one place in flight, unless `max_concurrency` are taken.
    fn take_place(&self) -> Result<(), SkipReason> {
        let Some(max) = self.max_concurrency else {
            self.in_flight.fetch_add(1, Relaxed);
            return Ok(());
        };
        self.in_flight
            .fetch_update(Relaxed, Relaxed, |now| (now < max).then_some(now + 1))
            .map(|_| ())
            .map_err(|_| SkipReason::ConcurrencyLimited { limit: max })
    }
}

/// One call's place at a target; dropping it ends the call's count. Its token reservation holds the
/// request's estimate until usage replaces it. A call that answered without usage keeps the estimate (it
/// used tokens, how many is unknown); one that failed or was dropped before it answered (cancelled, a lost
/// hedge, a client gone) keeps only the usage reported so far, 0 if none: the upstream served no tokens we
/// know of, and holding the estimate for the rest of the window would refuse calls the target could take.
#[derive(Debug)]
pub(crate) struct CallPermit {
    health: Arc<Health>,
    reservation: Option<RateReservation>,
    /// Whether usage was reported (the reservation no longer holds the estimate).
    settled: bool,
    /// The call answered: its estimate stays counted if no usage replaces it.
    answered: bool,
}

impl CallPermit {
    /// Admits one call reserving `tokens` to the target of `health` at `now`, or says which limit refuses it.
    pub(crate) fn enter(health: &Arc<Health>, tokens: u64, now: Instant) -> Result<Self, SkipReason> {
        let gate = &health.gate;
        gate.take_place()?;
        let mut permit = Self { health: health.clone(), reservation: None, settled: false, answered: false };
        if let Some(window) = &gate.window {
            // Dropping the permit on refusal gives the place in flight back.
            let (reservation, _) = window.try_acquire(now, tokens).map_err(SkipReason::RateLimited)?;
            permit.reservation = Some(reservation);
        }
        Ok(permit)
    }

    /// Replaces the token reservation with the tokens the call used so far (a stream's later usage
    /// replaces an earlier one).
    pub(crate) fn settle(&mut self, used: u64) {
        self.settle_with(used, Instant::now);
    }

    /// [`Self::settle`] with the caller's clock reading `now`.
    pub(crate) fn settle_at(&mut self, used: u64, now: Instant) {
        self.settle_with(used, || now);
    }

    fn settle_with(&mut self, used: u64, now: impl FnOnce() -> Instant) {
        self.settled = true;
        if let (Some(reservation), Some(window)) = (self.reservation.as_mut(), &self.health.gate.window) {
            window.settle_with(reservation, used, now);
        }
    }

    /// The call answered (a whole answer, or a stream that ended well): without usage, its estimate stays
    /// counted, as the tokens it used are unknown.
    pub(crate) fn answered(&mut self) {
        self.answered = true;
    }

    /// The call is not made after all: its place, request and tokens are given back as if never taken.
    pub(crate) fn cancel(mut self) {
        if let (Some(reservation), Some(window)) = (self.reservation.take(), &self.health.gate.window) {
            window.cancel(reservation);
        }
    }
}

impl Drop for CallPermit {
    fn drop(&mut self) {
        // Failed or dropped before it answered, with no usage: it holds nothing (see the type's doc).
        if !self.settled
            && !self.answered
            && let (Some(reservation), Some(window)) = (self.reservation.as_mut(), &self.health.gate.window)
        {
            window.settle(reservation, 0);
        }
        self.health.gate.in_flight.fetch_sub(1, Relaxed);
    }
}

/// When a limit skip frees: the window's wait, or a second for a place in flight (calls end at any time).
pub(crate) fn frees_in(reason: &SkipReason) -> Option<Duration> {
    match reason {
        SkipReason::RateLimited(denied) => denied.retry_after,
        SkipReason::ConcurrencyLimited { .. } => Some(Duration::from_secs(1)),
        SkipReason::UpstreamExhausted { remaining } => Some(*remaining),
        _ => None,
    }
}
