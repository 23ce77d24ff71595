//! `switchyard logs [...] [--follow] [--json]`, `switchyard logs show ID` and `switchyard usage`: the
//! request log of a running gateway, through its admin API.

use std::io::Write;

use futures::StreamExt;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use super::admin_client::AdminClient;
use super::table;
use crate::cli::{LogsAction, LogsArgs, UsageArgs};

/// Width of the attempt timeline, in characters.
const TIMELINE: usize = 40;

fn write_out(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

fn query(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", utf8_percent_encode(v, NON_ALPHANUMERIC))))
        .collect();
    parts.join("&")
}

/// Runs `logs`.
pub async fn run(args: LogsArgs) -> anyhow::Result<()> {
    let client = AdminClient::new(&args.admin.url, args.admin.admin_key.clone())?;
    if let Some(LogsAction::Show { id }) = &args.show {
        let row = client.get(&format!("/admin/requests/{}", utf8_percent_encode(id, NON_ALPHANUMERIC))).await?;
        return write_out(&if args.json { format!("{row}\n") } else { show(&row) });
    }
    // Following opens the event stream first, so no request finishing meanwhile is missed.
    let events = if args.follow { Some(client.events().await?) } else { None };
    let q = query(&[
        ("route", args.route.clone()),
        ("target", args.target.clone()),
        ("outcome", args.failed.then(|| "failed".to_owned())),
        ("since", args.since.clone()),
        ("limit", Some(args.limit.to_string())),
    ]);
    let page = client.get(&format!("/admin/requests?{q}")).await?;
    let mut rows: Vec<Value> = page["requests"].as_array().cloned().unwrap_or_default();
    rows.reverse();
    if args.json {
        write_out(&rows.iter().map(|r| format!("{r}\n")).collect::<String>())?;
    } else {
        write_out(&table::render(&HEADER, &rows.iter().map(cells).collect::<Vec<_>>()))?;
    }
    let Some(events) = events else { return Ok(()) };
    let mut body = super::gateway_http::data_of(events);
    let mut text = String::new();
    while let Some(chunk) = body.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.map_err(anyhow::Error::from_boxed)?));
        while let Some(end) = text.find("\n\n") {
            let frame: String = text.drain(..end + 2).collect();
            if !frame.lines().any(|l| l == "event: request") {
                continue;
            }
            let Some(row) = frame.lines().find_map(|l| l.strip_prefix("data: ")) else { continue };
            let Ok(row) = serde_json::from_str::<Value>(row) else { continue };
            if !matches(&args, &row) {
                continue;
            }
            let line = if args.json { format!("{row}\n") } else { format!("{}\n", cells(&row).join("  ")) };
            write_out(&line)?;
        }
    }
    Ok(())
}

/// Whether a followed row passes the command's filters.
fn matches(args: &LogsArgs, row: &Value) -> bool {
    let route_ok = args.route.as_deref().is_none_or(|r| row["route"] == r);
    let target_ok = args.target.as_deref().is_none_or(|t| {
        row["served_by"] == t || row["attempts"].as_array().into_iter().flatten().any(|a| a["target"] == t)
    });
    route_ok && target_ok && (!args.failed || row["outcome"] == "failed")
}

const HEADER: [&str; 9] = ["TIME", "ID", "ROUTE", "STATUS", "OUTCOME", "SERVED BY", "CALLS", "MS", "TOKENS"];

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn cells(row: &Value) -> Vec<String> {
    let calls = row["attempts"].as_array().into_iter().flatten().filter(|a| a["outcome"] != "skipped").count();
    let served = match (text(&row["served_by"]), row["fallback"].as_bool()) {
        (s, Some(true)) => format!("{s} (fallback)"),
        (s, _) => s,
    };
    vec![
        text(&row["time"]),
        text(&row["id"]),
        text(&row["route"]),
        text(&row["status"]),
        text(&row["outcome"]),
        served,
        calls.to_string(),
        text(&row["latency_ms"]),
        format!("{}/{}", text(&row["input_tokens"]), text(&row["output_tokens"])),
    ]
}

/// One request and its attempt timeline, each call drawn after the previous one and as long as it took.
pub fn show(row: &Value) -> String {
    let mut out = format!(
        "request {}  {}  route {}  {}{}\nstatus {}  {}  {} ms",
        text(&row["id"]),
        text(&row["time"]),
        text(&row["route"]),
        text(&row["api"]),
        if row["stream"] == true { " stream" } else { "" },
        text(&row["status"]),
        text(&row["outcome"]),
        text(&row["latency_ms"]),
    );
    if let Some(first) = row["first_chunk_ms"].as_u64() {
        out.push_str(&format!(" (first chunk after {first} ms)"));
    }
    out.push_str(&format!(
        "\nserved by {}{}  tokens {} in / {} out\n",
        text(&row["served_by"]),
        if row["fallback"] == true { " (fallback)" } else { "" },
        text(&row["input_tokens"]),
        text(&row["output_tokens"]),
    ));
    if row["error"].is_object() {
        out.push_str(&format!("error {}: {}\n", text(&row["error"]["kind"]), text(&row["error"]["message"])));
    }
    let attempts: Vec<&Value> = row["attempts"].as_array().into_iter().flatten().collect();
    let total: u64 = attempts.iter().filter_map(|a| a["latency_ms"].as_u64()).sum::<u64>().max(1);
    let mut start = 0u64;
    let mut lines = Vec::new();
    for a in attempts {
        let label = match (a["outcome"].as_str(), a["kind"].as_str()) {
            (Some("skipped"), _) => format!("skipped: {}", text(&a["reason"])),
            (Some("failed"), Some(kind)) => format!("failed {kind}"),
            (outcome, _) => outcome.unwrap_or("-").to_owned(),
        };
        let bar = match a["latency_ms"].as_u64() {
            Some(ms) => {
                let from = usize::try_from(start * TIMELINE as u64 / total).unwrap_or(0);
                let to = usize::try_from((start + ms) * TIMELINE as u64 / total).unwrap_or(0).max(from + 1);
                start += ms;
                let to = to.min(TIMELINE);
                format!(
                    "|{}{}{}| {ms} ms",
                    " ".repeat(from.min(to)),
                    "#".repeat(to - from.min(to)),
                    " ".repeat(TIMELINE - to)
                )
            }
            None => String::new(),
        };
        lines.push(vec![text(&a["target"]), format!("retry {}", text(&a["retry"])), label, bar]);
    }
    out.push_str("attempts:\n");
    out.push_str(&table::render(&["TARGET", "RETRY", "OUTCOME", "TIMELINE"], &lines));
    out
}

/// Runs `usage`.
pub async fn usage(args: UsageArgs) -> anyhow::Result<()> {
    let client = AdminClient::new(&args.admin.url, args.admin.admin_key.clone())?;
    let q = query(&[("by", Some(args.by)), ("since", Some(args.since)), ("bucket", Some(args.bucket))]);
    let usage = client.get(&format!("/admin/usage?{q}")).await?;
    let buckets: Vec<Value> = usage["buckets"].as_array().cloned().unwrap_or_default();
    if args.json {
        return write_out(&buckets.iter().map(|b| format!("{b}\n")).collect::<String>());
    }
    let keys = [
        "start",
        "group",
        "requests",
        "success",
        "failed",
        "cancelled",
        "fallbacks",
        "input_tokens",
        "output_tokens",
        "p50_ms",
        "p95_ms",
    ];
    let rows: Vec<Vec<String>> = buckets.iter().map(|b| keys.iter().map(|k| text(&b[*k])).collect()).collect();
    let header = ["START", "GROUP", "REQUESTS", "OK", "FAILED", "CANCELLED", "FALLBACKS", "IN", "OUT", "P50", "P95"];
    write_out(&table::render(&header, &rows))
}
