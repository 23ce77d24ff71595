//! Runtime overrides shared between replicas. The overrides of [`crate::overrides::Overrides`] stay the
//! one record this replica serves from; this background side writes the changes made here into one Redis
//! hash (a script keeps the newer cell per field), says so on a channel, and on every message and every
//! second makes the record here match Redis: applying what other replicas changed or cleared, and
//! writing back what a Redis that restarted empty lost.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use redis::aio::MultiplexedConnection;

use super::breaker_sync::json;
use super::connection::Lost;
use super::keys::Keys;
use super::override_cells::{Cell, CellKey, PendingOverrides, cells_of_override, view};
use crate::overrides::{self, Change, Override};
use crate::state::AppState;

/// Stores each cell (hash field, time, cell) only where it is newer than the stored one: per field, the
/// newer write wins whichever replica's write arrives last.
const MERGE: &str = r"
for i = 1, #ARGV, 3 do
  local old = redis.call('HGET', KEYS[1], ARGV[i])
  local newer = true
  if old then
    local ok, cell = pcall(cjson.decode, old)
    newer = not ok or type(cell) ~= 'table' or type(cell.at_ms) ~= 'number' or cell.at_ms < tonumber(ARGV[i + 1])
  end
  if newer then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
  end
end
return 0
";

/// The override side of one replica.
#[derive(Debug)]
pub(crate) struct OverrideSync {
    keys: Keys,
    pending: Arc<PendingOverrides>,
    /// Overrides the engine here refused (e.g. enabling a target this replica could not build): said
    /// once, not at every resync.
    refused: Mutex<BTreeSet<(String, String)>>,
}

impl OverrideSync {
    /// Shares the changes waiting in `pending`.
    pub(crate) fn new(keys: Keys, pending: Arc<PendingOverrides>) -> Self {
        Self { keys, pending, refused: Mutex::default() }
    }

    /// Writes the changes made here that Redis has not stored yet, and tells the other replicas.
    pub(crate) async fn flush(&self, conn: &mut MultiplexedConnection) -> Result<(), Lost> {
        let cells = self.pending.snapshot();
        if cells.is_empty() {
            return Ok(());
        }
        let mut merge = redis::cmd("EVAL");
        merge.arg(MERGE).arg(1).arg(self.keys.overrides());
        for (key, cell) in &cells {
            merge.arg(json(key)).arg(cell.at_ms).arg(json(cell));
        }
        redis::pipe()
            .add_command(merge)
            .ignore()
            .cmd("PUBLISH")
            .arg(self.keys.override_channel())
            .arg("changed")
            .ignore()
            .exec_async(conn)
            .await?;
        self.pending.written(&cells);
        tracing::debug!(cells = cells.len(), "shared override changes");
        Ok(())
    }

    /// Makes `state`'s overrides those Redis holds: waiting changes are written first, other replicas'
    /// changes and clears are applied, and overrides Redis does not know at all (it restarted empty) are
    /// written back.
    pub(crate) async fn resync(&self, state: &AppState, conn: &mut MultiplexedConnection) -> Result<(), Lost> {
        self.flush(conn).await?;
        let stored: HashMap<String, String> =
            redis::cmd("HGETALL").arg(self.keys.overrides()).query_async(conn).await?;
        let mut by_target: BTreeMap<(String, String), Vec<Cell>> = BTreeMap::new();
        for (field, value) in stored {
            let (Ok(CellKey(route, target, _)), Ok(cell)) =
                (serde_json::from_str(&field), serde_json::from_str(&value))
            else {
                continue;
            };
            by_target.entry((route, target)).or_default().push(cell);
        }
        let mut lost = false;
        for ((route, target), value) in state.overrides.all() {
            if !by_target.contains_key(&(route.clone(), target.clone())) && !self.pending.holds(&route, &target) {
                self.pending.add(&route, &target, cells_of_override(&value));
                lost = true;
            }
        }
        for ((route, target), cells) in &by_target {
            // A change made here since the flush above: it is written next, then read back.
            if !self.pending.holds(route, target) {
                self.take(state, route, target, view(cells));
            }
        }
        if lost {
            tracing::info!("the shared state had lost overrides made here: writing them again");
            self.flush(conn).await?;
        }
        Ok(())
    }

    /// Makes `target` on `route` carry `wanted` (None: its config values), as Redis holds it. The engine's
    /// values are compared, not only the record: an admin change here racing a remote one is set right at the
    /// next resync.
    fn take(&self, state: &AppState, route_name: &str, target: &str, wanted: Option<Override>) {
        // A route or target this replica's config lacks: nothing here to apply it to.
        let Some(route) = state.resolve(route_name) else { return };
        let Some(configured) = route.configured(target) else { return };
        let Some(serving) = route.manager.list_models().into_iter().find(|t| t.id == target) else { return };
        let serving = Change {
            enabled: Some(serving.enabled),
            priority: Some(serving.priority),
            max_retries: Some(serving.max_retries),
        };
        let o = wanted.as_ref();
        let after = Change {
            enabled: o.and_then(|o| o.enabled).or(configured.enabled),
            priority: o.and_then(|o| o.priority).or(configured.priority),
            max_retries: o.and_then(|o| o.max_retries).or(configured.max_retries),
        };
        if serving != after {
            let key = (route_name.to_owned(), target.to_owned());
            if let Err(e) = overrides::apply(&route, target, after) {
                if self.refused.lock().unwrap_or_else(PoisonError::into_inner).insert(key) {
                    tracing::warn!(route = %route_name, target_id = %target, "the shared override not applied: {e}");
                }
                return;
            }
            self.refused.lock().unwrap_or_else(PoisonError::into_inner).remove(&key);
            if serving.enabled != after.enabled {
                state.target_events.changed(&route, target);
            }
            tracing::info!(route = %route_name, target_id = %target, ?after, "applied the shared override");
        }
        if state.overrides.get(route_name, target) != wanted {
            state.overrides.set_shared(route_name, target, wanted);
        }
    }
}
