//! The database layout: compact request rows, and per-minute and per-hour rollups written in the same
//! transaction (`usage_hour.minute` is the hour's first minute), so a week of usage reads a few thousand rows.
//!
//! Times are integer milliseconds, statuses and outcomes integers; attempts are compact JSON text (one short
//! array per row measured smaller than a child table with its own rowid and index).

use rusqlite::Connection;

/// WAL pages between two checkpoints.
const WAL_PAGES: i64 = 4000;

/// Creates the tables and indexes when missing; sets WAL mode.
pub(crate) fn prepare(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // WAL without a sync per commit: a crash of the machine (not of the process) may lose the last batches.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Checkpoint every 4000 pages (16 MiB) rather than SQLite's 1000: the pages every batch touches (the tables'
    // and indexes' last pages, the rollups) are copied into the database once per checkpoint, so fewer
    // checkpoints copy fewer pages (measured: the checkpoints were about a sixth of the writer's time). The WAL
    // file is cut back to that size after each.
    conn.pragma_update(None, "wal_autocheckpoint", WAL_PAGES)?;
    conn.pragma_update(None, "journal_size_limit", WAL_PAGES * 4096)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS requests (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL,
            time INTEGER NOT NULL,
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
        CREATE INDEX IF NOT EXISTS requests_time ON requests(time);
        CREATE INDEX IF NOT EXISTS requests_id ON requests(id);
        CREATE TABLE IF NOT EXISTS overrides (
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
    Ok(())
}
