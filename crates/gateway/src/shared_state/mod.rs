//! State shared between replicas through Redis (`[state] backend = "redis"`): breakers, runtime
//! overrides, cluster-wide `rpm`/`tpm` (leases), the replica list and cluster stats.
//!
//! Requests never wait for Redis: breakers and overrides live in memory and a background task keeps them
//! in step with the other replicas (pub/sub for speed, a resync every second for missed messages). When Redis is away
//! the replica serves on its own state, says `degraded` in `/health`, and reconnects forever.

mod breaker_sync;
mod cluster_stats;
mod connection;
mod instances;
mod keys;
mod lease_sync;
mod override_cells;
mod override_sync;
mod scan;
mod session;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use redis::aio::MultiplexedConnection;
use serde_json::{Value, json};

use crate::config::RedisConfig;
use crate::overrides::OverrideSink;
use crate::state::AppState;
use connection::Backoff;
use instances::Identity;
use keys::Keys;
use override_cells::PendingOverrides;

/// How long start-up waits for Redis (and the current open breakers) before serving anyway.
const START_WAIT: Duration = Duration::from_secs(2);

/// One replica's link to the shared state.
#[derive(Debug)]
pub struct SharedState {
    client: redis::Client,
    keys: Keys,
    id: String,
    started: SystemTime,
    up: AtomicBool,
    /// The live command connection, for the admin endpoints (never the request path).
    conn: Mutex<Option<MultiplexedConnection>>,
    /// Override changes made here that Redis has not stored yet.
    pending_overrides: Arc<PendingOverrides>,
    /// True once the replica has left: held while a heartbeat is written, so none lands after the
    /// goodbye deleted it.
    left: tokio::sync::Mutex<bool>,
}

/// Why an admin read of the shared state failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// No connection to Redis now.
    #[error("the shared state (Redis) is unreachable; this replica serves on its own state meanwhile")]
    Down,
    /// Redis failed to answer.
    #[error("reading the shared state (Redis) failed; try again")]
    Failed,
}

impl SharedState {
    /// The link for `config`; nothing connects until [`start`].
    pub fn new(config: &RedisConfig) -> Result<Self, redis::RedisError> {
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        Ok(Self {
            client: redis::Client::open(config.url.expose())?,
            keys: Keys::new(&config.prefix),
            pending_overrides: Arc::new(PendingOverrides::new(id.clone())),
            id,
            started: SystemTime::now(),
            up: AtomicBool::new(false),
            conn: Mutex::new(None),
            left: tokio::sync::Mutex::new(false),
        })
    }

    /// Where the overrides tell their changes, to share them with the other replicas.
    pub fn override_sink(&self) -> Arc<dyn OverrideSink> {
        self.pending_overrides.clone()
    }

    /// True while Redis is reachable.
    pub fn up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// This replica's id.
    pub fn instance_id(&self) -> &str {
        &self.id
    }

    fn set_connection(&self, conn: Option<MultiplexedConnection>) {
        self.up.store(conn.is_some(), Ordering::Relaxed);
        *self.conn.lock().unwrap_or_else(PoisonError::into_inner) = conn;
    }

    fn connection(&self) -> Result<MultiplexedConnection, ReadError> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner).clone().ok_or(ReadError::Down)
    }

    /// `{"instances": [{id, version, listen, started, last_seen}]}` of every live replica.
    pub async fn instances(&self) -> Result<Value, ReadError> {
        let beats = self.live().await?;
        let list: Vec<Value> = beats
            .iter()
            .map(|b| {
                json!({
                    "id": b.identity.id,
                    "version": b.identity.version,
                    "listen": b.identity.listen,
                    "started": b.identity.started,
                    "last_seen": b.last_seen,
                })
            })
            .collect();
        Ok(json!({ "instances": list }))
    }

    /// The sum of every live replica's stats, plus `"instances": n`.
    pub async fn cluster_stats(&self) -> Result<Value, ReadError> {
        let beats = self.live().await?;
        let snapshots: Vec<Value> = beats.into_iter().map(|b| b.stats).collect();
        let mut total = cluster_stats::sum(&snapshots);
        if let Value::Object(map) = &mut total {
            map.insert("instances".to_owned(), json!(snapshots.len()));
        } else {
            total = json!({ "instances": 0 });
        }
        Ok(total)
    }

    /// A clean stop: deletes this replica's heartbeat at once (the others stop listing it now, not after
    /// 10 s of silence), and writes no heartbeat after it. Without Redis, the heartbeat simply expires.
    pub async fn leave(&self) {
        let mut left = self.left.lock().await;
        *left = true;
        let Ok(mut conn) = self.connection() else { return };
        let deleted = redis::cmd("DEL").arg(self.keys.instance(&self.id)).exec_async(&mut conn).await;
        match deleted {
            Ok(()) => tracing::info!(instance = %self.id, "left the replica list"),
            Err(e) => tracing::warn!("could not delete this replica's heartbeat (it expires in 10 s): {e}"),
        }
    }

    async fn live(&self) -> Result<Vec<instances::Heartbeat>, ReadError> {
        let mut conn = self.connection()?;
        instances::live(&mut conn, &self.keys).await.map_err(|e| {
            tracing::warn!("reading the replica list failed: {e}");
            ReadError::Failed
        })
    }
}

/// Starts sharing `state`'s breakers, overrides and heartbeat (nothing with `backend = "memory"`) and
/// waits until the current open breakers and overrides are loaded, at most 2 s: a Redis that is away does not hold start-up back.
/// The background task ends when `state` is dropped.
pub async fn start(state: &Arc<AppState>, listen: SocketAddr) {
    let Some(shared) = state.shared.clone() else { return };
    let identity = Identity {
        id: shared.id.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        listen: listen.to_string(),
        started: humantime::format_rfc3339_millis(shared.started).to_string(),
    };
    let (ready, loaded) = tokio::sync::oneshot::channel();
    tokio::spawn(run(Arc::downgrade(state), shared, identity, ready));
    if tokio::time::timeout(START_WAIT, loaded).await.is_err() {
        tracing::warn!("the shared state (Redis) did not answer within 2 s: serving on local state meanwhile");
    }
}

/// Connects, runs sessions, and reconnects with capped backoff for as long as the gateway lives.
async fn run(
    state: Weak<AppState>,
    shared: Arc<SharedState>,
    identity: Identity,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut backoff = Backoff::default();
    let mut warned = false;
    while let Some(registry) = state.upgrade().map(|s| s.health.clone()) {
        let end = session::run(&state, &shared, &identity, registry.clone(), &mut ready, &mut backoff).await;
        registry.set_probe_claims(false);
        if let Some(board) = registry.leases() {
            board.drop_leases();
        }
        let was_up = shared.up();
        shared.set_connection(None);
        let Err(lost) = end else { return };
        if was_up || !warned {
            tracing::warn!("the shared state (Redis) is unreachable, serving on local state: {lost}");
            warned = true;
        } else {
            tracing::debug!("the shared state (Redis) is still unreachable: {lost}");
        }
        if let Some(ready) = ready.take() {
            let _ = ready.send(());
        }
        tokio::time::sleep(backoff.next()).await;
    }
}
