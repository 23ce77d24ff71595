//! `/metrics` is valid Prometheus text, checked whole by a real parser (Python's `prometheus_client`,
//! which `.ci/run` installs).

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::common::*;

/// Feeds `text` to `check_metrics.py`; panics with the parser's complaint (or how to install it).
fn assert_valid_prometheus(text: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/check_metrics.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed to validate /metrics (.ci/run installs prometheus-client)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'prometheus_client'"),
        "the Prometheus parser is missing: pip install prometheus-client==0.21.1 (.ci/run does)"
    );
    assert!(
        out.status.success(),
        "/metrics is not valid Prometheus text:\n{}{stderr}\n--- exposition ---\n{text}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn metrics_after_a_mixed_run_parse_as_prometheus_text() {
    let h = start(
        r#"
[routes.main]
targets = [{ provider = "oa", model = "gpt-500", max_retries = 0 }, { provider = "an", model = "claude-ok" }]
[routes.hedged]
hedge = { after = "50ms" }
targets = [{ provider = "oa", model = "gpt-slow2000" }, { provider = "an", model = "claude-ok" }]
"#,
    )
    .await;
    for model in ["main", "hedged"] {
        assert_eq!(h.chat(model, "hi").await.status, 200);
        let body = json!({ "model": model, "stream": true, "messages": [{ "role": "user", "content": "hi" }] });
        assert_eq!(h.stream("/v1/chat/completions", &body).await.status, 200);
    }
    assert_eq!(h.chat("no-such-route", "hi").await.status, 404);
    let text = h.metrics().await;
    // The run touched every kind of family: counters with samples, histograms, gauges.
    for family in [
        "switchyard_served_total",
        "switchyard_tokens_total",
        "switchyard_hedges_total",
        "switchyard_config_reloads_total",
    ] {
        assert!(text.contains(&format!("\n{family}{{")), "{family} has samples:\n{text}");
    }
    assert_valid_prometheus(&text);
}

#[test]
fn the_checker_rejects_interleaved_families() {
    // The checker itself must be able to fail: two families whose samples interleave.
    let bad = "# HELP a_total A\n# TYPE a_total counter\n# HELP b_total B\n# TYPE b_total counter\n\
               a_total{x=\"1\"} 1\nb_total{x=\"1\"} 2\n";
    let result = std::panic::catch_unwind(|| assert_valid_prometheus(bad));
    assert!(result.is_err(), "interleaved families must be refused");
}
