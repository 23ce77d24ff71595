//! Reads for the admin API, each on its own read-only connection (never through the writer).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::Serialize;

use super::bloom::{self, Tag};
use super::histogram::Histogram;
use super::row::{Outcome, Row, from_millis, millis};
use super::schema::SLOTS;
use super::stored;

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

/// A position in the newest-first order: a row's arrival (ms), then its batch and its place in it (rows
/// sharing a millisecond in the order they were written).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    ms: i64,
    batch: i64,
    index: i64,
}

impl Cursor {
    /// From the text a page's `next` holds.
    pub fn parse(text: &str) -> Option<Cursor> {
        let mut parts = text.split('-').map(|part| part.parse::<i64>().ok());
        let cursor = Cursor { ms: parts.next()??, batch: parts.next()??, index: parts.next()?? };
        parts.next().is_none().then_some(cursor)
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}-{}", self.ms, self.batch, self.index)
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

/// A row found, ordered by its position.
struct Found(Cursor, Row);

impl PartialEq for Found {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for Found {}

impl PartialOrd for Found {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Found {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl Filter {
    /// The filter hashes a batch must (maybe) hold to hold a matching row.
    fn hashes(&self) -> Vec<u64> {
        let mut hashes = Vec::new();
        if let Some(route) = &self.route {
            hashes.push(bloom::hash(Tag::Route, route.as_bytes()));
        }
        if let Some(target) = &self.target {
            hashes.push(bloom::hash(Tag::Target, target.as_bytes()));
        }
        if let Some(key) = &self.key {
            hashes.push(bloom::hash(Tag::Key, key.as_bytes()));
        }
        if let Some(outcome) = self.outcome {
            hashes.push(bloom::outcome(outcome));
        }
        hashes
    }

    /// Whether `row` at `at` is one this filter wants.
    fn wants(&self, at: Cursor, row: &Row) -> bool {
        let text = |want: &Option<String>, have: Option<&str>| want.as_deref().is_none_or(|w| have == Some(w));
        self.since.is_none_or(|since| at.ms >= millis(since))
            && self.until.is_none_or(|until| at.ms < millis(until))
            && self.before.is_none_or(|before| at < before)
            && text(&self.route, Some(&row.route))
            && text(&self.key, row.key.as_deref())
            && self.outcome.is_none_or(|o| row.outcome == o)
            && self
                .target
                .as_deref()
                .is_none_or(|t| row.served_by.as_deref() == Some(t) || row.attempts.iter().any(|a| &*a.target == t))
    }
}

/// The rows of a batch's text. A batch this build cannot read (damaged, or written by hand) is logged and
/// left out, so it cannot make the rest of the log unreadable.
fn decode(batch: i64, text: &str) -> Vec<Row> {
    stored::decode(text).unwrap_or_else(|e| {
        tracing::warn!("storage: batch {batch} of the request log cannot be read ({e}); its rows are left out");
        Vec::new()
    })
}

/// A page of rows matching `filter`.
///
/// Batches are read newest last-arrival first. A batch holds the rows of the requests that finished in its
/// interval, so batches overlap in arrival time: a row is certain to come before every unread one only once
/// it arrived after the next batch's newest arrival. Matching rows wait in a heap until then.
pub(crate) fn list(path: &Path, filter: &Filter) -> Result<Page, ReadError> {
    let conn = read_only(path)?;
    let lowest = filter.since.map_or(i64::MIN, millis);
    let mut highest = filter.until.map_or(i64::MAX, |until| millis(until).saturating_sub(1));
    if let Some(before) = filter.before {
        highest = highest.min(before.ms);
    }
    let hashes = filter.hashes();
    let mut stmt = conn.prepare(
        "SELECT id, last_ms, filter, rows FROM batches WHERE last_ms >= ?1 AND first_ms <= ?2 \
         ORDER BY last_ms DESC, id DESC",
    )?;
    let mut batches = stmt.query([lowest, highest])?;
    let mut waiting = std::collections::BinaryHeap::new();
    let mut out: Vec<Found> = Vec::new();
    let want = filter.limit + 1;
    while out.len() < want {
        let Some(b) = batches.next()? else { break };
        let (id, last_ms): (i64, i64) = (b.get(0)?, b.get(1)?);
        while out.len() < want && waiting.peek().is_some_and(|f: &Found| f.0.ms > last_ms) {
            out.extend(waiting.pop());
        }
        let bits = b.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?;
        if out.len() == want || !hashes.iter().all(|&h| bloom::may_hold(bits, h)) {
            continue;
        }
        let text = b.get_ref(3)?.as_str().map_err(rusqlite::Error::from)?;
        for (index, row) in decode(id, text).into_iter().enumerate() {
            let at = Cursor { ms: millis(row.time), batch: id, index: index as i64 };
            if filter.wants(at, &row) {
                waiting.push(Found(at, row));
            }
        }
    }
    while out.len() < want {
        let Some(found) = waiting.pop() else { break };
        out.push(found);
    }
    let more = out.len() > filter.limit;
    out.truncate(filter.limit);
    let next = if more { out.last().map(|f| f.0.to_string()) } else { None };
    Ok(Page { requests: out.into_iter().map(|f| f.1).collect(), next })
}

/// The row of request `id`, with bodies (the newest, should two requests share an id).
pub(crate) fn get(path: &Path, id: &str) -> Result<Option<Row>, ReadError> {
    let conn = read_only(path)?;
    let hash = bloom::hash(Tag::Id, id.as_bytes());
    let mut stmt = conn.prepare("SELECT id, filter, rows FROM batches ORDER BY last_ms DESC, id DESC")?;
    let mut batches = stmt.query([])?;
    while let Some(b) = batches.next()? {
        if !bloom::may_hold(b.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?, hash) {
            continue;
        }
        let batch: i64 = b.get(0)?;
        let text = b.get_ref(2)?.as_str().map_err(rusqlite::Error::from)?;
        let rows = decode(batch, text);
        let Some((index, mut row)) = rows.into_iter().enumerate().rfind(|(_, row)| &*row.id == id) else {
            continue;
        };
        let bodies = conn
            .query_row("SELECT request, response FROM bodies WHERE slot = ?1", [batch * SLOTS + index as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        (row.request, row.response) = bodies.unwrap_or_default();
        return Ok(Some(row));
    }
    Ok(None)
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
