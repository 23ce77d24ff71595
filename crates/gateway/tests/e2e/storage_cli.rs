//! `switchyard logs`, `logs show`, `logs --follow`, `usage` and `models reset` against a live gateway.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;

const ROUTES: &str = r#"
[routes.fb]
targets = [{ provider = "an", model = "claude-500" }, { provider = "oa", model = "gpt-ok" }]
[routes.ok]
targets = [{ provider = "oa", model = "gpt-ok" }]
"#;

async fn switchyard(h: &Harness, args: &[&str]) -> (bool, String) {
    let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    all.extend(["--url".to_owned(), h.gateway.url(), "--admin-key".to_owned(), ADMIN_KEY.to_owned()]);
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_switchyard")).args(&all).env("NO_COLOR", "1").output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success(), format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
}

async fn chat_with_id(h: &Harness, id: &str, route: &str) {
    let body = json!({ "model": route, "messages": [{ "role": "user", "content": "hi" }] });
    let r = h.http.post(h.url("/v1/chat/completions")).bearer_auth(CLIENT_KEY).header("x-request-id", id).json(&body);
    assert_eq!(r.send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn logs_show_and_usage_print_the_request_log() {
    let h = start_logged(ROUTES, &storage_config(temp_folder("cli-logs").join("s.db"), 100)).await;
    chat_with_id(&h, "cli-1", "fb").await;
    chat_with_id(&h, "cli-2", "ok").await;
    let storage = h.gateway.state.log.storage().unwrap().clone();
    tokio::task::spawn_blocking(move || storage.flush()).await.unwrap();

    let (ok, out) = switchyard(&h, &["logs", "--json"]).await;
    assert!(ok, "{out}");
    let ids: Vec<String> =
        out.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, ["cli-1", "cli-2"], "oldest first: {out}");
    let (ok, out) = switchyard(&h, &["logs", "--route", "fb", "--since", "1h"]).await;
    assert!(ok && out.contains("cli-1") && !out.contains("cli-2"), "{out}");
    assert!(out.contains("oa/gpt-ok (fallback)"), "{out}");

    let (ok, out) = switchyard(&h, &["logs", "show", "cli-1"]).await;
    assert!(ok, "{out}");
    assert!(out.contains("an/claude-500") && out.contains("failed server"), "{out}");
    assert!(out.contains("oa/gpt-ok") && out.contains('#'), "the timeline draws each call: {out}");
    let (ok, out) = switchyard(&h, &["logs", "show", "nope"]).await;
    assert!(!ok && out.contains("404"), "{out}");

    let (ok, out) = switchyard(&h, &["usage", "--by", "route", "--since", "1h", "--json"]).await;
    assert!(ok, "{out}");
    let total: u64 = out.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["requests"].as_u64().unwrap()).sum();
    assert_eq!(total, 2, "{out}");
    let (ok, out) = switchyard(&h, &["usage", "--by", "route"]).await;
    assert!(ok && out.contains("REQUESTS") && out.contains("fb"), "{out}");
}

#[tokio::test]
async fn logs_follow_prints_requests_as_they_finish() {
    let h = start_logged(ROUTES, &storage_config(temp_folder("cli-follow").join("s.db"), 100)).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["logs", "--follow", "--json", "--route", "ok", "--url", &h.gateway.url(), "--admin-key", ADMIN_KEY])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The follower subscribes before it prints its first page (empty here); then requests finish.
    for i in 0..50 {
        chat_with_id(&h, &format!("follow-{i}"), "ok").await;
        chat_with_id(&h, &format!("other-{i}"), "fb").await;
        if let Ok(line) = rx.try_recv() {
            let row: Value = serde_json::from_str(&line).unwrap();
            assert!(row["id"].as_str().unwrap().starts_with("follow-"), "{line}");
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("logs --follow printed nothing");
}

#[tokio::test]
async fn models_reset_clears_the_override_everywhere() {
    let h = start_logged(ROUTES, &storage_config(temp_folder("cli-reset").join("s.db"), 100)).await;
    let (ok, out) = switchyard(&h, &["models", "disable", "oa/gpt-ok"]).await;
    assert!(ok, "{out}");
    assert_eq!(h.chat("ok", "hi").await.status, 503);
    let (ok, out) = switchyard(&h, &["models", "reset", "oa/gpt-ok", "--route", "ok"]).await;
    assert!(ok && out.contains("route ok: oa/gpt-ok is back to its config (enabled"), "{out}");
    assert_eq!(h.chat("ok", "hi").await.status, 200);
    assert_eq!(h.chat("oa/gpt-ok", "hi").await.status, 503, "only route ok was reset");
    let (ok, out) = switchyard(&h, &["models", "reset", "oa/gpt-ok"]).await;
    assert!(ok && out.contains("route fb") && out.contains("direct requests"), "{out}");
    assert_eq!(h.chat("oa/gpt-ok", "hi").await.status, 200);
    assert_eq!(h.chat("fb", "hi").await.status, 200);
}
