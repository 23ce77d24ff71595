//! The database layout: the request log in batches, and per-minute and per-hour rollups written in the same
//! transaction (`usage_hour.minute` is the hour's first minute), so a week of usage reads a few thousand rows.
//!
//! A batch is one SQLite row holding the rows of up to 500 requests as one JSON text ([`super::stored`]), in
//! arrival order, with its arrival range and a filter of the ids and names in it ([`super::bloom`]). One SQLite
//! row per request cost the writer about 11k instructions per request, most of it SQLite's per-row insert and
//! its id index; in batches the writer costs about 5k per request (`bench/instructions`, `BENCH_PART2=on`).
//! Bodies (`log_bodies`) are rows of their own, keyed by batch and position. The view `requests` shows the log
//! one request per row for `sqlite3` and other tools.

use rusqlite::{Connection, OptionalExtension};

use super::migrate;

/// WAL pages between two checkpoints.
const WAL_PAGES: i64 = 4000;

/// The layout this build writes, in `PRAGMA user_version`. 0: the first layout (a `requests` table with a
/// `time` column and index); 2: a `requests` table, one row per request, keyed by arrival.
const LAYOUT: i64 = 3;

/// Rows in a batch, at most.
pub(crate) const BATCH_ROWS: usize = 500;

/// Body slots per batch: a body's key is its batch's id times this plus its position in the batch.
pub(crate) const SLOTS: i64 = 512;

const _: () = assert!(BATCH_ROWS as i64 <= SLOTS);

const TABLES: &str = "CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY,
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    filter BLOB NOT NULL,
    rows TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS batches_last ON batches(last_ms);
CREATE TABLE IF NOT EXISTS bodies (
    slot INTEGER PRIMARY KEY,
    request TEXT,
    response TEXT
);";

/// One request per row, newest batch last, for people and tools (the gateway itself reads `batches`); `{SLOTS}`
/// stands for [`SLOTS`].
const VIEW: &str = "CREATE VIEW IF NOT EXISTS requests AS SELECT
    strftime('%Y-%m-%dT%H:%M:%fZ', json_extract(r.value, '$[0]') / 1000.0, 'unixepoch') AS time,
    json_extract(r.value, '$[1]') AS id,
    json_extract(r.value, '$[2]') AS route,
    json_extract(r.value, '$[3]') AS api,
    json_extract(r.value, '$[4]') AS stream,
    json_extract(r.value, '$[5]') AS key,
    json_extract(r.value, '$[6]') AS status,
    json_extract(r.value, '$[7]') AS outcome,
    json_extract(r.value, '$[8]') AS served_by,
    json_extract(r.value, '$[9]') AS fallback,
    json_extract(r.value, '$[10]') AS attempts,
    json_extract(r.value, '$[11]') AS input_tokens,
    json_extract(r.value, '$[12]') AS output_tokens,
    json_extract(r.value, '$[13]') AS latency_ms,
    json_extract(r.value, '$[14]') AS first_chunk_ms,
    json_extract(r.value, '$[15]') AS error_kind,
    json_extract(r.value, '$[16]') AS error_message,
    bodies.request AS request,
    bodies.response AS response
FROM batches b, json_each(b.rows) r LEFT JOIN bodies ON bodies.slot = b.id * {SLOTS} + r.key;";

/// Creates the tables and indexes when missing, moves a database of an earlier layout to this one; sets
/// WAL mode.
pub(crate) fn prepare(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // WAL without a sync per commit: a crash of the machine (not of the process) may lose the last batches.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Checkpoint every 4000 pages (16 MiB) rather than SQLite's 1000: the pages every batch touches (the tables'
    // and indexes' last pages, the rollups) are copied into the database once per checkpoint, so fewer
    // checkpoints copy fewer pages. The WAL file is cut back to that size after each.
    conn.pragma_update(None, "wal_autocheckpoint", WAL_PAGES)?;
    conn.pragma_update(None, "journal_size_limit", WAL_PAGES * 4096)?;
    conn.execute_batch(TABLES)?;
    if requests_table(conn)? {
        migrate::earlier_layouts(conn)?;
    }
    conn.execute_batch(&VIEW.replace("{SLOTS}", &SLOTS.to_string()))?;
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

/// Whether `requests` is a table (an earlier layout's) rather than this layout's view.
fn requests_table(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("SELECT 1 FROM sqlite_schema WHERE name = 'requests' AND type = 'table'", [], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
}
