//! What one connection is doing now, shared by its watchdog, its IO, its service and its bodies, and the
//! shutdown stage the server sets on it. All atomics: every field is written from the connection's own task
//! (or, for the stage, once by the server), so there is never a lock on the request path.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::task::AtomicWaker;
use tokio::time::Instant;

use super::limits::ConnectionLimits;

/// Where a connection is between requests; it decides which timeout runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for the next request on a kept-alive connection: `idle_timeout`.
    Idle,
    /// Receiving a request's headers: `header_timeout`.
    Head,
    /// The handler has the request but its body is not in yet: `body_timeout`.
    Body,
    /// Handling the request or sending the answer (streams included): no timeout here.
    Busy,
}

impl Phase {
    fn from_u8(n: u8) -> Phase {
        match n {
            0 => Phase::Idle,
            1 => Phase::Head,
            2 => Phase::Body,
            _ => Phase::Busy,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            Phase::Idle => 0,
            Phase::Head => 1,
            Phase::Body => 2,
            Phase::Busy => 3,
        }
    }
}

/// The server's shutdown stage, as a connection sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stage {
    /// Serving normally.
    Serving,
    /// Shutting down: finish what is in flight, take no new request.
    Draining,
    /// The drain deadline passed: end open streams with an error event.
    Deadline,
}

/// One connection's state.
#[derive(Debug)]
pub(crate) struct Activity {
    phase: AtomicU8,
    /// When the phase began, in milliseconds after `origin`.
    since_ms: AtomicU64,
    origin: Instant,
    stage: AtomicU8,
    /// Whether the request being handled is on the Anthropic endpoint (for the shape of a 408).
    anthropic: AtomicBool,
    /// The connection's task, woken when the stage changes.
    conn_waker: AtomicWaker,
    /// The stream being answered, woken at the drain deadline.
    stream_waker: AtomicWaker,
}

impl Activity {
    /// A new connection: its headers are due within `header_timeout`.
    pub(crate) fn new() -> Activity {
        Activity {
            phase: AtomicU8::new(Phase::Head.as_u8()),
            since_ms: AtomicU64::new(0),
            origin: Instant::now(),
            stage: AtomicU8::new(0),
            anthropic: AtomicBool::new(false),
            conn_waker: AtomicWaker::new(),
            stream_waker: AtomicWaker::new(),
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Relaxed))
    }

    /// Enters `phase` now.
    pub(crate) fn enter(&self, phase: Phase) {
        // Busy has no timeout, so no start to note: two of a request's five phase changes read no clock.
        if phase != Phase::Busy {
            let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.since_ms.store(ms, Relaxed);
        }
        self.phase.store(phase.as_u8(), Relaxed);
    }

    /// Bytes came in: a connection waiting for its next request is now receiving one.
    pub(crate) fn bytes_arrived(&self) {
        if self.phase() == Phase::Idle {
            self.enter(Phase::Head);
        }
    }

    /// A request's headers are in; `body_done` when it has no body (or all of it is in).
    pub(crate) fn request_started(&self, body_done: bool, anthropic: bool) {
        self.anthropic.store(anthropic, Relaxed);
        self.enter(if body_done { Phase::Busy } else { Phase::Body });
    }

    /// The whole request body is in.
    pub(crate) fn body_done(&self) {
        if self.phase() == Phase::Body {
            self.enter(Phase::Busy);
        }
    }

    pub(crate) fn is_anthropic(&self) -> bool {
        self.anthropic.load(Relaxed)
    }

    /// The current phase and when its timeout fires (`None` while busy).
    pub(crate) fn deadline(&self, limits: &ConnectionLimits) -> (Phase, Option<Instant>) {
        let phase = self.phase();
        let timeout = match phase {
            Phase::Idle => limits.idle_timeout,
            Phase::Head => limits.header_timeout,
            Phase::Body => limits.body_timeout,
            Phase::Busy => return (phase, None),
        };
        let since = self.origin + Duration::from_millis(self.since_ms.load(Relaxed));
        (phase, Some(since + timeout))
    }

    pub(crate) fn stage(&self) -> Stage {
        match self.stage.load(Relaxed) {
            0 => Stage::Serving,
            1 => Stage::Draining,
            _ => Stage::Deadline,
        }
    }

    /// Moves the connection to `stage` and wakes whoever waits on it.
    pub(crate) fn set_stage(&self, stage: Stage) {
        let n = match stage {
            Stage::Serving => 0,
            Stage::Draining => 1,
            Stage::Deadline => 2,
        };
        self.stage.fetch_max(n, Relaxed);
        self.conn_waker.wake();
        if stage == Stage::Deadline {
            self.stream_waker.wake();
        }
    }

    /// Registers the connection's task for stage changes.
    pub(crate) fn register_conn(&self, cx: &Context<'_>) {
        self.conn_waker.register(cx.waker());
    }
}

/// Resolves when the server's drain deadline has passed: a stream still open then ends with the API's error
/// event. The connection layer puts one in every request's extensions.
#[derive(Debug, Clone)]
pub struct DrainDeadline(pub(crate) Arc<Activity>);

impl DrainDeadline {
    /// Waits for the drain deadline.
    pub fn reached(&self) -> impl Future<Output = ()> + Send + '_ {
        std::future::poll_fn(|cx| self.poll_reached(cx))
    }

    /// Ready once the drain deadline is reached; until then `cx` is woken when it is.
    pub fn poll_reached(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.stream_waker.register(cx.waker());
        if self.0.stage() == Stage::Deadline { Poll::Ready(()) } else { Poll::Pending }
    }

    /// Waits for the drain deadline of `deadline`, or forever without one (no connection layer: tests).
    pub async fn of(deadline: Option<&DrainDeadline>) {
        match deadline {
            Some(d) => d.reached().await,
            None => std::future::pending().await,
        }
    }
}

/// The error that ends a stream still open at the drain deadline.
pub fn shutting_down() -> switchyard::Error {
    switchyard::Error::Unavailable {
        reason: "the gateway is shutting down and its drain time (server.shutdown_timeout) is over; send the \
                 request again"
            .to_owned(),
        attempts: Vec::new(),
    }
}
