//! The request log of a real `switchyard serve` process: SIGTERM writes every queued row before exit.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use switchyard_sim::{Upstream, UpstreamConfig};

use crate::common::{ADMIN_KEY, CLIENT_KEY, spawn_serve, temp_folder};

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
    let (child, addr, log) = spawn_serve(&config, &[]).await;
    let url = format!("http://{addr}/v1/chat/completions");
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
    stop(child, &log).await;
    let db = rusqlite::Connection::open(folder.join("log.db")).unwrap();
    let rows: i64 = db.query_row("SELECT count(*) FROM requests", [], |r| r.get(0)).unwrap();
    let minutes: i64 = db.query_row("SELECT sum(requests) FROM usage_minute", [], |r| r.get(0)).unwrap();
    assert_eq!((rows, minutes), (5_000, 5_000));
    drop(db);
    let _ = std::fs::remove_dir_all(&folder);
}

/// Sends SIGTERM and waits for a clean exit.
async fn stop(child: std::process::Child, log: &Arc<Mutex<String>>) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let mut child = child;
    let exited = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(exited.success(), "{}", log.lock().unwrap());
}

#[tokio::test]
async fn admin_overrides_survive_a_restart_with_storage_on_until_cleared() {
    let folder = temp_folder("overrides");
    let config = folder.join("switchyard.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_key = \"{ADMIN_KEY}\"\n\
             [providers.oa]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\napi_key = \"k\"\n\
             [routes.r]\ntargets = [{{ provider = \"oa\", model = \"a\" }}, {{ provider = \"oa\", model = \"b\" }}]\n"
        ),
    )
    .unwrap();
    let http = reqwest::Client::new();
    let target = |routes: &Value, id: &str| -> Value {
        routes["routes"][0]["targets"].as_array().unwrap().iter().find(|t| t["id"] == id).unwrap().clone()
    };
    let (child, addr, log) = spawn_serve(&config, &[]).await;
    let admin = |method: reqwest::Method, path: &str| {
        http.request(method, format!("http://{addr}{path}")).bearer_auth(ADMIN_KEY)
    };
    let r = admin(reqwest::Method::PATCH, "/admin/routes/r/targets/oa%2Fa")
        .json(&json!({ "enabled": false, "priority": 7 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let routes: Value = admin(reqwest::Method::GET, "/admin/routes").send().await.unwrap().json().await.unwrap();
    let a = target(&routes, "oa/a");
    assert_eq!(
        (a["enabled"].clone(), a["override"]["enabled"].clone(), a["override"]["priority"].clone()),
        (json!(false), json!(false), json!(7))
    );
    assert!(a["override"]["by"].is_string() && a["override"]["at"].is_string(), "{a}");
    assert!(a.get("breaker_since").is_some(), "{a}");
    assert_eq!(target(&routes, "oa/b")["override"], Value::Null);
    stop(child, &log).await;

    let (child, addr, log) = spawn_serve(&config, &[]).await;
    let admin = |method: reqwest::Method, path: &str| {
        http.request(method, format!("http://{addr}{path}")).bearer_auth(ADMIN_KEY)
    };
    let routes: Value = admin(reqwest::Method::GET, "/admin/routes").send().await.unwrap().json().await.unwrap();
    let a = target(&routes, "oa/a");
    assert_eq!(
        (a["enabled"].clone(), a["priority"].clone(), a["override"]["enabled"].clone()),
        (json!(false), json!(7), json!(false)),
        "{a}"
    );
    let r = admin(reqwest::Method::DELETE, "/admin/routes/r/targets/oa%2Fa/override").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let routes: Value = admin(reqwest::Method::GET, "/admin/routes").send().await.unwrap().json().await.unwrap();
    let a = target(&routes, "oa/a");
    assert_eq!((a["enabled"].clone(), a["override"].clone()), (json!(true), Value::Null), "{a}");
    assert_ne!(a["priority"], 7, "back to its config priority: {a}");
    stop(child, &log).await;

    let (child, addr, log) = spawn_serve(&config, &[]).await;
    let routes: Value = http
        .get(format!("http://{addr}/admin/routes"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(target(&routes, "oa/a")["override"], Value::Null, "a cleared override stays cleared");
    assert_eq!(target(&routes, "oa/a")["enabled"], true);
    stop(child, &log).await;
}

#[tokio::test]
async fn a_database_that_cannot_be_opened_is_logged_once_and_requests_are_served() {
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    let folder = temp_folder("log-once");
    std::fs::write(folder.join("plain-file"), b"x").unwrap();
    let config = folder.join("switchyard.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = \"plain-file/log.db\"\n\
             [providers.oa]\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"sim-key\"\n\
             [routes.r]\ntargets = [{{ provider = \"oa\", model = \"gpt-ok\" }}]\n",
            upstream.openai_base_url()
        ),
    )
    .unwrap();
    let (child, addr, log) = spawn_serve(&config, &[]).await;
    let http = reqwest::Client::new();
    let body = json!({ "model": "r", "messages": [{ "role": "user", "content": "hi" }] });
    for _ in 0..5 {
        let r = http.post(format!("http://{addr}/v1/chat/completions")).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = http.get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap();
        if metrics.contains("switchyard_log_dropped_total 5") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(metrics.contains("switchyard_log_dropped_total 5"), "{metrics}");
    stop(child, &log).await;
    let log = log.lock().unwrap().clone();
    assert_eq!(log.matches("storage: cannot").count(), 1, "{log}");
    assert!(log.contains("storage.path"), "the line says what to fix: {log}");
}
