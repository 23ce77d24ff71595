//! Inserting a batch's request rows: many rows per statement, since SQLite's and rusqlite's cost per statement
//! (opening the table's and index's cursors, resetting, counting changes) was as large as a row's own.

use std::sync::Arc;

use rusqlite::{CachedStatement, Result, ToSql, Transaction, types::Null};

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
    prepared: [Option<Prepared<'t>>; 3],
    attempts: String,
}

impl Statements<'_> {
    /// Inserts the rows of `chunk` (`SIZES[size]` of them) in one statement, numbered from `first`.
    fn insert(&mut self, size: usize, chunk: &[&Row], first: i64) -> Result<()> {
        let stmt = match &mut self.prepared[size] {
            Some(stmt) => stmt,
            slot => slot.insert(Prepared::new(self.tx.prepare_cached(&sql(SIZES[size]))?, SIZES[size] * PARAMS)),
        };
        for (i, row) in chunk.iter().enumerate() {
            if let Err(e) = bind(stmt, i * PARAMS, row, first + i as i64, &mut self.attempts) {
                // What the failed parameter holds is unknown: bind every one again next time.
                stmt.held.fill(Held::Other);
                return Err(e);
            }
        }
        stmt.stmt.raw_execute().map(drop)
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

/// A prepared insert and what each of its parameters holds. A parameter keeps its value from one execution to
/// the next, so one that would get what it already holds (NULL, or the same shared route, target or key name) is
/// left alone: most of a row's nullable columns are NULL and its route, target and key repeat, and a bind cost
/// about 100 instructions (250 for text, which SQLite copies).
struct Prepared<'t> {
    stmt: CachedStatement<'t>,
    held: Vec<Held>,
}

/// What a parameter holds.
#[derive(Clone)]
enum Held {
    /// NULL: what every parameter of a statement holds when it comes from the cache (rusqlite clears the
    /// bindings of a statement it takes back) or is newly prepared.
    Null,
    /// This text, shared with the running config.
    Shared(Arc<str>),
    /// Anything else.
    Other,
}

impl Prepared<'_> {
    fn new(stmt: CachedStatement<'_>, params: usize) -> Prepared<'_> {
        Prepared { stmt, held: vec![Held::Null; params] }
    }

    /// Binds parameter `at` (1-based).
    fn value<T: ToSql>(&mut self, at: usize, value: T) -> Result<()> {
        self.held[at - 1] = Held::Other;
        self.stmt.raw_bind_parameter(at, value)
    }

    /// Binds parameter `at` to `value`, or to NULL unless it holds NULL already.
    fn or_null<T: ToSql>(&mut self, at: usize, value: Option<T>) -> Result<()> {
        match value {
            Some(v) => self.value(at, v),
            None if matches!(self.held[at - 1], Held::Null) => Ok(()),
            None => {
                self.stmt.raw_bind_parameter(at, Null)?;
                self.held[at - 1] = Held::Null;
                Ok(())
            }
        }
    }

    /// Binds parameter `at` to `text` unless it holds that very text already, or to NULL as [`Self::or_null`].
    fn shared(&mut self, at: usize, text: Option<&Arc<str>>) -> Result<()> {
        match (text, &self.held[at - 1]) {
            (Some(t), Held::Shared(held)) if Arc::ptr_eq(t, held) => Ok(()),
            (Some(t), _) => {
                self.stmt.raw_bind_parameter(at, &**t)?;
                self.held[at - 1] = Held::Shared(t.clone());
                Ok(())
            }
            (None, _) => self.or_null(at, None::<Null>),
        }
    }
}

/// Binds `row` as parameters `at + 1 ..= at + 19`.
fn bind(stmt: &mut Prepared<'_>, at: usize, row: &Row, n: i64, attempts: &mut String) -> Result<()> {
    attempts_text(&row.attempts, attempts);
    stmt.value(at + 1, schema::seq(millis(row.time), n))?;
    stmt.value(at + 2, row.id.as_str())?;
    stmt.shared(at + 3, Some(&row.route))?;
    stmt.value(at + 4, row.api.code())?;
    stmt.value(at + 5, row.stream)?;
    stmt.shared(at + 6, row.key.as_ref())?;
    stmt.or_null(at + 7, row.status)?;
    stmt.value(at + 8, row.outcome.code())?;
    stmt.shared(at + 9, row.served_by.as_ref())?;
    stmt.value(at + 10, row.fallback)?;
    stmt.value(at + 11, &*attempts)?;
    stmt.value(at + 12, clamp(row.input_tokens))?;
    stmt.value(at + 13, clamp(row.output_tokens))?;
    stmt.value(at + 14, clamp(row.latency_ms))?;
    stmt.or_null(at + 15, row.first_chunk_ms.map(clamp))?;
    stmt.or_null(at + 16, row.error.as_ref().map(|e| e.kind.as_str()))?;
    stmt.or_null(at + 17, row.error.as_ref().map(|e| e.message.as_str()))?;
    stmt.or_null(at + 18, row.request.as_deref())?;
    stmt.or_null(at + 19, row.response.as_deref())
}

/// Whether an insert failed because a row's `seq` is taken.
fn taken(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// The attempts as compact JSON text, into `out` (replacing what it held): the text serde_json writes for them
/// (rows are read back with serde), written here field by field because serde's generic path cost about 1.4k
/// instructions per row, a tenth of the writer's work.
fn attempts_text(attempts: &[super::AttemptRow], out: &mut String) {
    use super::AttemptResult;
    out.clear();
    out.push('[');
    for (i, a) in attempts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"target\":");
        json_str(&a.target, out);
        if let Some(retry) = a.retry {
            out.push_str(",\"retry\":");
            push_number(out, u64::from(retry));
        }
        out.push_str(match a.outcome {
            AttemptResult::Success => ",\"outcome\":\"success\"",
            AttemptResult::Failed => ",\"outcome\":\"failed\"",
            AttemptResult::Skipped => ",\"outcome\":\"skipped\"",
        });
        if let Some(kind) = a.kind {
            out.push_str(",\"kind\":\"");
            out.push_str(kind.as_str());
            out.push('"');
        }
        if let Some(status) = a.status {
            out.push_str(",\"status\":");
            push_number(out, u64::from(status));
        }
        if let Some(ms) = a.latency_ms {
            out.push_str(",\"latency_ms\":");
            push_number(out, ms);
        }
        if let Some(hedge) = a.hedge {
            out.push_str(if hedge { ",\"hedge\":true" } else { ",\"hedge\":false" });
        }
        if let Some(reason) = &a.reason {
            out.push_str(",\"reason\":");
            json_str(reason, out);
        }
        out.push('}');
    }
    out.push(']');
}

/// `text` as a JSON string: as it is when nothing in it needs escaping (target ids, mostly), else escaped by
/// serde_json.
fn json_str(text: &str, out: &mut String) {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned()));
    }
}

/// `n` in decimal digits.
fn push_number(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// A count as SQLite's integer.
pub(super) fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    use switchyard::ErrorKind;

    use super::attempts_text;
    use crate::storage::{Api, AttemptResult, AttemptRow, Outcome, Row, RowError};

    /// Parameters keep their values between executions of a statement and only changed ones are bound again:
    /// every row must still read back exactly as written, whichever of its neighbours' fields were set.
    #[test]
    fn rows_read_back_as_written_whatever_the_rows_before_them_held() {
        let path = std::env::temp_dir().join(format!("switchyard-insert-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let routes: [Arc<str>; 2] = [Arc::from("chat"), Arc::from("code")];
        // Two shared texts with the same content: each is bound as what it says.
        let targets: [Arc<str>; 3] = [Arc::from("oa/gpt-4o"), Arc::from("an/claude"), Arc::from("oa/gpt-4o")];
        // 90 rows: statements of 32, 32, 8, 8, 8, then 1 and 1, each executed with rows unlike the last.
        let rows: Vec<Row> = (0..90u64)
            .map(|i| {
                let time = UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + i);
                let mut row =
                    Row::arrived(&format!("row-{i}"), time, routes[(i % 2) as usize].clone(), Api::OpenAi, i % 5 == 0);
                row.key = (i % 3 == 0).then(|| format!("key-{i}").into());
                row.status = (i % 4 != 1).then_some(200 + (i % 7) as u16);
                row.outcome = [Outcome::Success, Outcome::Failed, Outcome::Cancelled][(i % 3) as usize];
                row.served_by = (i % 5 != 2).then(|| targets[(i % 3) as usize].clone());
                row.fallback = i % 6 == 0;
                row.input_tokens = i;
                row.output_tokens = 2 * i;
                row.latency_ms = 3 * i;
                row.first_chunk_ms = (i % 2 == 0).then_some(i);
                row.error = (i % 4 == 3)
                    .then(|| RowError { kind: ErrorKind::ALL[(i % 15) as usize], message: format!("failed {i}") });
                row.request = (i % 7 < 3).then(|| format!("{{\"n\":{i}}}"));
                row.response = (i % 7 == 1).then(|| format!("answer {i}"));
                row
            })
            .collect();
        crate::storage::write_rows(&path, &rows).unwrap();
        for row in &rows {
            let read = crate::storage::query::get(&path, &row.id).unwrap();
            assert_eq!(read.as_ref(), Some(row));
        }
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(path.with_extension("db-wal"));
        let _ = std::fs::remove_file(path.with_extension("db-shm"));
    }

    fn attempt(target: &str, outcome: AttemptResult) -> AttemptRow {
        AttemptRow {
            target: Arc::from(target),
            retry: None,
            outcome,
            kind: None,
            status: None,
            latency_ms: None,
            hedge: None,
            reason: None,
        }
    }

    /// The stored text is what serde_json writes for the attempts, so every reader (and every older build)
    /// parses it as before.
    #[test]
    fn attempts_text_is_what_serde_json_writes() {
        let mut lists = vec![Vec::new()];
        for outcome in [AttemptResult::Success, AttemptResult::Failed, AttemptResult::Skipped] {
            lists.push(vec![attempt("oa/gpt-4o", outcome)]);
        }
        let mut full = attempt("oa-a", AttemptResult::Failed);
        full.retry = Some(u32::MAX);
        full.status = Some(503);
        full.latency_ms = Some(u64::MAX);
        full.hedge = Some(true);
        let mut lists_of_kinds = Vec::new();
        for kind in ErrorKind::ALL {
            let mut a = full.clone();
            a.kind = Some(kind);
            lists_of_kinds.push(a);
        }
        lists.push(lists_of_kinds);
        let mut odd = attempt("quote\" back\\ tab\t nl\n ctl\u{1} del\u{7f} é 🚀", AttemptResult::Skipped);
        odd.reason = Some("breaker open: \"oa\"\r\n\u{0}".to_owned());
        odd.retry = Some(0);
        odd.latency_ms = Some(0);
        odd.hedge = Some(false);
        let mut skipped = attempt("b", AttemptResult::Skipped);
        skipped.reason = Some("over its rpm".to_owned());
        lists.push(vec![odd, skipped, full]);
        let mut out = String::from("left over");
        for list in lists {
            attempts_text(&list, &mut out);
            assert_eq!(out, serde_json::to_string(&list).unwrap(), "{list:?}");
            let back: Vec<AttemptRow> = serde_json::from_str(&out).unwrap();
            assert_eq!(back, list);
        }
    }
}
