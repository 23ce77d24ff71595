//! The replica list: each replica writes a heartbeat every second (with its stats snapshot) that expires
//! after 10 s of silence; `/admin/instances` and `/admin/stats?scope=cluster` read them.

use std::time::{Duration, SystemTime};

use redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::connection::Lost;
use super::keys::Keys;
use super::scan;

/// A replica is gone once its heartbeat is this old.
const SILENCE: Duration = Duration::from_secs(10);

/// Who a replica is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Identity {
    /// A random id, new at every start.
    pub(crate) id: String,
    /// The gateway's version.
    pub(crate) version: String,
    /// Where it listens.
    pub(crate) listen: String,
    /// When it started (RFC 3339).
    pub(crate) started: String,
}

/// One heartbeat as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Heartbeat {
    #[serde(flatten)]
    pub(crate) identity: Identity,
    /// When it was written (RFC 3339).
    pub(crate) last_seen: String,
    /// The replica's `/admin/stats`.
    pub(crate) stats: Value,
}

/// Writes this replica's heartbeat.
pub(crate) async fn beat(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    identity: &Identity,
    stats: Value,
) -> Result<(), Lost> {
    let beat = Heartbeat {
        identity: identity.clone(),
        last_seen: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        stats,
    };
    let text = serde_json::to_string(&beat).unwrap_or_default();
    let ttl = u64::try_from(SILENCE.as_millis()).unwrap_or(u64::MAX);
    redis::cmd("SET").arg(keys.instance(&identity.id)).arg(text).arg("PX").arg(ttl).exec_async(conn).await?;
    Ok(())
}

/// Every live replica's last heartbeat, sorted by id.
pub(crate) async fn live(conn: &mut MultiplexedConnection, keys: &Keys) -> Result<Vec<Heartbeat>, Lost> {
    let mut beats: Vec<Heartbeat> = scan::values(conn, &keys.instances())
        .await?
        .into_iter()
        .filter_map(|(_, value)| serde_json::from_str(&value).ok())
        .collect();
    beats.sort_by(|a, b| a.identity.id.cmp(&b.identity.id));
    Ok(beats)
}
