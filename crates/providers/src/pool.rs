//! The idle connections of one transport: HTTP/1.1 request senders kept for the next request, the most
//! recently used first, closed after [`POOL_IDLE`] unused. A transport serves one origin, so there is no key:
//! every idle connection fits every request.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use tokio::time::Instant;

/// The sending half of one upstream connection (its connection task owns the socket).
pub(crate) type Sender = SendRequest<Full<Bytes>>;

/// Idle pooled connections are closed after this long (reqwest's default, kept from when it was the client).
pub(crate) const POOL_IDLE: Duration = Duration::from_secs(90);

/// One origin's idle connections.
#[derive(Default)]
pub(crate) struct Pool {
    idle: Mutex<Idle>,
}

/// What the lock guards.
#[derive(Default)]
struct Idle {
    /// Oldest first: a connection is pushed when it becomes idle, so `since` only grows along the list.
    conns: Vec<IdleConn>,
    /// The reaper task runs (started with the first idle connection, when a runtime is sure to be there).
    reaping: bool,
}

/// A connection waiting for a request.
struct IdleConn {
    sender: Sender,
    since: Instant,
}

impl Pool {
    /// The most recently used idle connection that can take a request now, if any.
    pub(crate) fn checkout(&self) -> Option<Sender> {
        let mut idle = self.lock();
        // Closed ones are dropped on the way. One not ready yet (its last response still being finished, or
        // its connection about to close) stays: it becomes ready or closed soon, and is not worth a wait.
        while let Some(at) = idle.conns.iter().rposition(|c| c.sender.is_ready() || c.sender.is_closed()) {
            let conn = idle.conns.remove(at);
            if !conn.sender.is_closed() {
                return Some(conn.sender);
            }
        }
        None
    }

    /// Keeps `sender`'s connection for a later request, unless it is closed.
    pub(crate) fn put(self: &Arc<Self>, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let since = Instant::now();
        let mut idle = self.lock();
        if !idle.reaping {
            // Without a runtime (a body dropped while the process shuts down) nothing could close it later.
            let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
            runtime.spawn(reap(Arc::downgrade(self)));
            idle.reaping = true;
        }
        idle.conns.push(IdleConn { sender, since });
    }

    /// Drops the connections idle for [`POOL_IDLE`] or closed (dropping the sender ends the connection);
    /// returns when the oldest one left expires.
    fn close_expired(&self, now: Instant) -> Instant {
        let mut idle = self.lock();
        idle.conns.retain(|c| !c.sender.is_closed() && now.saturating_duration_since(c.since) < POOL_IDLE);
        idle.conns.first().map_or(now + POOL_IDLE, |c| c.since + POOL_IDLE)
    }

    /// The idle list; a panic elsewhere while it was held left it consistent (every change is one call).
    fn lock(&self) -> MutexGuard<'_, Idle> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Closes idle connections as they expire, until the pool is gone. It holds no strong reference while it
/// sleeps, so dropping the last transport and body frees the pool (and this task ends at its next wake-up).
async fn reap(pool: Weak<Pool>) {
    let mut next = Instant::now() + POOL_IDLE;
    loop {
        tokio::time::sleep_until(next).await;
        let Some(pool) = pool.upgrade() else { return };
        next = pool.close_expired(Instant::now());
    }
}
