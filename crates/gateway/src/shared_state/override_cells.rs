//! Overrides as Redis stores them: one cell per (route, target, field) with the writer's time, so
//! concurrent writes resolve per field (the newer `at` wins) and a clear is a cell without a value (a
//! replica that missed it cannot bring the old value back). Local changes wait in [`PendingOverrides`]
//! until the background task writes them, so an admin change never waits for Redis and one made while
//! Redis is away is written when it returns.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::breaker_sync::millis;
use crate::overrides::{Change, Override, OverrideSink};

/// The field of an override a cell holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Field {
    /// `enabled`.
    Enabled,
    /// `priority`.
    Priority,
    /// `max_retries`.
    MaxRetries,
}

impl Field {
    /// Every field, in a fixed order.
    pub(crate) const ALL: [Field; 3] = [Field::Enabled, Field::Priority, Field::MaxRetries];
}

/// Where a cell lives: the hash field `["route","target","field"]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct CellKey(pub(crate) String, pub(crate) String, pub(crate) Field);

/// A field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Value {
    /// Enabled or disabled.
    Enabled(bool),
    /// A priority.
    Priority(i32),
    /// A retry count.
    MaxRetries(u32),
}

/// One field of one override as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Cell {
    /// When it was written (ms since the epoch, the writer's clock); the newer write wins.
    pub(crate) at_ms: u64,
    /// The replica that wrote it.
    pub(crate) by: String,
    /// The value; None: cleared.
    pub(crate) value: Option<Value>,
}

/// The cells `change` sets, made by `by` at `at_ms`.
fn cells_of(change: Change, at_ms: u64, by: &str) -> Vec<(Field, Cell)> {
    let values = [
        change.enabled.map(Value::Enabled),
        change.priority.map(Value::Priority),
        change.max_retries.map(Value::MaxRetries),
    ];
    Field::ALL
        .into_iter()
        .zip(values)
        .filter_map(|(field, value)| Some((field, Cell { at_ms, by: by.to_owned(), value: Some(value?) })))
        .collect()
}

/// The cells of an override as this replica holds it (each field at the override's `at`).
pub(crate) fn cells_of_override(value: &Override) -> Vec<(Field, Cell)> {
    let change = Change { enabled: value.enabled, priority: value.priority, max_retries: value.max_retries };
    cells_of(change, at_ms(value), &value.by)
}

fn at_ms(value: &Override) -> u64 {
    humantime::parse_rfc3339(&value.at).map_or_else(|_| millis(SystemTime::now()), millis)
}

/// The override the newest cells of one (route, target) make: None when no cell has a value.
pub(crate) fn view(cells: &[Cell]) -> Option<Override> {
    let newest = cells.iter().filter(|c| c.value.is_some()).max_by_key(|c| c.at_ms)?;
    let mut view = Override {
        enabled: None,
        priority: None,
        max_retries: None,
        by: newest.by.clone(),
        at: humantime::format_rfc3339_millis(super::breaker_sync::time(newest.at_ms)).to_string(),
    };
    for cell in cells {
        match cell.value {
            Some(Value::Enabled(v)) => view.enabled = Some(v),
            Some(Value::Priority(v)) => view.priority = Some(v),
            Some(Value::MaxRetries(v)) => view.max_retries = Some(v),
            None => {}
        }
    }
    Some(view)
}

/// Changes made on this replica that Redis has not stored yet; the sink the overrides tell.
#[derive(Debug)]
pub(crate) struct PendingOverrides {
    me: String,
    cells: Mutex<BTreeMap<CellKey, Cell>>,
    /// Wakes the background task to write them.
    pub(crate) wake: Notify,
}

impl PendingOverrides {
    /// Changes made by replica `me`.
    pub(crate) fn new(me: String) -> Self {
        Self { me, cells: Mutex::new(BTreeMap::new()), wake: Notify::new() }
    }

    /// Adds cells to write (a newer one replaces an older one of the same key).
    pub(crate) fn add(&self, route: &str, target: &str, cells: Vec<(Field, Cell)>) {
        let mut pending = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
        for (field, cell) in cells {
            let key = CellKey(route.to_owned(), target.to_owned(), field);
            if pending.get(&key).is_none_or(|old| old.at_ms <= cell.at_ms) {
                pending.insert(key, cell);
            }
        }
        drop(pending);
        self.wake.notify_one();
    }

    /// What waits to be written now.
    pub(crate) fn snapshot(&self) -> Vec<(CellKey, Cell)> {
        self.cells.lock().unwrap_or_else(PoisonError::into_inner).iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// True while a cell of (route, target) waits to be written.
    pub(crate) fn holds(&self, route: &str, target: &str) -> bool {
        self.cells.lock().unwrap_or_else(PoisonError::into_inner).keys().any(|k| k.0 == route && k.1 == target)
    }

    /// Forgets `written` cells, unless a newer change replaced them meanwhile.
    pub(crate) fn written(&self, written: &[(CellKey, Cell)]) {
        let mut pending = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
        for (key, cell) in written {
            if pending.get(key) == Some(cell) {
                pending.remove(key);
            }
        }
    }
}

impl OverrideSink for PendingOverrides {
    fn changed(&self, route: &str, target: &str, value: Option<&Override>, set: Change) {
        let cells = match value {
            Some(value) => cells_of(set, at_ms(value), &value.by),
            None => {
                let now = millis(SystemTime::now());
                Field::ALL.into_iter().map(|f| (f, Cell { at_ms: now, by: self.me.clone(), value: None })).collect()
            }
        };
        self.add(route, target, cells);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(at_ms: u64, by: &str, value: Option<Value>) -> Cell {
        Cell { at_ms, by: by.to_owned(), value }
    }

    #[test]
    fn the_view_takes_every_valued_cell_and_the_newest_writer() {
        let cells =
            [cell(5, "a", Some(Value::Enabled(false))), cell(9, "b", Some(Value::Priority(3))), cell(12, "c", None)];
        let shown = view(&cells).unwrap_or_else(|| panic!("a view"));
        assert_eq!((shown.enabled, shown.priority, shown.max_retries), (Some(false), Some(3), None));
        assert_eq!(shown.by, "b");
        assert!(view(&[cell(1, "a", None)]).is_none(), "cleared cells make no override");
    }

    #[test]
    fn a_clear_writes_every_field_empty_and_a_change_only_its_fields() {
        let pending = PendingOverrides::new("me".to_owned());
        pending.changed("r", "t", None, Change::default());
        let cleared = pending.snapshot();
        assert_eq!(cleared.len(), 3);
        assert!(cleared.iter().all(|(_, c)| c.value.is_none() && c.by == "me"));
        pending.written(&cleared);
        assert!(pending.snapshot().is_empty());

        let value = Override {
            enabled: Some(false),
            priority: Some(7),
            max_retries: None,
            by: "me".to_owned(),
            at: "2026-01-01T00:00:00.250Z".to_owned(),
        };
        pending.changed("r", "t", Some(&value), Change { priority: Some(7), ..Change::default() });
        let set = pending.snapshot();
        assert_eq!(set.len(), 1, "only the field this change wrote: {set:?}");
        assert_eq!(set[0].0, CellKey("r".to_owned(), "t".to_owned(), Field::Priority));
        assert_eq!(set[0].1.value, Some(Value::Priority(7)));
        assert_eq!(set[0].1.at_ms, 1_767_225_600_250);
    }
}
