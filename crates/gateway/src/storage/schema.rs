//! The database layout: compact request rows, and per-minute and per-hour rollups written in the same
//! transaction (`usage_hour.minute` is the hour's first minute), so a week of usage reads a few thousand rows.
//!
//! A request's `seq` (its rowid) is its arrival time in milliseconds times 4096 plus a number that tells apart
//! rows of the same millisecond ([`seq`]): the table is kept in time order by its own key, so time filters,
//! newest-first paging and retention need no index of their own (one index less to update per row was the
//! largest single saving of the writer's cost). Statuses and outcomes are integers; attempts are compact JSON
//! text (one short array per row measured smaller than a child table with its own rowid and index).

use rusqlite::{Connection, OptionalExtension};

/// WAL pages between two checkpoints.
const WAL_PAGES: i64 = 4000;

/// The layout this build writes, in `PRAGMA user_version`. 0: the first layout (a `time` column and index).
const LAYOUT: i64 = 2;

/// Rows of one millisecond that `seq` tells apart.
pub(crate) const PER_MILLI: i64 = 4096;

/// The `seq` of the `n`th row arriving at `millis` (n wraps at [`PER_MILLI`]).
pub(crate) fn seq(millis: i64, n: i64) -> i64 {
    millis.clamp(0, i64::MAX / PER_MILLI - 1) * PER_MILLI + n.rem_euclid(PER_MILLI)
}

/// The arrival time in milliseconds of the row with `seq`.
pub(crate) fn millis_of(seq: i64) -> i64 {
    seq.div_euclid(PER_MILLI)
}

const REQUESTS: &str = "CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    route TEXT NOT NULL,
    api INTEGER NOT NULL,
    stream INTEGER NOT NULL,
    key TEXT,
    status INTEGER,
    outcome INTEGER NOT NULL,
    served_by TEXT,
    fallback INTEGER NOT NULL,
    attempts TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    latency_ms INTEGER NOT NULL,
    first_chunk_ms INTEGER,
    error_kind TEXT,
    error_message TEXT,
    request TEXT,
    response TEXT
);
CREATE INDEX IF NOT EXISTS requests_id ON requests(id);";

/// Creates the tables and indexes when missing, moves a database of the first layout to this one; sets
/// WAL mode.
pub(crate) fn prepare(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // WAL without a sync per commit: a crash of the machine (not of the process) may lose the last batches.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Checkpoint every 4000 pages (16 MiB) rather than SQLite's 1000: the pages every batch touches (the tables'
    // and indexes' last pages, the rollups) are copied into the database once per checkpoint, so fewer
    // checkpoints copy fewer pages (measured: the checkpoints were about a sixth of the writer's time). The WAL
    // file is cut back to that size after each.
    conn.pragma_update(None, "wal_autocheckpoint", WAL_PAGES)?;
    conn.pragma_update(None, "journal_size_limit", WAL_PAGES * 4096)?;
    if first_layout(conn)? {
        migrate_first_layout(conn)?;
    }
    conn.execute_batch(REQUESTS)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS overrides (
            route TEXT NOT NULL,
            target TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (route, target)
        ) WITHOUT ROWID;",
    )?;
    // The minute and hour rollups have one layout.
    for table in ["usage_minute", "usage_hour"] {
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (
                minute INTEGER NOT NULL,
                route TEXT NOT NULL,
                target TEXT NOT NULL,
                key TEXT NOT NULL,
                requests INTEGER NOT NULL,
                success INTEGER NOT NULL,
                failed INTEGER NOT NULL,
                cancelled INTEGER NOT NULL,
                fallbacks INTEGER NOT NULL,
                input_tokens INTEGER NOT NULL,
                output_tokens INTEGER NOT NULL,
                histogram BLOB NOT NULL,
                PRIMARY KEY (minute, route, target, key)
            ) WITHOUT ROWID;"
        ))?;
    }
    conn.pragma_update(None, "user_version", LAYOUT)
}

/// Whether the database holds a `requests` table of the first layout (with a `time` column).
fn first_layout(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("SELECT 1 FROM pragma_table_info('requests') WHERE name = 'time'", [], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
}

/// Rewrites a first-layout `requests` table into this layout, keeping every row and their order (rows of one
/// millisecond keep their insertion order). One transaction: a failure leaves the old table as it was.
fn migrate_first_layout(conn: &mut Connection) -> rusqlite::Result<()> {
    tracing::info!("storage: moving the request log to the new layout (once; a big log takes a while)");
    let tx = conn.transaction()?;
    tx.execute_batch("ALTER TABLE requests RENAME TO requests_first_layout; DROP INDEX IF EXISTS requests_time; DROP INDEX IF EXISTS requests_id;")?;
    tx.execute_batch(REQUESTS)?;
    tx.execute(
        "INSERT INTO requests (seq, id, route, api, stream, key, status, outcome, served_by, fallback, attempts, \
         input_tokens, output_tokens, latency_ms, first_chunk_ms, error_kind, error_message, request, response) \
         SELECT max(time, 0) * ?1 + (row_number() OVER (PARTITION BY time ORDER BY seq) - 1) % ?1, id, route, api, \
         stream, key, status, outcome, served_by, fallback, attempts, input_tokens, output_tokens, latency_ms, \
         first_chunk_ms, error_kind, error_message, request, response FROM requests_first_layout",
        [PER_MILLI],
    )?;
    tx.execute_batch("DROP TABLE requests_first_layout;")?;
    tx.commit()
}
