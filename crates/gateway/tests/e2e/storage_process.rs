//! The request log of a real `switchyard serve` process: SIGTERM writes every queued row before exit.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use switchyard_sim::{Upstream, UpstreamConfig};

use crate::common::{CLIENT_KEY, temp_folder};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_requests_then_sigterm_leave_exactly_five_thousand_rows() {
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    let folder = temp_folder("sigterm");
    let config = folder.join("switchyard.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\napi_keys = [\"{CLIENT_KEY}\"]\n[storage]\npath = \"log.db\"\n\
             [providers.oa]\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"sim-key\"\n\
             [routes.r]\ntargets = [{{ provider = \"oa\", model = \"gpt-ok\" }}]\n",
            upstream.openai_base_url()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let mut addr = None;
    for _ in 0..500 {
        addr = log.lock().unwrap().lines().find_map(|l| {
            l.split("listening on http://").nth(1).and_then(|a| a.split_whitespace().next()).map(str::to_owned)
        });
        if addr.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let url = format!("http://{}/v1/chat/completions", addr.expect("the gateway listens"));
    let http = reqwest::Client::new();
    let body = json!({ "model": "r", "messages": [{ "role": "user", "content": "hi" }] });
    let ok = futures::stream::iter(0..5_000)
        .map(|_| {
            let request = http.post(&url).bearer_auth(CLIENT_KEY).json(&body).send();
            async move { request.await.map(|r| r.status().as_u16()).unwrap_or(0) }
        })
        .buffer_unordered(32)
        .filter(|status| std::future::ready(*status == 200))
        .count()
        .await;
    assert_eq!(ok, 5_000);
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exited = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(exited.success(), "{}", log.lock().unwrap());
    let db = rusqlite::Connection::open(folder.join("log.db")).unwrap();
    let rows: i64 = db.query_row("SELECT count(*) FROM requests", [], |r| r.get(0)).unwrap();
    let minutes: i64 = db.query_row("SELECT sum(requests) FROM usage_minute", [], |r| r.get(0)).unwrap();
    assert_eq!((rows, minutes), (5_000, 5_000));
}
