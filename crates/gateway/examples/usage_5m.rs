//! Generates a week of request-log rows (5 million by default) and times `/admin/usage?since=7d`'s query, and
//! the request list's and a lookup by id's reads over them.
//!
//! `cargo run --release -p switchyard-gateway --example usage_5m -- /tmp/usage-5m.db [ROWS]`

use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

use switchyard_gateway::storage::{
    Api, AttemptResult, AttemptRow, By, Filter, Outcome, Row, Storage, StorageConfig, UsageQuery, write_rows,
};

fn row(i: usize, now: SystemTime, rows: usize) -> Row {
    let week = 7 * 86_400_000u64;
    let back = (i as u64).saturating_mul(week) / rows as u64;
    let served = ["oa/gpt-4o", "an/claude-sonnet", "oa/gpt-4o-mini", "an/claude-haiku"][i % 4];
    let latency = 80 + (i as u64 * 7919) % 2_000;
    Row {
        id: format!("{:032x}", i as u128 * 0x9e37_79b9_7f4a_7c15).into(),
        time: now - Duration::from_millis(back),
        route: ["chat", "code", "bulk"][i % 3].into(),
        api: Api::OpenAi,
        stream: i.is_multiple_of(2),
        key: None,
        status: Some(200),
        outcome: if i.is_multiple_of(50) { Outcome::Failed } else { Outcome::Success },
        served_by: Some(served.into()),
        fallback: i.is_multiple_of(20),
        attempts: vec![AttemptRow {
            target: served.into(),
            retry: Some(0),
            outcome: AttemptResult::Success,
            kind: None,
            status: None,
            latency_ms: Some(latency),
            hedge: Some(false),
            reason: None,
        }]
        .into(),
        input_tokens: 500,
        output_tokens: 200,
        latency_ms: latency,
        first_chunk_ms: None,
        error: None,
        request: None,
        response: None,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = std::path::PathBuf::from(args.next().unwrap_or_else(|| "usage-5m.db".to_owned()));
    let rows: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(5_000_000);
    let mut out = std::io::stdout();
    let now = SystemTime::now();
    let started = Instant::now();
    let mut chunk = Vec::with_capacity(100_000);
    for i in 0..rows {
        chunk.push(row(i, now, rows));
        if chunk.len() == 100_000 || i + 1 == rows {
            write_rows(&path, &chunk)?;
            chunk.clear();
        }
    }
    let size: u64 =
        ["", "-wal"].iter().map(|s| std::fs::metadata(format!("{}{s}", path.display())).map_or(0, |m| m.len())).sum();
    writeln!(
        out,
        "wrote {rows} rows in {:?}; file {size} bytes = {} bytes/row",
        started.elapsed(),
        size / rows as u64
    )?;
    let config = StorageConfig { path, retention: Duration::from_secs(8 * 86_400), log_bodies: false, queue: 10 };
    let storage = Storage::open(&config);
    for by in [By::Target, By::Route] {
        let q = UsageQuery {
            since: now - Duration::from_secs(7 * 86_400),
            until: now + Duration::from_secs(60),
            bucket_minutes: 60,
            by,
        };
        let started = Instant::now();
        let usage = storage.usage(&q)?;
        let total: i64 = usage.buckets.iter().map(|b| b.requests).sum();
        writeln!(
            out,
            "usage since 7d by {by:?}: {} buckets, {total} requests, {:?}",
            usage.buckets.len(),
            started.elapsed()
        )?;
    }
    let lists = [
        ("the newest 50", Filter { limit: 50, ..Filter::default() }),
        ("the newest 50 failed (1 in 50)", Filter { outcome: Some(Outcome::Failed), limit: 50, ..Filter::default() }),
        ("a target no row names", Filter { target: Some("oa/unused".to_owned()), limit: 50, ..Filter::default() }),
    ];
    for (label, filter) in lists {
        let started = Instant::now();
        let page = storage.list(&filter)?;
        writeln!(out, "list {label}: {} rows, {:?}", page.requests.len(), started.elapsed())?;
    }
    let oldest = row(rows - 1, now, rows).id;
    let started = Instant::now();
    let found = storage.get(&oldest)?.is_some();
    writeln!(out, "the oldest row by id: found {found}, {:?}", started.elapsed())?;
    Ok(())
}
