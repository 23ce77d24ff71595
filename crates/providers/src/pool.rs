//! The idle connections of one transport: HTTP/1.1 connections kept for the next request, the most recently
//! used first, closed after [`POOL_IDLE`] unused. A transport serves one origin, so there is no key: every
//! idle connection fits every request.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use tokio::time::Instant;

use crate::h1_conn::Conn;

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
    conn: Conn,
    since: Instant,
}

impl Pool {
    /// The most recently used idle connection that can take a request now, if any.
    pub(crate) fn checkout(&self) -> Option<Conn> {
        let mut idle = self.lock();
        // Closed ones are dropped on the way.
        while let Some(mut kept) = idle.conns.pop() {
            if kept.conn.is_idle_and_open() {
                return Some(kept.conn);
            }
        }
        None
    }

    /// Keeps `conn` for a later request.
    pub(crate) fn put(self: &Arc<Self>, conn: Conn) {
        let since = Instant::now();
        let mut idle = self.lock();
        if !idle.reaping {
            // Without a runtime (a body dropped while the process shuts down) nothing could close it later.
            let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
            runtime.spawn(reap(Arc::downgrade(self)));
            idle.reaping = true;
        }
        idle.conns.push(IdleConn { conn, since });
    }

    /// Closes the connections idle for [`POOL_IDLE`] or closed by the server; returns when the oldest one
    /// left expires.
    fn close_expired(&self, now: Instant) -> Instant {
        let mut idle = self.lock();
        idle.conns.retain_mut(|c| now.saturating_duration_since(c.since) < POOL_IDLE && c.conn.is_idle_and_open());
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
