//! The request log and usage in embedded SQLite (SPEC-2 section 10).
//!
//! The request path only hands an owned [`Row`] to a bounded queue (a full queue drops the row and counts
//! it); one writer thread takes the queued rows and owns the write connection; reads open their own read-only
//! connections (call them from `spawn_blocking`).

mod bloom;
mod histogram;
mod inline;
mod insert;
mod migrate;
mod query;
mod queue;
mod row;
mod schema;
mod stored;
mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub use query::{Bucket, By, Cursor, Filter, Page, ReadError, Usage, UsageQuery};
pub use row::{Api, AttemptResult, AttemptRow, Attempts, Outcome, Row, RowError, RowId};
pub use writer::write_rows;

use queue::RowQueue;
use writer::{Msg, Writer};

/// `[storage]` as validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// The database file.
    pub path: PathBuf,
    /// Rows older than this are deleted.
    pub retention: Duration,
    /// Also keep request and answer bodies.
    pub log_bodies: bool,
    /// Rows the writer's queue holds before dropping.
    pub queue: usize,
}

/// The open request log.
#[derive(Debug)]
pub struct Storage {
    path: PathBuf,
    log_bodies: bool,
    queue: Arc<RowQueue>,
    tx: Sender<Msg>,
    dropped: Arc<AtomicU64>,
    opened: Arc<AtomicBool>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

impl Storage {
    /// Starts the writer thread on `config.path`. Never fails: a database that cannot be opened or written is
    /// logged once and its rows are dropped and counted, so requests are unaffected.
    pub fn open(config: &StorageConfig) -> Storage {
        let (tx, rx) = channel();
        let queue = Arc::new(RowQueue::new(config.queue));
        let dropped = Arc::new(AtomicU64::new(0));
        let opened = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            path: config.path.clone(),
            retention: config.retention,
            queue: queue.clone(),
            dropped: dropped.clone(),
            opened: opened.clone(),
        };
        let handle = std::thread::Builder::new().name("switchyard-storage".to_owned()).spawn(move || writer.run(&rx));
        let writer = match handle {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!("storage: cannot start the writer thread: {e}; request rows are dropped");
                None
            }
        };
        let storage = Storage {
            path: config.path.clone(),
            log_bodies: config.log_bodies,
            queue,
            tx,
            dropped,
            opened,
            writer: Mutex::new(writer),
        };
        // The writer creates the tables before anything reads them.
        storage.flush();
        storage
    }

    /// Whether the writer could open the database (it logged why not).
    pub fn is_open(&self) -> bool {
        self.opened.load(Relaxed)
    }

    /// Whether bodies are kept.
    pub fn log_bodies(&self) -> bool {
        self.log_bodies
    }

    /// Queues a finished request; a full queue drops it (counted).
    pub fn record(&self, row: Box<Row>) {
        if !self.queue.push(row) {
            self.dropped.fetch_add(1, Relaxed);
        }
    }

    /// Rows dropped so far (`switchyard_log_dropped_total`).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// Blocks until every row queued before is written (or dropped).
    pub fn flush(&self) {
        let (done, wait) = std::sync::mpsc::channel();
        if self.tx.send(Msg::Flush(done)).is_ok() {
            let _ = wait.recv();
        }
    }

    /// Writes what is queued and stops the writer (SIGTERM); rows recorded afterwards are dropped.
    pub fn close(&self) {
        let _ = self.tx.send(Msg::Close);
        let handle = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }

    /// Stores (Some, JSON text) or clears (None) the override of `target` on `route`, through the writer.
    pub fn save_override(&self, route: &str, target: &str, value: Option<String>) {
        let msg = Msg::Override { route: route.to_owned(), target: target.to_owned(), value };
        if self.tx.send(msg).is_err() {
            tracing::warn!("storage: the writer is gone; the override of {target} on {route} is not stored");
        }
    }

    /// Every stored override: (route, target, JSON text). Blocking.
    pub fn overrides(&self) -> Result<Vec<(String, String, String)>, ReadError> {
        query::overrides(&self.path)
    }

    /// A page of `/admin/requests`, every request finished before the call included. Blocking.
    pub fn list(&self, filter: &Filter) -> Result<Page, ReadError> {
        self.flush();
        query::list(&self.path, filter)
    }

    /// One row with bodies (a request finished before the call is found). Blocking.
    pub fn get(&self, id: &str) -> Result<Option<Row>, ReadError> {
        self.flush();
        query::get(&self.path, id)
    }

    /// `/admin/usage`, every request finished before the call counted. Blocking.
    pub fn usage(&self, q: &UsageQuery) -> Result<Usage, ReadError> {
        self.flush();
        query::usage(&self.path, q)
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        self.close();
    }
}

impl crate::overrides::OverrideSink for Storage {
    fn changed(
        &self,
        route: &str,
        target: &str,
        value: Option<&crate::overrides::Override>,
        _set: crate::overrides::Change,
    ) {
        self.save_override(route, target, value.and_then(|v| serde_json::to_string(v).ok()));
    }

    /// The stored record is this replica's: a target a reload dropped starts fresh after a restart too.
    fn dropped(&self, route: &str, target: &str) {
        self.save_override(route, target, None);
    }
}

/// Loads the stored overrides into `state` (before it serves); unknown routes or targets are skipped.
pub fn restore_overrides(storage: &Storage, state: &crate::state::AppState) {
    if !storage.is_open() {
        return; // The writer said why, once.
    }
    let stored = match storage.overrides() {
        Ok(stored) => stored,
        Err(e) => {
            tracing::warn!("{e}; admin overrides from earlier runs are not applied");
            return;
        }
    };
    let loaded = stored
        .into_iter()
        .filter_map(|(route, target, json)| {
            let route = state.resolve(&route)?;
            let value = serde_json::from_str(&json).ok()?;
            Some((route, target, value))
        })
        .collect();
    state.overrides.restore(loaded);
}
