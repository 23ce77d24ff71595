//! Inserting a batch's request rows: many rows per statement, since SQLite's and rusqlite's cost per statement
//! (opening the table's and index's cursors, resetting, counting changes) was as large as a row's own.

use rusqlite::{CachedStatement, Result, Transaction, types::Null};

use super::row::{Row, millis};
use super::schema;

/// Rows per statement, largest first (19 parameters each; SQLite allows 32,766): a batch goes in statements of
/// 32 rows, its rest in statements of 8, then of 1.
const SIZES: [usize; 3] = [32, 8, 1];

const COLUMNS: &str = "seq, id, route, api, stream, key, status, outcome, served_by, fallback, attempts, \
                       input_tokens, output_tokens, latency_ms, first_chunk_ms, error_kind, error_message, request, \
                       response";

/// Parameters per row.
const PARAMS: usize = 19;

/// The insert of `rows` rows.
fn sql(rows: usize) -> String {
    let one = format!("({})", vec!["?"; PARAMS].join(", "));
    format!("INSERT INTO requests ({COLUMNS}) VALUES {}", vec![one; rows].join(", "))
}

/// Inserts `rows` numbering them from `next` (see [`schema::seq`]), which goes on counting across batches.
pub(super) fn rows(tx: &Transaction<'_>, rows: &[Row], next: &mut i64) -> Result<()> {
    // Rows come in the order requests finished; in arrival order they extend the table at its end, where SQLite
    // leaves pages full, instead of splitting pages in the middle half empty (measured per row: 213 bytes
    // against 222 for the usual slight disorder, 251 against 316 for rows in reverse order).
    let mut sorted: Vec<&Row> = rows.iter().collect();
    sorted.sort_by_key(|row| row.time);
    let mut rows = &sorted[..];
    let mut statements = Statements { tx, prepared: [None, None, None], attempts: String::new() };
    while !rows.is_empty() {
        let size = SIZES.iter().position(|&size| size <= rows.len()).unwrap_or(SIZES.len() - 1);
        let (chunk, rest) = rows.split_at(SIZES[size].min(rows.len()));
        rows = rest;
        let first = *next + 1;
        *next += chunk.len() as i64;
        match statements.insert(size, chunk, first) {
            // A row's number is held by an older row (a clock set back, or rows thousands apart in one
            // millisecond); nothing of the statement was written: each row alone takes the next free number.
            Err(e) if taken(&e) => {
                for row in chunk {
                    statements.one(row, next)?;
                }
            }
            other => other?,
        }
    }
    Ok(())
}

/// The prepared inserts of one transaction (by [`SIZES`]), and a buffer for the attempts' text.
struct Statements<'t> {
    tx: &'t Transaction<'t>,
    prepared: [Option<CachedStatement<'t>>; 3],
    attempts: String,
}

impl Statements<'_> {
    /// Inserts the rows of `chunk` (`SIZES[size]` of them) in one statement, numbered from `first`.
    fn insert(&mut self, size: usize, chunk: &[&Row], first: i64) -> Result<()> {
        let stmt = match &mut self.prepared[size] {
            Some(stmt) => stmt,
            slot => slot.insert(self.tx.prepare_cached(&sql(SIZES[size]))?),
        };
        for (i, row) in chunk.iter().enumerate() {
            bind(stmt, i * PARAMS, row, first + i as i64, &mut self.attempts)?;
        }
        stmt.raw_execute().map(drop)
    }

    /// Inserts one row with the next free number.
    fn one(&mut self, row: &Row, next: &mut i64) -> Result<()> {
        let mut tries = 0;
        loop {
            *next += 1;
            match self.insert(SIZES.len() - 1, &[row], *next) {
                Err(e) if taken(&e) && tries < schema::PER_MILLI => tries += 1,
                other => return other,
            }
        }
    }
}

/// Binds `row` as parameters `at + 1 ..= at + 19`.
fn bind(stmt: &mut CachedStatement<'_>, at: usize, row: &Row, n: i64, attempts: &mut String) -> Result<()> {
    attempts_text(&row.attempts, attempts);
    stmt.raw_bind_parameter(at + 1, schema::seq(millis(row.time), n))?;
    stmt.raw_bind_parameter(at + 2, row.id.as_str())?;
    stmt.raw_bind_parameter(at + 3, &*row.route)?;
    stmt.raw_bind_parameter(at + 4, row.api.code())?;
    stmt.raw_bind_parameter(at + 5, row.stream)?;
    stmt.raw_bind_parameter(at + 6, row.key.as_deref())?;
    stmt.raw_bind_parameter(at + 7, row.status)?;
    stmt.raw_bind_parameter(at + 8, row.outcome.code())?;
    stmt.raw_bind_parameter(at + 9, row.served_by.as_deref())?;
    stmt.raw_bind_parameter(at + 10, row.fallback)?;
    stmt.raw_bind_parameter(at + 11, &*attempts)?;
    stmt.raw_bind_parameter(at + 12, clamp(row.input_tokens))?;
    stmt.raw_bind_parameter(at + 13, clamp(row.output_tokens))?;
    stmt.raw_bind_parameter(at + 14, clamp(row.latency_ms))?;
    stmt.raw_bind_parameter(at + 15, row.first_chunk_ms.map(clamp))?;
    match &row.error {
        Some(e) => {
            stmt.raw_bind_parameter(at + 16, e.kind.as_str())?;
            stmt.raw_bind_parameter(at + 17, &e.message)?;
        }
        None => {
            stmt.raw_bind_parameter(at + 16, Null)?;
            stmt.raw_bind_parameter(at + 17, Null)?;
        }
    }
    stmt.raw_bind_parameter(at + 18, row.request.as_deref())?;
    stmt.raw_bind_parameter(at + 19, row.response.as_deref())
}

/// Whether an insert failed because a row's `seq` is taken.
fn taken(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// The attempts as compact JSON text, into `out` (replacing what it held).
fn attempts_text(attempts: &[super::AttemptRow], out: &mut String) {
    let mut bytes = std::mem::take(out).into_bytes();
    bytes.clear();
    if serde_json::to_writer(&mut bytes, attempts).is_err() {
        bytes.clear();
        bytes.extend_from_slice(b"[]");
    }
    // serde_json writes UTF-8 only.
    *out = String::from_utf8(bytes).unwrap_or_else(|_| "[]".to_owned());
}

/// A count as SQLite's integer.
pub(super) fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
