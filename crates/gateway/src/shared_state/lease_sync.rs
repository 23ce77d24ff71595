//! Cluster-wide `rpm`/`tpm` (SPEC-2 section 9): the background side of the leased windows of the core's
//! [`LeaseBoard`]. Each limit counts per second in Redis (`{prefix}:limit:{target|key}:{id}:{rpm|tpm}:{second}`,
//! kept 62 s); a script sums the last 61 seconds and grants a window `min(asked, limit - used)` by adding
//! it to the current second. A round asks for every window that runs low, reports what windows admitted
//! without a lease, and renews every lease; rounds run on each tick and whenever a window signals.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use switchyard::limits::{LeaseAsk, LeaseBoard, LeaseGrant, RateLimitKind, RateWindow};
use tokio::time::Instant;

use super::connection::Lost;
use super::keys::Keys;
use super::scan;

/// Per limit (KEYS[1] `rpm`, KEYS[2] `tpm`; ARGV per limit: limit or -1 when unset, units asked, units
/// used without a lease): counts the used units, grants what fits in the last 61 s by Redis' clock (one
/// second more than the window: never less strict), and returns (granted, left) per limit.
const GRANT: &str = r"
local now = tonumber(redis.call('TIME')[1])
local out = {}
for d = 1, 2 do
  local limit = tonumber(ARGV[d * 3 - 2])
  local want = tonumber(ARGV[d * 3 - 1])
  local used = tonumber(ARGV[d * 3])
  local granted, left = 0, -1
  if limit >= 0 then
    local names = {}
    for s = now - 60, now do names[#names + 1] = KEYS[d] .. ':' .. s end
    local total = used
    for _, v in ipairs(redis.call('MGET', unpack(names))) do total = total + (tonumber(v) or 0) end
    granted = math.max(0, math.min(want, limit - total))
    if used + granted > 0 then
      local current = KEYS[d] .. ':' .. now
      redis.call('INCRBY', current, used + granted)
      redis.call('EXPIRE', current, 62)
    end
    left = math.max(0, limit - total - granted)
  end
  out[d * 2 - 1] = granted
  out[d * 2] = left
end
return out
";

/// How long wake-ups are ignored after a round that granted nothing (the cluster's budget is spent):
/// refused requests keep signalling, and Redis need not answer each of them.
const SPENT_PAUSE: Duration = Duration::from_millis(50);

/// The lease side of one replica.
#[derive(Debug)]
pub(crate) struct LeaseSync {
    keys: Keys,
    board: Arc<LeaseBoard>,
}

impl LeaseSync {
    /// Fills the windows of `board`.
    pub(crate) fn new(keys: Keys, board: Arc<LeaseBoard>) -> Self {
        Self { keys, board }
    }

    /// Waits for a window's signal that it runs low.
    pub(crate) async fn wanted(&self) {
        self.board.wanted().await;
    }

    /// Asks for what every window wants, reports what they owe, and renews every lease. A round after a
    /// signal that granted nothing pauses a little before the next.
    pub(crate) async fn round(&self, conn: &mut MultiplexedConnection, signalled: bool) -> Result<(), Lost> {
        let now = Instant::now();
        let windows = self.board.windows();
        if windows.is_empty() {
            return Ok(());
        }
        let asks: Vec<(Arc<RateWindow>, LeaseAsk)> = windows
            .into_iter()
            .map(|window| {
                let ask = window.lease_ask(now);
                (window, ask)
            })
            .collect();
        let mut pipe = redis::pipe();
        let mut asking = 0;
        for (window, ask) in asks.iter().filter(|(_, ask)| !ask.is_empty()) {
            let Some(scope) = window.scope() else { continue };
            let limit = |l: Option<u64>| l.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
            pipe.cmd("EVAL")
                .arg(GRANT)
                .arg(2)
                .arg(self.keys.limit(scope, RateLimitKind::Requests))
                .arg(self.keys.limit(scope, RateLimitKind::Tokens))
                .arg(limit(window.rpm()))
                .arg(ask.requests)
                .arg(ask.used_requests)
                .arg(limit(window.tpm()))
                .arg(ask.tokens)
                .arg(ask.used_tokens);
            asking += 1;
        }
        let replies: Vec<Vec<i64>> = if asking == 0 {
            // Nothing to ask: a round trip still says Redis is there, which renews the leases.
            redis::cmd("PING").exec_async(conn).await?;
            Vec::new()
        } else {
            pipe.query_async(conn).await?
        };
        let mut replies = replies.into_iter();
        let mut granted_any = false;
        for (window, ask) in &asks {
            let grant = if ask.is_empty() || window.scope().is_none() {
                LeaseGrant::default()
            } else {
                grant_of(&replies.next().unwrap_or_default())
            };
            granted_any |= grant.requests > 0 || grant.tokens > 0;
            window.lease_granted(now, grant);
        }
        if signalled && asking > 0 && !granted_any {
            tokio::time::sleep(SPENT_PAUSE).await;
        }
        Ok(())
    }

    /// Counts the live replicas (their heartbeats) for the lease size and the fallback share.
    pub(crate) async fn count_replicas(&self, conn: &mut MultiplexedConnection) -> Result<(), Lost> {
        let live = scan::keys(conn, &self.keys.instances()).await?.len();
        self.board.set_replicas(u64::try_from(live).unwrap_or(1));
        Ok(())
    }
}

/// The grant of one script reply: (granted, left) for `rpm`, then for `tpm`; `left` is -1 when unset.
fn grant_of(reply: &[i64]) -> LeaseGrant {
    let at = |i: usize| reply.get(i).copied().unwrap_or(0);
    let units = |v: i64| u64::try_from(v).unwrap_or(0);
    let left = |v: i64| u64::try_from(v).ok();
    LeaseGrant { requests: units(at(0)), requests_left: left(at(1)), tokens: units(at(2)), tokens_left: left(at(3)) }
}
