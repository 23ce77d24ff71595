//! A circuit breaker per target: after enough failures the target is skipped without a call until a
//! cooldown ends; then the next real request is the one probe that closes it again or reopens it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::error::{Error, ErrorKind};
use crate::skip::SkipReason;

/// When a target's breaker opens and for how long (SPEC section 6).
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    /// Consecutive failed attempts that open it (default 5; 0 turns this rule off).
    pub failures: u32,
    /// How long it stays open before a probe (default 30 s). Not jittered.
    pub cooldown: Duration,
    /// A failure share over `window` that opens it, once `min_attempts` were made (default 0.5).
    pub failure_rate: f64,
    /// Attempts in `window` before `failure_rate` applies (default 20).
    pub min_attempts: u32,
    /// The span the failure rate looks at (default 60 s).
    pub window: Duration,
    /// How long an authentication failure (401/403) opens it: a bad key does not fix itself (default 10 min).
    pub auth_cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failures: 5,
            cooldown: Duration::from_secs(30),
            failure_rate: 0.5,
            min_attempts: 20,
            window: Duration::from_secs(60),
            auth_cooldown: Duration::from_secs(600),
        }
    }
}

impl BreakerConfig {
    /// Opens after `failures` consecutive failures, for `cooldown`; the other settings keep their defaults.
    pub fn new(failures: u32, cooldown: Duration) -> Self {
        Self { failures, cooldown, ..Self::default() }
    }
}

/// A breaker's state as operators see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Requests call the target.
    Closed,
    /// Requests skip the target until the cooldown ends.
    Open,
    /// The cooldown ended: the next request probes the target (or a probe is running).
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open` or `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// A breaker that changed state: published by a [`HealthRegistry`](crate::health::HealthRegistry) to its
/// subscribers (an event stream, a state shared between replicas).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerChange {
    /// The target id.
    pub target: String,
    /// The state it is in now.
    pub state: BreakerState,
    /// When it changed.
    pub at: SystemTime,
    /// For an open: when it ends (a cooldown, or a later Retry-After); `None` for the other states.
    pub until: Option<SystemTime>,
    /// True when another replica's change was applied here ([`TargetHealth::hold_open_until`],
    /// [`TargetHealth::close`]), not observed here: a sharer must not publish it again.
    ///
    /// [`TargetHealth::hold_open_until`]: crate::health::TargetHealth::hold_open_until
    /// [`TargetHealth::close`]: crate::health::TargetHealth::close
    pub remote: bool,
}

/// Where a breaker announces its changes: its target id and the registry's channel.
#[derive(Debug)]
pub(crate) struct Announcer {
    pub(crate) target: String,
    pub(crate) changes: broadcast::Sender<BreakerChange>,
    /// On: a cooldown's end lets a request probe only once [`Breaker::allow_probe`] was called (replicas
    /// claim the one probe among them). Shared by every breaker of a registry.
    pub(crate) probe_claims: Arc<AtomicBool>,
}

impl Announcer {
    fn announce(&self, change: Change) {
        // No subscriber is not an error: nobody is listening.
        let _ = self.changes.send(BreakerChange {
            target: self.target.clone(),
            state: change.state,
            at: change.at,
            until: change.until,
            remote: change.remote,
        });
    }
}

/// A change of state, before it is announced.
#[derive(Clone, Copy)]
struct Change {
    state: BreakerState,
    at: SystemTime,
    until: Option<SystemTime>,
    remote: bool,
}

/// What the breaker lets one attempt do.
pub(crate) enum Admission<'a> {
    /// Call as usual.
    Call,
    /// Call: this request is the one probe. Dropping the guard unsettled lets the next request probe.
    Probe(ProbeGuard<'a>),
    /// Do not call, for this reason.
    Skip(SkipReason),
}

/// The probe's claim on a half-open breaker.
pub(crate) struct ProbeGuard<'a> {
    breaker: &'a Breaker,
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        // The probe ended without a verdict (cancelled, or a failure that does not count): the next request probes.
        let mut state = self.breaker.lock();
        if state.phase == Phase::Probing {
            state.phase = Phase::Open { until: Instant::now() };
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Closed,
    /// Skipped until `until`; from then on the next request probes.
    Open {
        until: Instant,
    },
    /// One probe is running; other requests skip.
    Probing,
}

const BUCKETS: usize = 12;

/// Attempts and failures over the last `window`, in buckets.
#[derive(Debug)]
struct Window {
    origin: Instant,
    width: Duration,
    /// (bucket number, attempts, failures)
    buckets: [(u64, u32, u32); BUCKETS],
}

impl Window {
    fn new(window: Duration) -> Self {
        let width = (window / BUCKETS as u32).max(Duration::from_millis(1));
        Self { origin: Instant::now(), width, buckets: [(u64::MAX, 0, 0); BUCKETS] }
    }

    fn number(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(since / self.width.as_nanos().max(1)).unwrap_or(u64::MAX - 1)
    }

    fn add(&mut self, now: Instant, failed: bool) {
        let n = self.number(now);
        let slot = &mut self.buckets[(n % BUCKETS as u64) as usize];
        if slot.0 != n {
            *slot = (n, 0, 0);
        }
        slot.1 += 1;
        slot.2 += u32::from(failed);
    }

    /// (attempts, failures) in the buckets still inside the window.
    fn totals(&self, now: Instant) -> (u32, u32) {
        let n = self.number(now);
        self.buckets
            .iter()
            .filter(|(b, _, _)| *b != u64::MAX && n.saturating_sub(*b) < BUCKETS as u64)
            .fold((0, 0), |(a, f), (_, ba, bf)| (a + ba, f + bf))
    }

    fn clear(&mut self) {
        self.buckets = [(u64::MAX, 0, 0); BUCKETS];
    }
}

#[derive(Debug)]
struct State {
    phase: Phase,
    consecutive: u32,
    window: Window,
    /// The latest end of a provider's Retry-After: an opening lasts at least until then.
    quiet_until: Option<Instant>,
    last_failure: Option<SystemTime>,
    last_recovery: Option<SystemTime>,
    /// When the phase last changed, by both clocks (a lazy half-open aside, see [`Breaker::since`]).
    changed: Option<(SystemTime, Instant)>,
    opened: u64,
    /// The wall-clock end of the current or last open period (what replicas share).
    open_until: Option<SystemTime>,
    /// With probe claims on: this open period's probe may be made here.
    probe_allowed: bool,
}

impl State {
    /// Notes that the phase changed now (under the lock, so no reader sees a new phase with an old time).
    fn mark_changed(&mut self) -> SystemTime {
        let at = SystemTime::now();
        self.changed = Some((at, Instant::now()));
        at
    }

    /// Closes the breaker (a probe succeeded, here or on another replica); returns when.
    fn close(&mut self) -> SystemTime {
        self.phase = Phase::Closed;
        self.consecutive = 0;
        self.window.clear();
        self.last_recovery = Some(SystemTime::now());
        self.mark_changed()
    }

    /// Opens the breaker, or moves the end of its open period, to `until` (`wall` by the wall clock);
    /// returns when, if it was not open before.
    fn open(&mut self, until: Instant, wall: SystemTime) -> Option<SystemTime> {
        let newly = !matches!(self.phase, Phase::Open { .. });
        self.phase = Phase::Open { until };
        self.consecutive = 0;
        self.window.clear();
        self.open_until = Some(wall);
        self.probe_allowed = false;
        newly.then(|| {
            self.opened += 1;
            self.mark_changed()
        })
    }
}

/// One target's breaker. A short mutex guards it: it is touched once per attempt, never across an await.
#[derive(Debug)]
pub(crate) struct Breaker {
    config: Option<BreakerConfig>,
    state: Mutex<State>,
    announcer: Option<Announcer>,
}

/// Whether a failure says something about the target's health.
fn counts(kind: ErrorKind) -> bool {
    !matches!(
        kind,
        ErrorKind::InvalidRequest
            | ErrorKind::Cancelled
            | ErrorKind::Deadline
            | ErrorKind::ContextLength
            | ErrorKind::ContentFiltered
            | ErrorKind::Unavailable
    )
}

impl Breaker {
    /// A breaker with these settings; `None` never opens (but still records failures and recoveries).
    /// Changes of state go to `announcer`, when there is one.
    pub(crate) fn new(config: Option<BreakerConfig>, announcer: Option<Announcer>) -> Self {
        let window = Window::new(config.as_ref().map_or(Duration::from_secs(60), |c| c.window));
        let state = State {
            phase: Phase::Closed,
            consecutive: 0,
            window,
            quiet_until: None,
            last_failure: None,
            last_recovery: None,
            changed: None,
            opened: 0,
            open_until: None,
            probe_allowed: false,
        };
        Self { config, state: Mutex::new(state), announcer }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// May an attempt call the target now?
    pub(crate) fn admit(&self) -> Admission<'_> {
        let mut state = self.lock();
        // Closed: nothing to wait for, and no clock to read.
        if let Phase::Closed = state.phase {
            return Admission::Call;
        }
        if let Some(reason) = self.skip_reason(&state, Instant::now()) {
            return Admission::Skip(reason);
        }
        // Open and cooled down: this call is the probe.
        state.phase = Phase::Probing;
        let at = state.mark_changed();
        drop(state);
        self.announce(BreakerState::HalfOpen, at, None, false);
        Admission::Probe(ProbeGuard { breaker: self })
    }

    /// Whether [`admit`](Self::admit) would skip the target now (open, or another call probes it), without
    /// claiming a probe.
    pub(crate) fn skips_now(&self) -> bool {
        self.skip_reason(&self.lock(), Instant::now()).is_some()
    }

    /// Why a call now would be skipped, if it would: open and cooling down, or the probe is another call's.
    fn skip_reason(&self, state: &State, now: Instant) -> Option<SkipReason> {
        match state.phase {
            Phase::Closed => None,
            Phase::Open { until } if now < until => Some(SkipReason::BreakerOpen { remaining: until - now }),
            Phase::Open { .. } if self.claims_on() && !state.probe_allowed => Some(SkipReason::BreakerProbing),
            Phase::Open { .. } => None,
            Phase::Probing => Some(SkipReason::BreakerProbing),
        }
    }

    /// The target answered, at `now`.
    pub(crate) fn succeeded(&self, probe: Option<ProbeGuard<'_>>, now: Instant) {
        let mut state = self.lock();
        let mut closed = None;
        match state.phase {
            Phase::Probing if probe.is_some() => {
                closed = Some(state.close());
                tracing::info!("circuit breaker closed: the probe succeeded");
            }
            Phase::Closed => {
                state.consecutive = 0;
                state.window.add(now, false);
            }
            // A call that started before the breaker opened: the probe decides, not it.
            _ => {}
        }
        drop(state);
        if let Some(probe) = probe {
            std::mem::forget(probe);
        }
        if let Some(at) = closed {
            self.announce(BreakerState::Closed, at, None, false);
        }
    }

    /// The target failed with this error.
    pub(crate) fn failed(&self, error: &Error, probe: Option<ProbeGuard<'_>>) {
        let kind = error.kind();
        if !counts(kind) {
            return; // a probe guard dropped here lets the next request probe
        }
        let now = Instant::now();
        let mut state = self.lock();
        state.last_failure = Some(SystemTime::now());
        if let Some(after) = error.retry_after() {
            let quiet = now + after;
            state.quiet_until = Some(state.quiet_until.map_or(quiet, |q| q.max(quiet)));
        }
        let Some(config) = &self.config else {
            drop(state);
            std::mem::forget(probe);
            return;
        };
        let cooldown = if kind == ErrorKind::Auth { config.auth_cooldown } else { config.cooldown };
        let open = match state.phase {
            Phase::Probing => probe.is_some(),
            Phase::Open { .. } => kind == ErrorKind::Auth || error.retry_after().is_some(),
            Phase::Closed => {
                state.consecutive += 1;
                state.window.add(now, true);
                let (attempts, failures) = state.window.totals(now);
                kind == ErrorKind::Auth
                    || (config.failures > 0 && state.consecutive >= config.failures)
                    || (attempts >= config.min_attempts.max(1)
                        && f64::from(failures) >= config.failure_rate * f64::from(attempts))
            }
        };
        if open {
            let mut until = now + cooldown;
            if let Some(quiet) = state.quiet_until {
                until = until.max(quiet);
            }
            // Cooldowns and Retry-After only ever extend an open period.
            if let Phase::Open { until: current } = state.phase {
                until = until.max(current);
            }
            let wall = SystemTime::now() + until.saturating_duration_since(now);
            let at = state.open(until, wall);
            drop(state);
            if let Some(at) = at {
                tracing::warn!(%kind, cooldown_ms = (until - now).as_millis() as u64, "circuit breaker opened");
                self.announce(BreakerState::Open, at, Some(wall), false);
            }
        } else {
            drop(state);
        }
        if probe.is_some() && open {
            std::mem::forget(probe);
        }
    }

    /// Announces a change of state recorded by [`State::mark_changed`]. Called with the state lock released.
    fn announce(&self, state: BreakerState, at: SystemTime, until: Option<SystemTime>, remote: bool) {
        if let Some(announcer) = &self.announcer {
            announcer.announce(Change { state, at, until, remote });
        }
    }

    fn claims_on(&self) -> bool {
        self.announcer.as_ref().is_some_and(|a| a.probe_claims.load(Ordering::Relaxed))
    }

    /// Another replica opened it until `until` (wall clock): skip the target until then. Only ever
    /// extends an open period; a probe running here keeps running (its verdict decides).
    pub(crate) fn hold_open_until(&self, until: SystemTime) {
        let now = Instant::now();
        let left = until.duration_since(SystemTime::now()).unwrap_or_default();
        let mut state = self.lock();
        match state.phase {
            Phase::Probing => return,
            Phase::Open { until: current } if current >= now + left => return,
            Phase::Open { .. } | Phase::Closed => {}
        }
        let at = state.open(now + left, until);
        drop(state);
        if let Some(at) = at {
            tracing::info!(?until, "circuit breaker held open for another replica");
            self.announce(BreakerState::Open, at, Some(until), true);
        }
    }

    /// Another replica's probe succeeded: close it here too.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        if state.phase == Phase::Closed {
            return;
        }
        let at = state.close();
        drop(state);
        tracing::info!("circuit breaker closed: another replica's probe succeeded");
        self.announce(BreakerState::Closed, at, None, true);
    }

    /// With probe claims on: this replica holds the claim, so the next request after the cooldown probes.
    pub(crate) fn allow_probe(&self) {
        self.lock().probe_allowed = true;
    }

    /// Gives up this replica's claim unless a probe already runs; true when it gave it up.
    pub(crate) fn withdraw_probe(&self) -> bool {
        let mut state = self.lock();
        if state.phase == Phase::Probing {
            return false;
        }
        state.probe_allowed = false;
        true
    }

    /// The end of the open period (wall clock) while it is open or half-open; `None` when closed.
    pub(crate) fn open_until(&self) -> Option<SystemTime> {
        let state = self.lock();
        match state.phase {
            Phase::Closed => None,
            Phase::Open { .. } | Phase::Probing => state.open_until,
        }
    }

    /// True while a probe runs here.
    pub(crate) fn probing(&self) -> bool {
        self.lock().phase == Phase::Probing
    }

    /// The state now.
    pub(crate) fn state(&self) -> BreakerState {
        match self.lock().phase {
            Phase::Closed => BreakerState::Closed,
            Phase::Open { until } if Instant::now() < until => BreakerState::Open,
            Phase::Open { .. } | Phase::Probing => BreakerState::HalfOpen,
        }
    }

    /// When the state last changed; `None` if it never did. A breaker whose cooldown ran out became
    /// half-open at the end of the cooldown, without anything happening then: that end is the answer.
    pub(crate) fn since(&self) -> Option<SystemTime> {
        let state = self.lock();
        let (at, instant) = state.changed?;
        match state.phase {
            Phase::Open { until } if Instant::now() >= until => Some(at + until.saturating_duration_since(instant)),
            _ => Some(at),
        }
    }

    /// When the target last failed (counting failures only) and last recovered (a probe closed the breaker).
    pub(crate) fn history(&self) -> (Option<SystemTime>, Option<SystemTime>) {
        let state = self.lock();
        (state.last_failure, state.last_recovery)
    }

    /// How many times it opened.
    pub(crate) fn opened(&self) -> u64 {
        self.lock().opened
    }
}
