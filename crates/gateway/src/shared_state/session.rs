//! One connected session with Redis: load the shared breakers and overrides and take the first limit
//! leases, then follow local changes, other replicas' messages, windows running low and a ticking resync
//! until the connection fails or the gateway stops.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::StreamExt;
use switchyard::health::HealthRegistry;
use tokio::sync::broadcast::error::RecvError;

use super::SharedState;
use super::breaker_sync::BreakerSync;
use super::connection::{self, Backoff, Lost};
use super::instances::{self, Identity};
use super::lease_sync::LeaseSync;
use super::override_sync::OverrideSync;
use crate::state::AppState;

/// How often half-open breakers are checked for a probe claim.
const TICK: Duration = Duration::from_millis(200);

/// Heartbeat and resync every this many ticks (1 s).
const TICKS_PER_BEAT: u32 = 5;

/// Runs until the connection fails (`Err`) or the gateway is gone (`Ok`).
pub(super) async fn run(
    state: &Weak<AppState>,
    shared: &Arc<SharedState>,
    identity: &Identity,
    registry: HealthRegistry,
    ready: &mut Option<tokio::sync::oneshot::Sender<()>>,
    backoff: &mut Backoff,
) -> Result<(), Lost> {
    let (mut conn, mut pubsub) = connection::connect(&shared.client).await?;
    let override_channel = shared.keys.override_channel();
    pubsub.subscribe(&[shared.keys.channel(), override_channel.clone()]).await?;
    // Subscribed to local changes before the first resync, so none falls between the two.
    let mut changes = registry.subscribe();
    let mut sync = BreakerSync::new(registry.clone(), shared.keys.clone(), identity.id.clone());
    sync.resync(&mut conn).await?;
    let overrides = OverrideSync::new(shared.keys.clone(), shared.pending_overrides.clone());
    resync_overrides(state, &overrides, &mut conn).await?;
    registry.set_probe_claims(true);
    shared.set_connection(Some(conn.clone()));
    backoff.reset();
    beat(state, shared, identity, &mut conn).await?;
    // Leases before serving: from the first request on, limits are cluster-wide.
    let leases = registry.leases().map(|board| LeaseSync::new(shared.keys.clone(), board.clone()));
    if let Some(leases) = &leases {
        leases.count_replicas(&mut conn).await?;
        leases.round(&mut conn, false).await?;
    }
    tracing::info!(instance = %identity.id, "sharing state through Redis");
    if let Some(ready) = ready.take() {
        let _ = ready.send(());
    }
    let mut messages = pubsub.on_message();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u32 = 0;
    loop {
        tokio::select! {
            change = changes.recv() => match change {
                Ok(change) => sync.local(&mut conn, change).await?,
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "fell behind the local breaker changes; resyncing");
                    sync.resync(&mut conn).await?;
                }
                Err(RecvError::Closed) => return Ok(()),
            },
            () = shared.pending_overrides.wake.notified() => overrides.flush(&mut conn).await?,
            () = wanted(leases.as_ref()) => {
                if let Some(leases) = &leases {
                    leases.round(&mut conn, true).await?;
                }
            }
            message = messages.next() => match message {
                Some(message) if message.get_channel_name() == override_channel => {
                    resync_overrides(state, &overrides, &mut conn).await?;
                }
                Some(message) => sync.remote(&String::from_utf8_lossy(message.get_payload_bytes())),
                None => {
                    sync.forget_claims();
                    return Err(Lost::PubSubClosed);
                }
            },
            _ = tick.tick() => {
                if state.strong_count() == 0 {
                    return Ok(());
                }
                sync.claims(&mut conn).await?;
                if let Some(leases) = &leases {
                    leases.round(&mut conn, false).await?;
                }
                ticks = ticks.wrapping_add(1);
                if ticks.is_multiple_of(TICKS_PER_BEAT) {
                    sync.resync(&mut conn).await?;
                    resync_overrides(state, &overrides, &mut conn).await?;
                    beat(state, shared, identity, &mut conn).await?;
                    if let Some(leases) = &leases {
                        leases.count_replicas(&mut conn).await?;
                    }
                }
            }
        }
    }
}

/// Waits for a leased window's signal; forever without cluster-wide limits.
async fn wanted(leases: Option<&LeaseSync>) {
    match leases {
        Some(leases) => leases.wanted().await,
        None => std::future::pending().await,
    }
}

/// Makes the overrides here match Redis (nothing once the gateway is gone).
async fn resync_overrides(
    state: &Weak<AppState>,
    overrides: &OverrideSync,
    conn: &mut redis::aio::MultiplexedConnection,
) -> Result<(), Lost> {
    match state.upgrade() {
        Some(state) => overrides.resync(&state, conn).await,
        None => Ok(()),
    }
}

/// Writes the heartbeat with this replica's stats.
async fn beat(
    state: &Weak<AppState>,
    shared: &SharedState,
    identity: &Identity,
    conn: &mut redis::aio::MultiplexedConnection,
) -> Result<(), Lost> {
    let left = shared.left.lock().await;
    if *left {
        return Ok(());
    }
    let Some(stats) = state.upgrade().map(|s| crate::routes::admin::stats_of(&s)) else { return Ok(()) };
    let stats = serde_json::to_value(stats).unwrap_or_default();
    instances::beat(conn, &shared.keys, identity, stats).await
}
