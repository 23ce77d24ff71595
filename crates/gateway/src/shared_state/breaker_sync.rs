//! Breakers shared between replicas. Requests only read memory: this background side publishes local
//! opens (with their end time) and closes, applies other replicas' changes from pub/sub, resyncs every
//! second (missed messages, a Redis that came back), and claims the one half-open probe among replicas.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};
use switchyard::{
    breaker::{BreakerChange, BreakerState},
    health::HealthRegistry,
};
use tokio::time::Instant;

use super::connection::Lost;
use super::keys::Keys;
use super::scan;

/// How long a probe claim lives unless renewed; the holder renews it while its probe runs.
const CLAIM_TTL: Duration = Duration::from_secs(5);

/// A claim holder that saw no request to probe with for this long gives the claim back.
const CLAIM_UNUSED: Duration = Duration::from_secs(3);

/// How often a replica that lost the claim tries again (the holder may give it back).
const CLAIM_RETRY: Duration = Duration::from_secs(1);

/// An open breaker's key outlives its end by this much, in case no replica ever probes.
const KEY_SLACK: Duration = Duration::from_secs(600);

/// An open breaker as stored under its key.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct StoredOpen {
    /// When it ends (ms since the epoch).
    until_ms: u64,
    /// When it opened (ms since the epoch).
    at_ms: u64,
}

/// What a replica announces on the channel.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Message {
    /// A breaker opened until `until_ms`.
    Open { target: String, until_ms: u64, at_ms: u64, by: String },
    /// A probe succeeded: the breaker is closed.
    Close { target: String, by: String },
}

/// This replica's claim on one open period's probe.
#[derive(Debug, Clone, Copy)]
struct Claim {
    until_ms: u64,
    won: Option<Instant>,
    tried: Instant,
}

/// The breaker side of one replica.
#[derive(Debug)]
pub(crate) struct BreakerSync {
    registry: HealthRegistry,
    keys: Keys,
    me: String,
    /// Opens applied from another replica, by target, with their end: a key gone for one of them means a
    /// close this replica missed.
    remote_held: HashMap<String, u64>,
    claims: HashMap<String, Claim>,
}

/// Milliseconds since the epoch.
pub(crate) fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The time `ms` milliseconds after the epoch.
pub(crate) fn time(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

impl BreakerSync {
    /// Shares `registry`'s breakers as replica `me`.
    pub(crate) fn new(registry: HealthRegistry, keys: Keys, me: String) -> Self {
        Self { registry, keys, me, remote_held: HashMap::new(), claims: HashMap::new() }
    }

    /// A change seen by a request here: publish opens and closes. Changes applied from another replica are
    /// not published again (no echo).
    pub(crate) async fn local(&mut self, conn: &mut MultiplexedConnection, change: BreakerChange) -> Result<(), Lost> {
        if change.remote {
            return Ok(());
        }
        self.remote_held.remove(&change.target);
        match (change.state, change.until) {
            (BreakerState::Open, Some(until)) => self.publish_open(conn, &change.target, until, change.at).await,
            (BreakerState::Closed, _) => self.publish_close(conn, &change.target).await,
            _ => Ok(()),
        }
    }

    async fn publish_open(
        &self,
        conn: &mut MultiplexedConnection,
        target: &str,
        until: SystemTime,
        at: SystemTime,
    ) -> Result<(), Lost> {
        let stored = StoredOpen { until_ms: millis(until), at_ms: millis(at) };
        let message = Message::Open {
            target: target.to_owned(),
            until_ms: stored.until_ms,
            at_ms: stored.at_ms,
            by: self.me.clone(),
        };
        redis::pipe()
            .cmd("SET")
            .arg(self.keys.breaker(target))
            .arg(json(&stored))
            .arg("PXAT")
            .arg(stored.until_ms + ms(KEY_SLACK))
            .ignore()
            .cmd("PUBLISH")
            .arg(self.keys.channel())
            .arg(json(&message))
            .ignore()
            .exec_async(conn)
            .await?;
        tracing::debug!(target_id = target, until_ms = stored.until_ms, "shared a breaker open");
        Ok(())
    }

    async fn publish_close(&self, conn: &mut MultiplexedConnection, target: &str) -> Result<(), Lost> {
        let message = Message::Close { target: target.to_owned(), by: self.me.clone() };
        redis::pipe()
            .cmd("DEL")
            .arg(self.keys.breaker(target))
            .ignore()
            .cmd("PUBLISH")
            .arg(self.keys.channel())
            .arg(json(&message))
            .ignore()
            .exec_async(conn)
            .await?;
        tracing::debug!(target_id = target, "shared a breaker close");
        Ok(())
    }

    /// A message from the channel: apply another replica's change.
    pub(crate) fn remote(&mut self, payload: &str) {
        let message: Message = match serde_json::from_str(payload) {
            Ok(message) => message,
            Err(e) => {
                tracing::warn!("ignored a breaker message that is not ours: {e}");
                return;
            }
        };
        match message {
            Message::Open { by, .. } | Message::Close { by, .. } if by == self.me => {}
            Message::Open { target, until_ms, .. } => self.hold(&target, until_ms),
            Message::Close { target, .. } => {
                if let Some(health) = self.registry.get(&target) {
                    health.close();
                }
                self.remote_held.remove(&target);
                self.claims.remove(&target);
            }
        }
    }

    fn hold(&mut self, target: &str, until_ms: u64) {
        let Some(health) = self.registry.get(target) else { return };
        health.hold_open_until(time(until_ms));
        if health.open_until().map(millis) == Some(until_ms) {
            self.remote_held.insert(target.to_owned(), until_ms);
        }
    }

    /// Makes this replica and Redis agree: opens stored there are held here, opens made here while Redis
    /// was away are stored, and a remote open whose key is gone was closed by a message missed here.
    pub(crate) async fn resync(&mut self, conn: &mut MultiplexedConnection) -> Result<(), Lost> {
        let mut stored: HashMap<String, StoredOpen> = HashMap::new();
        for (key, value) in scan::values(conn, &self.keys.breakers()).await? {
            let (Some(target), Ok(open)) = (self.keys.breaker_target(&key), serde_json::from_str(&value)) else {
                continue;
            };
            stored.insert(target.to_owned(), open);
        }
        for id in self.registry.ids() {
            let Some(health) = self.registry.get(&id) else { continue };
            let here = health.open_until().map(millis);
            match (stored.get(&id), here) {
                (Some(open), None) => {
                    let closed_later = health.breaker_since().is_some_and(|since| millis(since) > open.at_ms);
                    if closed_later && !self.remote_held.contains_key(&id) {
                        self.publish_close(conn, &id).await?;
                    } else {
                        self.hold(&id, open.until_ms);
                    }
                }
                (Some(open), Some(until)) if open.until_ms > until => self.hold(&id, open.until_ms),
                (Some(open), Some(until)) if until > open.until_ms => {
                    self.publish_open(conn, &id, time(until), health.breaker_since().unwrap_or(time(until))).await?;
                }
                (None, Some(until)) if self.remote_held.get(&id) == Some(&until) => {
                    tracing::info!(target_id = %id, "another replica closed this breaker (message missed)");
                    health.close();
                    self.remote_held.remove(&id);
                }
                (None, Some(until)) => {
                    self.publish_open(conn, &id, time(until), health.breaker_since().unwrap_or(time(until))).await?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Half-open breakers: claim the one probe of their open period (`SET NX PX`), renew the claim while
    /// the probe runs, give it back when no request came to probe with.
    pub(crate) async fn claims(&mut self, conn: &mut MultiplexedConnection) -> Result<(), Lost> {
        let now = SystemTime::now();
        for id in self.registry.ids() {
            let Some(health) = self.registry.get(&id) else { continue };
            let Some(until) = health.open_until().filter(|until| *until <= now) else {
                self.claims.remove(&id);
                continue;
            };
            let until_ms = millis(until);
            let key = self.keys.probe(&id, until_ms);
            let claim = self.claims.get(&id).copied().filter(|c| c.until_ms == until_ms);
            match claim {
                Some(Claim { won: Some(_), .. }) if health.probing() => {
                    redis::cmd("PEXPIRE").arg(&key).arg(ms(CLAIM_TTL)).exec_async(conn).await?;
                }
                Some(Claim { won: Some(won), .. }) => {
                    if won.elapsed() >= CLAIM_UNUSED && health.withdraw_probe() {
                        tracing::debug!(target_id = %id, "gave the probe claim back: no request came");
                        self.claims.remove(&id);
                    }
                }
                Some(Claim { won: None, tried, .. }) if tried.elapsed() < CLAIM_RETRY => {}
                _ => {
                    let won: Option<String> = redis::cmd("SET")
                        .arg(&key)
                        .arg(&self.me)
                        .arg("NX")
                        .arg("PX")
                        .arg(ms(CLAIM_TTL))
                        .query_async(conn)
                        .await?;
                    let now = Instant::now();
                    let won = won.map(|_| now);
                    if won.is_some() {
                        tracing::info!(target_id = %id, "claimed the half-open probe among replicas");
                        health.allow_probe();
                    }
                    self.claims.insert(id.clone(), Claim { until_ms, won, tried: now });
                }
            }
        }
        Ok(())
    }

    /// The session ended: claims are forgotten (each replica probes for itself until Redis is back).
    pub(crate) fn forget_claims(&mut self) {
        self.claims.clear();
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `value` as JSON text.
pub(crate) fn json(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
