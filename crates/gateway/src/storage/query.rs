//! Reads for the admin API, each on its own read-only connection (never through the writer).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params_from_iter};
use serde::Serialize;

use super::histogram::Histogram;
use super::row::{Api, AttemptRow, Outcome, Row, RowError, from_millis, millis, parse_kind};
use super::schema::{millis_of, seq};

/// A read failed.
#[derive(Debug, thiserror::Error)]
#[error("storage: cannot read the request log: {0}")]
pub struct ReadError(String);

impl From<rusqlite::Error> for ReadError {
    fn from(e: rusqlite::Error) -> Self {
        ReadError(e.to_string())
    }
}

/// Which rows `/admin/requests` wants.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this route.
    pub route: Option<String>,
    /// Only rows this target served or was attempted in.
    pub target: Option<String>,
    /// Only this outcome.
    pub outcome: Option<Outcome>,
    /// Only this client key's name.
    pub key: Option<String>,
    /// Arrived at or after.
    pub since: Option<SystemTime>,
    /// Arrived before.
    pub until: Option<SystemTime>,
    /// Older than this cursor (from the previous page).
    pub before: Option<Cursor>,
    /// Rows per page.
    pub limit: usize,
}

/// A position in the newest-first order: a row's `seq` (arrival time, then order among rows sharing a
/// millisecond).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    seq: i64,
}

impl Cursor {
    /// From the text a page's `next` holds.
    pub fn parse(text: &str) -> Option<Cursor> {
        Some(Cursor { seq: text.parse().ok()? })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.seq)
    }
}

/// One page of rows, newest first.
#[derive(Debug, Serialize)]
pub struct Page {
    /// The rows, without bodies.
    pub requests: Vec<Row>,
    /// The cursor of the next (older) page; null when no older row matches.
    pub next: Option<String>,
}

fn read_only(path: &Path) -> Result<Connection, ReadError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(2))?;
    Ok(conn)
}

const COLUMNS: &str = "seq, id, route, api, stream, key, status, outcome, served_by, fallback, attempts, \
                       input_tokens, output_tokens, latency_ms, first_chunk_ms, error_kind, error_message";

/// A page of rows matching `filter`.
pub(crate) fn list(path: &Path, filter: &Filter) -> Result<Page, ReadError> {
    let conn = read_only(path)?;
    let mut sql = format!("SELECT {COLUMNS} FROM requests WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    let mut arg = |sql: &mut String, clause: &str, value: Value| {
        args.push(value);
        sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
    };
    if let Some(route) = &filter.route {
        arg(&mut sql, " AND route = ?", Value::Text(route.clone()));
    }
    if let Some(target) = &filter.target {
        // The served target, or one named in the attempts (its JSON text, exactly as the writer wrote it).
        let needle = format!("\"target\":{}", serde_json::Value::String(target.clone()));
        arg(&mut sql, " AND (served_by = ?", Value::Text(target.clone()));
        arg(&mut sql, " OR instr(attempts, ?) > 0)", Value::Text(needle));
    }
    if let Some(outcome) = filter.outcome {
        arg(&mut sql, " AND outcome = ?", Value::Integer(outcome.code()));
    }
    if let Some(key) = &filter.key {
        arg(&mut sql, " AND key = ?", Value::Text(key.clone()));
    }
    if let Some(since) = filter.since {
        arg(&mut sql, " AND seq >= ?", Value::Integer(seq(millis(since), 0)));
    }
    if let Some(until) = filter.until {
        arg(&mut sql, " AND seq < ?", Value::Integer(seq(millis(until), 0)));
    }
    if let Some(c) = filter.before {
        arg(&mut sql, " AND seq < ?", Value::Integer(c.seq));
    }
    arg(&mut sql, " ORDER BY seq DESC LIMIT ?", Value::Integer(filter.limit as i64 + 1));
    let mut stmt = conn.prepare(&sql)?;
    let mut rows: Vec<(Cursor, Row)> =
        stmt.query_map(params_from_iter(args), |r| read_row(r, false))?.collect::<Result<_, _>>()?;
    let more = rows.len() > filter.limit;
    rows.truncate(filter.limit);
    let next = if more { rows.last().map(|(c, _)| c.to_string()) } else { None };
    Ok(Page { requests: rows.into_iter().map(|(_, r)| r).collect(), next })
}

/// The row of request `id`, with bodies.
pub(crate) fn get(path: &Path, id: &str) -> Result<Option<Row>, ReadError> {
    let conn = read_only(path)?;
    let sql = format!("SELECT {COLUMNS}, request, response FROM requests WHERE id = ?1 ORDER BY seq DESC LIMIT 1");
    let row = conn.query_row(&sql, [id], |r| read_row(r, true)).optional()?;
    Ok(row.map(|(_, r)| r))
}

/// A row's attempts column. An attempt this build cannot read (a newer version wrote it) is left out rather
/// than the whole list; unknown error kinds already read as `server` ([`AttemptRow::kind`]).
fn read_attempts(text: &str) -> Vec<AttemptRow> {
    serde_json::from_str(text).unwrap_or_else(|_| {
        let items: Vec<serde_json::Value> = serde_json::from_str(text).unwrap_or_default();
        items.into_iter().filter_map(|item| serde_json::from_value(item).ok()).collect()
    })
}

fn read_row(r: &rusqlite::Row<'_>, bodies: bool) -> rusqlite::Result<(Cursor, Row)> {
    let seq: i64 = r.get(0)?;
    let attempts: String = r.get(10)?;
    let error_kind: Option<String> = r.get(15)?;
    let error_message: Option<String> = r.get(16)?;
    let count = |i: usize| -> rusqlite::Result<u64> { Ok(u64::try_from(r.get::<_, i64>(i)?).unwrap_or(0)) };
    let row = Row {
        id: r.get(1)?,
        time: from_millis(millis_of(seq)),
        route: Arc::from(r.get::<_, String>(2)?),
        api: Api::from_code(r.get(3)?),
        stream: r.get(4)?,
        key: r.get::<_, Option<String>>(5)?.map(Arc::from),
        status: r.get(6)?,
        outcome: Outcome::from_code(r.get(7)?),
        served_by: r.get::<_, Option<String>>(8)?.map(Arc::from),
        fallback: r.get(9)?,
        attempts: read_attempts(&attempts).into(),
        input_tokens: count(11)?,
        output_tokens: count(12)?,
        latency_ms: count(13)?,
        first_chunk_ms: r.get::<_, Option<i64>>(14)?.map(|v| u64::try_from(v).unwrap_or(0)),
        error: error_kind.map(|kind| RowError { kind: parse_kind(&kind), message: error_message.unwrap_or_default() }),
        request: if bodies { r.get(17)? } else { None },
        response: if bodies { r.get(18)? } else { None },
    };
    Ok((Cursor { seq }, row))
}

/// How `/admin/usage` groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// Per route.
    Route,
    /// Per serving target (null: nothing served).
    Target,
    /// Per client key name (null: no key).
    Key,
}

/// What `/admin/usage` asks.
#[derive(Debug, Clone)]
pub struct UsageQuery {
    /// Window start.
    pub since: SystemTime,
    /// Window end.
    pub until: SystemTime,
    /// Bucket width in minutes (1, 60 or 1440).
    pub bucket_minutes: i64,
    /// Grouping.
    pub by: By,
}

/// One bucket of one group.
#[derive(Debug, Serialize)]
pub struct Bucket {
    /// Bucket start, RFC 3339.
    pub start: String,
    /// The route, serving target or key name.
    pub group: Option<String>,
    /// Finished requests.
    pub requests: i64,
    /// Of which succeeded.
    pub success: i64,
    /// Of which failed.
    pub failed: i64,
    /// Of which the client cancelled.
    pub cancelled: i64,
    /// Of which were served by a fallback.
    pub fallbacks: i64,
    /// Prompt tokens.
    pub input_tokens: i64,
    /// Answer tokens.
    pub output_tokens: i64,
    /// Median latency (the upper bound of its histogram bucket, within 20%).
    pub p50_ms: Option<u64>,
    /// 95th percentile latency (same precision).
    pub p95_ms: Option<u64>,
}

/// `/admin/usage`'s answer: buckets by start, then group.
#[derive(Debug, Serialize)]
pub struct Usage {
    /// The buckets.
    pub buckets: Vec<Bucket>,
}

#[derive(Default)]
struct Acc {
    counts: [i64; 7],
    histogram: Histogram,
}

/// Sums the per-minute rollups into buckets.
pub(crate) fn usage(path: &Path, q: &UsageQuery) -> Result<Usage, ReadError> {
    let conn = read_only(path)?;
    let column = match q.by {
        By::Route => "route",
        By::Target => "target",
        By::Key => "key",
    };
    let since = millis(q.since).div_euclid(60_000);
    let until = (millis(q.until) + 59_999).div_euclid(60_000);
    let width = q.bucket_minutes.max(1);
    let mut acc: BTreeMap<(i64, String), Acc> = BTreeMap::new();
    // Whole hours come from the hour rollup when buckets are hours or days; the edges from the minute rollup.
    let (first_hour, end_hour) = (since + (60 - since.rem_euclid(60)) % 60, until - until.rem_euclid(60));
    if width >= 60 && first_hour < end_hour {
        read_rollup(&conn, "usage_hour", column, (first_hour, end_hour), width, &mut acc)?;
        read_rollup(&conn, "usage_minute", column, (since, first_hour), width, &mut acc)?;
        read_rollup(&conn, "usage_minute", column, (end_hour, until), width, &mut acc)?;
    } else {
        read_rollup(&conn, "usage_minute", column, (since, until), width, &mut acc)?;
    }
    let buckets = acc
        .into_iter()
        .map(|((start, group), a)| {
            let [requests, success, failed, cancelled, fallbacks, input_tokens, output_tokens] = a.counts;
            Bucket {
                start: humantime::format_rfc3339_seconds(from_millis(start * 60_000)).to_string(),
                group: Some(group).filter(|g| !g.is_empty()),
                requests,
                success,
                failed,
                cancelled,
                fallbacks,
                input_tokens,
                output_tokens,
                p50_ms: a.histogram.quantile(0.5),
                p95_ms: a.histogram.quantile(0.95),
            }
        })
        .collect();
    Ok(Usage { buckets })
}

/// Adds the rollup rows of `table` in minutes `[from, to)` to their buckets of `width` minutes.
fn read_rollup(
    conn: &Connection,
    table: &str,
    column: &str,
    (from, to): (i64, i64),
    width: i64,
    acc: &mut BTreeMap<(i64, String), Acc>,
) -> Result<(), ReadError> {
    if from >= to {
        return Ok(());
    }
    let sql = format!(
        "SELECT minute, {column}, requests, success, failed, cancelled, fallbacks, input_tokens, output_tokens, \
         histogram FROM {table} WHERE minute >= ?1 AND minute < ?2"
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([from, to])?;
    while let Some(r) = rows.next()? {
        let minute: i64 = r.get(0)?;
        let group: String = r.get(1)?;
        let a = acc.entry((minute - minute.rem_euclid(width), group)).or_default();
        for (i, slot) in a.counts.iter_mut().enumerate() {
            *slot += r.get::<_, i64>(i + 2)?;
        }
        let bytes: Vec<u8> = r.get(9)?;
        a.histogram.merge(&Histogram::from_bytes(&bytes));
    }
    Ok(())
}

/// The stored overrides: (route, target, JSON text).
pub(crate) fn overrides(path: &Path) -> Result<Vec<(String, String, String)>, ReadError> {
    let conn = read_only(path)?;
    let mut stmt = conn.prepare("SELECT route, target, value FROM overrides")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?;
    Ok(rows)
}
