//! `switchyard demo`: the seed's five examples through a real gateway on 127.0.0.1 backed by the
//! simulated upstream, reported like the seed's output section. Exit 0 only when every step
//! behaved as expected.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use http::Method;
use serde_json::json;

use super::admin_client::AdminClient;
use super::chat::stream_chat;
use super::gateway_http::{GatewayHttp, json_of};
use crate::config::Config;
use crate::server::Running;
use crate::state::{AppState, HttpProviders};

const PRIMARY: &str = "anthropic/claude-sonnet-4-5";
const SECONDARY: &str = "openai/gpt-4o";
const PROMPT: &str = "What is artificial intelligence? Answer in one sentence.";

/// The demo's config: the seed's three models on route `default` (linear backoff, 500ms), and route
/// `unstable` whose primaries fail on purpose (the simulator reads the fault from the model name).
fn demo_config(sim_url: &str, admin_key: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
admin_key = "{admin_key}"

[providers.anthropic]
kind = "anthropic"
base_url = "{sim_url}"
api_key = "{key}"
[providers.openai]
kind = "openai"
base_url = "{sim_url}/v1"
api_key = "{key}"
[providers.deepseek]
kind = "openai"
base_url = "{sim_url}/v1"
api_key = "{key}"

[routes.default]
backoff = {{ kind = "linear", base = "500ms" }}
targets = [
  {{ provider = "anthropic", model = "claude-sonnet-4-5", priority = 1, max_retries = 2 }},
  {{ provider = "openai", model = "gpt-4o", priority = 2, max_retries = 1 }},
  {{ provider = "deepseek", model = "deepseek-chat", priority = 3, max_retries = 0 }},
]

[routes.flaky]
backoff = {{ kind = "linear", base = "100ms" }}
targets = [
  {{ provider = "anthropic", model = "claude-sonnet-4-5-flaky1", priority = 1, max_retries = 2 }},
  {{ provider = "openai", model = "gpt-4o", priority = 2, max_retries = 1 }},
]

[routes.failing]
backoff = {{ kind = "linear", base = "100ms" }}
targets = [
  {{ provider = "anthropic", model = "claude-sonnet-4-5-503", priority = 1, max_retries = 1 }},
  {{ provider = "openai", model = "gpt-4o", priority = 2, max_retries = 1 }},
]
"#,
        key = switchyard_sim::DEFAULT_API_KEY
    )
}

struct Demo {
    http: GatewayHttp,
    admin: AdminClient,
    failures: Vec<String>,
}

impl Demo {
    fn say(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    }

    fn expect(&mut self, step: &str, ok: bool, what: impl std::fmt::Display) {
        if !ok {
            self.say(&format!("  !! unexpected: {what}"));
            self.failures.push(format!("{step}: {what}"));
        }
    }

    /// One non-streaming call; returns (text, target, calls).
    async fn complete(&self, model: &str) -> anyhow::Result<(String, String, u64, bool)> {
        let body = json!({ "model": model, "messages": [{ "role": "user", "content": PROMPT }] });
        let response = self.http.send(Method::POST, "/v1/chat/completions", None, Some(&body)).await?;
        let header = |n: &str| response.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let (target, calls, fallback) =
            (header("x-switchyard-target"), header("x-switchyard-attempts"), header("x-switchyard-fallback"));
        let status = response.status();
        let body = json_of(response).await?;
        anyhow::ensure!(status.is_success(), "HTTP {status}: {}", body["error"]["message"]);
        let text = body["choices"][0]["message"]["content"].as_str().unwrap_or("").to_owned();
        Ok((text, target, calls.parse().unwrap_or(0), fallback == "true"))
    }
}

/// Runs the demo; `Ok(true)` when every step behaved as expected.
pub async fn run() -> anyhow::Result<bool> {
    let upstream = switchyard_sim::Upstream::start(switchyard_sim::UpstreamConfig::default())
        .await
        .context("cannot start the simulated upstream")?;
    let admin_key = uuid::Uuid::new_v4().simple().to_string();
    let config = Config::parse(&demo_config(&upstream.url(), &admin_key), &|_| None, None)?;
    let state = Arc::new(AppState::build(&config, &HttpProviders::default())?);
    let gateway = Running::start(state, "127.0.0.1:0", Duration::from_secs(5)).await?;
    let mut demo = Demo {
        http: GatewayHttp::new(&gateway.url())?,
        admin: AdminClient::new(&gateway.url(), Some(admin_key))?,
        failures: Vec::new(),
    };
    demo.say(&format!(
        "=== Model Fallback demo ===\n(gateway {} backed by the simulated upstream {})\n",
        gateway.url(),
        upstream.url()
    ));
    run_steps(&mut demo).await;
    let ok = demo.failures.is_empty();
    if ok {
        demo.say("\nEvery step behaved as expected.");
    } else {
        demo.say(&format!("\n{} step(s) did not behave as expected:", demo.failures.len()));
        for f in &demo.failures {
            demo.say(&format!("  - {f}"));
        }
    }
    gateway.shutdown().await?;
    upstream.shutdown().await?;
    Ok(ok)
}

async fn run_steps(demo: &mut Demo) {
    // Example 1: non-streaming.
    demo.say("Example 1: non-streaming request\n---");
    match demo.complete("default").await {
        Ok((text, target, calls, _)) => {
            demo.say(&format!("[ModelFallback] Success with model {target} (retry: {})", calls.saturating_sub(1)));
            demo.say(&format!("Response: {text}"));
            demo.expect(
                "example 1",
                target == PRIMARY && calls == 1,
                format!("served by {target} after {calls} calls"),
            );
        }
        Err(e) => demo.expect("example 1", false, e.to_string()),
    }

    // Example 2: streaming.
    demo.say("\nExample 2: streaming request\n---");
    match stream_chat(demo.http.url(), None, "default", None, PROMPT, |_| {}).await {
        Ok(out) => {
            demo.say(&format!("[ModelFallback] Success with model {} (stream, retry: 0)", out.target));
            demo.say(&format!("Response: {}", out.text));
            demo.expect(
                "example 2",
                out.target == PRIMARY && out.attempts == "1" && !out.text.is_empty(),
                format!("served by {} after {} calls", out.target, out.attempts),
            );
        }
        Err(e) => demo.expect("example 2", false, e.to_string()),
    }

    // Example 3: statistics.
    demo.say("\nExample 3: statistics\n---");
    match demo.admin.stats().await {
        Ok(s) => {
            let route = &s["routes"]["default"];
            demo.say(&format!(
                "Route `default`:\nTotal requests: {}\nSuccessful requests: {}\nFailed requests: {}\nFallbacks: {}\n\nModel usage:",
                route["total"], route["success"], route["failed"], route["fallbacks"]
            ));
            for (id, t) in route["targets"].as_object().into_iter().flatten() {
                if t["usage"].as_u64().unwrap_or(0) > 0 {
                    demo.say(&format!("  {id}: {} times", t["usage"]));
                }
            }
            let ok = route["total"] == 2 && route["success"] == 2 && route["fallbacks"] == 0;
            demo.expect("example 3", ok, format!("stats were {route}"));
        }
        Err(e) => demo.expect("example 3", false, e.to_string()),
    }

    // Example 4: runtime model management.
    demo.say("\nExample 4: managing models at runtime\n---");
    list_models(demo).await;
    demo.say(&format!("\nDisabling the primary model ({PRIMARY})..."));
    if let Err(e) = demo.admin.patch("default", PRIMARY, &json!({ "enabled": false })).await {
        demo.expect("example 4", false, e.to_string());
    }
    match demo.complete("default").await {
        Ok((text, target, calls, _)) => {
            demo.say(&format!("[ModelFallback] Success with model {target} (retry: {})", calls.saturating_sub(1)));
            demo.say(&format!("Response from the backup model: {text}"));
            demo.expect(
                "example 4",
                target == SECONDARY && calls == 1,
                format!("with the primary disabled, served by {target} after {calls} calls"),
            );
        }
        Err(e) => demo.expect("example 4", false, e.to_string()),
    }
    demo.say("\nRe-enabling the primary model...");
    match demo.admin.patch("default", PRIMARY, &json!({ "enabled": true })).await {
        Ok(t) => demo.expect("example 4", t["enabled"] == true, format!("after re-enabling: {t}")),
        Err(e) => demo.expect("example 4", false, e.to_string()),
    }

    // Example 5: automatic retry and fallback.
    demo.say("\nExample 5: automatic retry and fallback\n---");
    demo.say("When the primary model fails, the gateway automatically:");
    demo.say("1. retries the primary (up to its max_retries)");
    demo.say("2. if every retry fails, falls back to the next model");
    demo.say("3. repeats until one answers or all have failed\n");
    match demo.complete("flaky").await {
        Ok((_, target, calls, fallback)) => {
            demo.say(&format!(
                "Route `flaky` (primary fails once): answered by {target} after {calls} calls (retry: {}), fallback: {fallback}",
                calls.saturating_sub(1)
            ));
            demo.expect(
                "example 5 (retry)",
                target == "anthropic/claude-sonnet-4-5-flaky1" && calls == 2 && !fallback,
                format!("served by {target} after {calls} calls, fallback {fallback}"),
            );
        }
        Err(e) => demo.expect("example 5 (retry)", false, e.to_string()),
    }
    match demo.complete("failing").await {
        Ok((_, target, calls, fallback)) => {
            demo.say(&format!(
                "Route `failing` (primary answers 503): answered by {target} after {calls} calls, fallback: {fallback}"
            ));
            demo.expect(
                "example 5 (fallback)",
                target == SECONDARY && calls == 3 && fallback,
                format!("served by {target} after {calls} calls, fallback {fallback}"),
            );
        }
        Err(e) => demo.expect("example 5 (fallback)", false, e.to_string()),
    }

    // Final statistics of the seed's route.
    demo.say("\n=== Final statistics ===");
    match demo.admin.stats().await {
        Ok(s) => {
            let r = &s["routes"]["default"];
            let total = r["total"].as_u64().unwrap_or(0);
            let success = r["success"].as_u64().unwrap_or(0);
            let rate = if total == 0 { 0.0 } else { success as f64 * 100.0 / total as f64 };
            demo.say(&format!(
                "Route `default`: {total} requests, success rate {rate:.2}%, {} with a fallback",
                r["fallbacks"]
            ));
            demo.say(&format!(
                "Whole gateway (routes default, flaky and failing): {} requests, {} succeeded, {} with a fallback",
                s["total"], s["success"], s["fallbacks"]
            ));
            demo.expect(
                "final statistics",
                total == 3 && success == 3 && r["fallbacks"] == 0 && s["total"] == 5 && s["fallbacks"] == 1,
                format!("stats were {s}"),
            );
        }
        Err(e) => demo.expect("final statistics", false, e.to_string()),
    }
}

async fn list_models(demo: &mut Demo) {
    match demo.admin.routes().await {
        Ok(routes) => {
            demo.say("Current models:");
            let default = routes["routes"].as_array().into_iter().flatten().find(|r| r["name"] == "default");
            for t in default.and_then(|r| r["targets"].as_array()).into_iter().flatten() {
                demo.say(&format!(
                    "  [{}] {} - priority: {}, retries: {}{}",
                    if t["enabled"] == true { "enabled" } else { "disabled" },
                    t["id"].as_str().unwrap_or(""),
                    t["priority"],
                    t["max_retries"],
                    if t["is_current"] == true { " (current)" } else { "" }
                ));
            }
        }
        Err(e) => demo.expect("example 4", false, e.to_string()),
    }
}
