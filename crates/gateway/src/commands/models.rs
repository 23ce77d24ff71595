//! `switchyard models list|enable|disable|set-priority` and `switchyard stats`.

use std::io::Write;

use anyhow::bail;
use serde_json::{Value, json};

use super::admin_client::AdminClient;
use super::table;
use crate::cli::{ModelsAction, ModelsArgs, StatsArgs};

/// Runs a `models` action against a running gateway.
pub async fn run(args: ModelsArgs) -> anyhow::Result<()> {
    let client = AdminClient::new(&args.admin.url, args.admin.admin_key)?;
    let (id, route, body) = match args.action {
        ModelsAction::List => {
            let routes = client.routes().await?;
            write_out(&routes_table(&routes))?;
            return Ok(());
        }
        ModelsAction::Enable { id, route } => (id, route, json!({ "enabled": true })),
        ModelsAction::Disable { id, route } => (id, route, json!({ "enabled": false })),
        ModelsAction::SetPriority { id, priority, route } => (id, route, json!({ "priority": priority })),
        ModelsAction::Reset { id, route } => return reset(&client, &id, route).await,
    };
    if route.is_none()
        && let Some(enabled) = body.get("enabled").and_then(Value::as_bool)
    {
        // Enabling or disabling everywhere is one admin call, which also covers direct requests.
        let changed = client.patch_everywhere(&id, &body).await?;
        let state = if enabled { "enabled" } else { "disabled" };
        let mut out = String::new();
        for route in changed["routes"].as_array().into_iter().flatten() {
            out.push_str(&format!("route {}: {id} is now {state}\n", route.as_str().unwrap_or("")));
        }
        if changed["direct"].as_bool() == Some(true) {
            out.push_str(&format!("direct requests: {id} is now {state}\n"));
        }
        return write_out(&out);
    }
    let routes = match route {
        Some(route) => vec![route],
        None => routes_with(&client.routes().await?, &id),
    };
    if routes.is_empty() {
        bail!("no route has a target {id:?}; `switchyard models list` shows the ids");
    }
    let mut out = String::new();
    for route in routes {
        let t = client.patch(&route, &id, &body).await?;
        out.push_str(&format!(
            "route {route}: {} is now {} (priority {}, retries {})\n",
            t["id"].as_str().unwrap_or(&id),
            if t["enabled"].as_bool() == Some(true) { "enabled" } else { "disabled" },
            t["priority"],
            t["max_retries"]
        ));
    }
    write_out(&out)
}

/// Clears the overrides of `id` on `route`, or on every route listing it and for direct requests.
async fn reset(client: &AdminClient, id: &str, route: Option<String>) -> anyhow::Result<()> {
    let everywhere = route.is_none();
    let routes = match route {
        Some(route) => vec![route],
        None => routes_with(&client.routes().await?, id),
    };
    if routes.is_empty() {
        bail!("no route has a target {id:?}; `switchyard models list` shows the ids");
    }
    let mut out = String::new();
    for route in &routes {
        let t = client.clear_override(route, id).await?;
        let state = if t["enabled"].as_bool() == Some(true) { "enabled" } else { "disabled" };
        out.push_str(&format!("route {route}: {id} is back to its config ({state}, priority {})\n", t["priority"]));
    }
    // Direct requests (`model` = the target id) have their own override, set by `models disable ID`.
    if everywhere && client.clear_override(id, id).await.is_ok() {
        out.push_str(&format!("direct requests: {id} is back to its config\n"));
    }
    write_out(&out)
}

/// Shows (and optionally resets) the stats of a running gateway.
pub async fn stats(args: StatsArgs) -> anyhow::Result<()> {
    let client = AdminClient::new(&args.server.url, args.admin_key)?;
    let stats = client.stats().await?;
    let mut out = stats_text(&stats);
    if args.reset {
        client.reset_stats().await?;
        out.push_str("\nstats reset\n");
    }
    write_out(&out)
}

fn write_out(text: &str) -> anyhow::Result<()> {
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

fn routes_with(routes: &Value, id: &str) -> Vec<String> {
    routes["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["targets"].as_array().is_some_and(|ts| ts.iter().any(|t| t["id"] == id)))
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect()
}

/// The `models list` table.
pub fn routes_table(routes: &Value) -> String {
    let mut rows = Vec::new();
    for r in routes["routes"].as_array().into_iter().flatten() {
        for t in r["targets"].as_array().into_iter().flatten() {
            rows.push(vec![
                r["name"].as_str().unwrap_or("").to_owned(),
                t["id"].as_str().unwrap_or("").to_owned(),
                if t["enabled"].as_bool() == Some(true) { "yes" } else { "no" }.to_owned(),
                t["priority"].to_string(),
                t["max_retries"].to_string(),
                t["usage"].to_string(),
                if t["is_current"].as_bool() == Some(true) { "*" } else { "" }.to_owned(),
                t["breaker"].as_str().unwrap_or("").to_owned(),
                t["disabled_reason"].as_str().unwrap_or("").to_owned(),
            ]);
        }
    }
    table::render(&["ROUTE", "TARGET", "ENABLED", "PRIORITY", "RETRIES", "USAGE", "CURRENT", "BREAKER", "NOTE"], &rows)
}

/// The `stats` text.
pub fn stats_text(s: &Value) -> String {
    let total = s["total"].as_u64().unwrap_or(0);
    let success = s["success"].as_u64().unwrap_or(0);
    let rate = if total == 0 { 100.0 } else { success as f64 * 100.0 / total as f64 };
    let mut out = format!(
        "requests: {total} total, {success} succeeded, {} failed, {} cancelled, {} in flight\n\
         success rate: {rate:.2}%\nfallbacks: {}\n\n",
        s["failed"], s["cancelled"], s["in_flight"], s["fallbacks"]
    );
    let mut rows = Vec::new();
    for (id, t) in s["targets"].as_object().into_iter().flatten() {
        let mut failures: Vec<String> =
            t["failures"].as_object().into_iter().flatten().map(|(kind, n)| format!("{kind}={n}")).collect();
        // A stream that broke after its first chunk was a success of the call, but not an answer: not OK.
        let broken = t["stream_failures"].as_u64().unwrap_or(0);
        if broken > 0 {
            failures.push(format!("stream_broke={broken}"));
        }
        rows.push(vec![
            id.clone(),
            t["attempts"].to_string(),
            t["successes"].as_u64().unwrap_or(0).saturating_sub(broken).to_string(),
            if failures.is_empty() { "-".to_owned() } else { failures.join(" ") },
            t["usage"].to_string(),
            t["skipped"].to_string(),
            format!("{:.1}ms", t["mean_latency_ms"].as_f64().unwrap_or(0.0)),
        ]);
    }
    out.push_str(&table::render(&["TARGET", "CALLS", "OK", "FAILURES", "SERVED", "SKIPPED", "MEAN LATENCY"], &rows));
    out
}
