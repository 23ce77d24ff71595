//! The one thread that writes the database: every 500 ms (every second when idle) it takes the queued rows
//! ([`RowQueue`]) and writes them in transactions of at most 500 rows, each with its per-minute rollup.
//! Overrides, flushes and the close come on a channel and are handled at once.

use std::borrow::Borrow;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::histogram::Histogram;
use super::insert;
use super::queue::RowQueue;
use super::row::{Row, millis};
use super::schema::{self, BATCH_ROWS, SLOTS};
use super::stored;

/// How long rows gather between two takes while requests arrive (inside SPEC-2's 1 s bound). Each transaction
/// has a fixed cost (its rollups' reads and upserts, the commit's WAL frames), so fewer, larger ones cost less
/// per row: at about 400 requests/s, 500 ms instead of 200 ms took the rollups from about 1.1k to 0.6k
/// instructions per row and the transaction as a whole about 1k (bench/instructions, BENCH_PART2=on).
const GATHER: Duration = Duration::from_millis(500);
/// How long the writer sleeps after a take that found nothing.
const IDLE: Duration = Duration::from_secs(1);
/// How often old rows are deleted.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// What the writer is asked to do besides writing rows.
pub(crate) enum Msg {
    /// Store (Some) or clear (None) the override of a route's target, as JSON text.
    Override { route: String, target: String, value: Option<String> },
    /// Answer once every row queued before is written.
    Flush(Sender<()>),
    /// Write what is queued, then stop.
    Close,
}

/// What the writer needs.
pub(crate) struct Writer {
    pub(crate) path: PathBuf,
    pub(crate) retention: Duration,
    pub(crate) queue: Arc<RowQueue>,
    pub(crate) dropped: Arc<AtomicU64>,
    /// Set once the database is open and prepared.
    pub(crate) opened: Arc<std::sync::atomic::AtomicBool>,
}

/// One take: the rows, and the messages that came with them.
#[derive(Default)]
struct Batch {
    #[expect(clippy::vec_box, reason = "a boxed row (328 bytes) moves to the writer uncopied")]
    rows: Vec<Box<Row>>,
    overrides: Vec<(String, String, Option<String>)>,
    flushed: Vec<Sender<()>>,
    close: bool,
}

impl Batch {
    fn take(&mut self, msg: Msg) {
        match msg {
            Msg::Override { route, target, value } => self.overrides.push((route, target, value)),
            Msg::Flush(done) => self.flushed.push(done),
            Msg::Close => self.close = true,
        }
    }
}

impl Writer {
    /// Runs until [`Msg::Close`] or until every sender is gone.
    pub(crate) fn run(self, rx: &Receiver<Msg>) {
        let mut db = match open(&self.path) {
            Ok(conn) => {
                self.opened.store(true, Relaxed);
                Some(conn)
            }
            Err(e) => {
                tracing::warn!(
                    "storage: cannot open {}: {e}; request rows are dropped (counted in switchyard_log_dropped_total); \
                     fix the path or its permissions (storage.path), or set storage.enabled = false",
                    self.path.display()
                );
                None
            }
        };
        let mut warned = db.is_none();
        let mut last_retention: Option<Instant> = None;
        let mut batch = Batch::default();
        let mut wait = IDLE;
        loop {
            match rx.recv_timeout(wait) {
                Ok(msg) => batch.take(msg),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => batch.close = true,
            }
            while let Ok(msg) = rx.try_recv() {
                batch.take(msg);
            }
            if batch.close {
                self.queue.close();
            }
            // After a flush or close message: every row queued before it is in this take.
            self.queue.take(&mut batch.rows);
            wait = if batch.rows.is_empty() { IDLE } else { GATHER };
            let written = match db.as_mut() {
                Some(conn) => write(conn, &batch, &self.dropped).map_err(|e| e.to_string()),
                None => {
                    self.dropped.fetch_add(batch.rows.len() as u64, Relaxed);
                    Err(String::new())
                }
            };
            if let Err(e) = written
                && !warned
                && !batch.rows.is_empty()
            {
                warned = true;
                tracing::warn!(
                    "storage: cannot write to {}: {e}; request rows are dropped (counted in \
                     switchyard_log_dropped_total) until it works again",
                    self.path.display()
                );
            }
            batch.rows.clear();
            batch.overrides.clear();
            for done in batch.flushed.drain(..) {
                let _ = done.send(());
            }
            if batch.close {
                return;
            }
            if last_retention.is_none_or(|at| at.elapsed() >= RETENTION_EVERY) {
                last_retention = Some(Instant::now());
                if let Some(conn) = db.as_mut()
                    && let Err(e) = delete_old(conn, self.retention)
                {
                    tracing::warn!("storage: cannot delete rows older than storage.retention: {e}");
                }
            }
        }
    }
}

/// Opens the database for writing and prepares it.
fn open(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(1))?;
    schema::prepare(&mut conn)?;
    Ok(conn)
}

/// Deletes rows and rollups older than `retention`: whole batches, and the older rows of a batch that straddles
/// the cutoff (it is written again with its newer rows). One transaction.
pub(crate) fn delete_old(conn: &mut Connection, retention: Duration) -> rusqlite::Result<()> {
    let cutoff = millis(SystemTime::now().checked_sub(retention).unwrap_or(SystemTime::UNIX_EPOCH));
    let tx = conn.transaction()?;
    let old: Vec<i64> = tx
        .prepare("SELECT id FROM batches WHERE last_ms < ?1")?
        .query_map([cutoff], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in old {
        delete_batch(&tx, id)?;
    }
    let straddling: Vec<(i64, String)> = tx
        .prepare("SELECT id, rows FROM batches WHERE first_ms < ?1")?
        .query_map([cutoff], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (id, text) in straddling {
        let Ok(rows) = stored::decode(&text) else {
            tracing::warn!("storage: batch {id} of the request log cannot be read; it is deleted with its older rows");
            delete_batch(&tx, id)?;
            continue;
        };
        let mut kept = Vec::with_capacity(rows.len());
        for (i, mut row) in rows.into_iter().enumerate() {
            if millis(row.time) >= cutoff {
                let bodies = tx
                    .prepare_cached("SELECT request, response FROM bodies WHERE slot = ?1")?
                    .query_row([id * SLOTS + i as i64], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                (row.request, row.response) = bodies.unwrap_or_default();
                kept.push(row);
            }
        }
        delete_batch(&tx, id)?;
        insert::batch(&tx, &kept)?;
    }
    tx.execute("DELETE FROM usage_minute WHERE minute < ?1", [cutoff / 60_000])?;
    // An hour row goes once all of its minutes are past the cutoff.
    tx.execute("DELETE FROM usage_hour WHERE minute + 60 <= ?1", [cutoff / 60_000])?;
    tx.commit()
}

/// Deletes batch `id` and its bodies.
fn delete_batch(tx: &Transaction<'_>, id: i64) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM bodies WHERE slot >= ?1 AND slot < ?2", [id * SLOTS, (id + 1) * SLOTS])?;
    tx.execute("DELETE FROM batches WHERE id = ?1", [id])?;
    Ok(())
}

/// The per-minute sums of one (minute, route, target, key).
#[derive(Default)]
struct Sums {
    requests: i64,
    success: i64,
    failed: i64,
    cancelled: i64,
    fallbacks: i64,
    input_tokens: i64,
    output_tokens: i64,
    histogram: Histogram,
}

impl Sums {
    fn add(&mut self, other: &Sums) {
        self.requests += other.requests;
        self.success += other.success;
        self.failed += other.failed;
        self.cancelled += other.cancelled;
        self.fallbacks += other.fallbacks;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.histogram.merge(&other.histogram);
    }
}

/// (minute, route, serving target or "", key name or ""), borrowed from the batch's rows.
type Group<'a> = (i64, &'a str, &'a str, &'a str);

/// A batch's sums by group. A batch has a handful of groups, so a list searched in order is cheaper than
/// hashing three strings per row.
#[derive(Default)]
struct Rollup<'a>(Vec<(Group<'a>, Sums)>);

impl<'a> Rollup<'a> {
    fn entry(&mut self, group: Group<'a>) -> &mut Sums {
        let at = match self.0.iter().position(|(g, _)| *g == group) {
            Some(at) => at,
            None => {
                self.0.push((group, Sums::default()));
                self.0.len() - 1
            }
        };
        &mut self.0[at].1
    }
}

/// Writes a take's rows in transactions of one batch each (at most [`BATCH_ROWS`] rows) with its rollups,
/// then its overrides in one more. A transaction that fails drops its rows (counted in `dropped`) and the rest
/// are still tried; the first error is returned.
fn write(conn: &mut Connection, batch: &Batch, dropped: &AtomicU64) -> rusqlite::Result<()> {
    let mut first_error = None;
    for rows in batch.rows.chunks(BATCH_ROWS) {
        if let Err(e) = transaction(conn, rows) {
            dropped.fetch_add(rows.len() as u64, Relaxed);
            first_error.get_or_insert(e);
        }
    }
    if !batch.overrides.is_empty()
        && let Err(e) = save_overrides(conn, &batch.overrides)
    {
        first_error.get_or_insert(e);
    }
    first_error.map_or(Ok(()), Err)
}

/// Writes `rows` in batches and their rollups, in one transaction.
fn transaction<R: Borrow<Row>>(conn: &mut Connection, rows: &[R]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    let mut sums = Rollup::default();
    for batch in rows.chunks(BATCH_ROWS) {
        insert::batch(&tx, batch)?;
    }
    for row in rows.iter().map(Borrow::borrow) {
        add(&mut sums, row, millis(row.time));
    }
    let mut hours = Rollup::default();
    for ((minute, route, target, key), s) in sums.0 {
        hours.entry((minute - minute.rem_euclid(60), route, target, key)).add(&s);
        merge_rollup(&tx, "usage_minute", &(minute, route, target, key), s)?;
    }
    for (group, s) in hours.0 {
        merge_rollup(&tx, "usage_hour", &group, s)?;
    }
    tx.commit()
}

/// Stores (Some) or clears (None) each route target's override, in one transaction.
fn save_overrides(conn: &mut Connection, overrides: &[(String, String, Option<String>)]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for (route, target, value) in overrides {
        match value {
            Some(v) => tx.execute(
                "INSERT OR REPLACE INTO overrides (route, target, value) VALUES (?1, ?2, ?3)",
                params![route, target, v],
            )?,
            None => tx.execute("DELETE FROM overrides WHERE route = ?1 AND target = ?2", params![route, target])?,
        };
    }
    tx.commit()
}

fn add<'a>(sums: &mut Rollup<'a>, row: &'a Row, time: i64) {
    let group = (
        time.div_euclid(60_000),
        &*row.route,
        row.served_by.as_deref().unwrap_or_default(),
        row.key.as_deref().unwrap_or_default(),
    );
    let s = sums.entry(group);
    s.requests += 1;
    match row.outcome {
        super::Outcome::Success => s.success += 1,
        super::Outcome::Failed => s.failed += 1,
        super::Outcome::Cancelled => s.cancelled += 1,
    }
    s.fallbacks += i64::from(row.fallback);
    s.input_tokens += clamp(row.input_tokens);
    s.output_tokens += clamp(row.output_tokens);
    s.histogram.add(row.latency_ms);
}

/// Adds `s` to the stored rollup row of `group`.
fn merge_rollup(tx: &Transaction<'_>, table: &str, group: &Group<'_>, mut s: Sums) -> rusqlite::Result<()> {
    let (minute, route, target, key) = group;
    let old: Option<Vec<u8>> = tx
        .prepare_cached(&format!(
            "SELECT histogram FROM {table} WHERE minute = ?1 AND route = ?2 AND target = ?3 AND key = ?4"
        ))?
        .query_row(params![minute, route, target, key], |r| r.get(0))
        .optional()?;
    if let Some(bytes) = old {
        s.histogram.merge(&Histogram::from_bytes(&bytes));
    }
    tx.prepare_cached(&format!(
        "INSERT INTO {table} (minute, route, target, key, requests, success, failed, cancelled, fallbacks, \
         input_tokens, output_tokens, histogram) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
         ON CONFLICT (minute, route, target, key) DO UPDATE SET requests = requests + ?5, \
         success = success + ?6, failed = failed + ?7, cancelled = cancelled + ?8, fallbacks = fallbacks + ?9, \
         input_tokens = input_tokens + ?10, output_tokens = output_tokens + ?11, histogram = ?12"
    ))?
    .execute(params![
        minute,
        route,
        target,
        key,
        s.requests,
        s.success,
        s.failed,
        s.cancelled,
        s.fallbacks,
        s.input_tokens,
        s.output_tokens,
        s.histogram.to_bytes()
    ])?;
    Ok(())
}

/// A count as SQLite's integer.
fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Writes rows straight away on this thread (the 5M-row generator and tests that need a big database fast).
pub fn write_rows(path: &std::path::Path, rows: &[Row]) -> Result<(), String> {
    let mut conn = open(path).map_err(|e| e.to_string())?;
    for chunk in rows.chunks(BATCH_ROWS * 20) {
        transaction(&mut conn, chunk).map_err(|e| e.to_string())?;
    }
    Ok(())
}
