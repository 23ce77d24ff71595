//! The request log (SPEC-2 section 10): one row per request, through the admin API and the database file.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use switchyard_gateway::storage::{Outcome, Row, Storage};

use crate::common::*;

const ROUTES: &str = r#"
[routes.ok]
targets = [{ provider = "oa", model = "gpt-ok" }]
[routes.fb]
targets = [{ provider = "an", model = "claude-500" }, { provider = "oa", model = "gpt-ok" }]
[routes.dead]
targets = [{ provider = "an", model = "claude-500" }, { provider = "oa", model = "gpt-503" }]
[routes.rl]
targets = [{ provider = "oa", model = "gpt-429" }]
[routes.bad]
targets = [{ provider = "oa", model = "gpt-400" }, { provider = "an", model = "claude-ok" }]
[routes.hang]
targets = [{ provider = "oa", model = "gpt-hang" }]
[routes.stall]
targets = [{ provider = "oa", model = "gpt-stall2" }]
"#;

fn storage(h: &Harness) -> Arc<Storage> {
    h.gateway.state.log.storage().unwrap().clone()
}

/// Waits until every row queued so far is written.
async fn flush(h: &Harness) {
    let s = storage(h);
    tokio::task::spawn_blocking(move || s.flush()).await.unwrap();
}

/// The row of request `id`, waiting (bounded) for it to be recorded.
async fn row(h: &Harness, id: &str) -> Value {
    for _ in 0..200 {
        flush(h).await;
        let r = h.admin_get(&format!("/admin/requests/{id}")).await;
        if r.status == 200 {
            return r.body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no row for {id}");
}

fn body(route: &str, stream: bool) -> Value {
    json!({ "model": route, "stream": stream, "messages": [{ "role": "user", "content": "hello there" }] })
}

/// Sends a chat request with this request id; returns the status.
async fn send(h: &Harness, id: &str, route: &str, stream: bool) -> u16 {
    let response = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_KEY)
        .header("x-request-id", id)
        .json(&body(route, stream))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let _ = response.bytes().await;
    status
}

fn logged(name: &str, queue: usize) -> switchyard_gateway::storage::StorageConfig {
    storage_config(temp_folder(name).join("switchyard.db"), queue)
}

/// A row is timed at its request's arrival, not at its end: arrival plus latency is no later than the answer.
#[tokio::test]
async fn a_row_is_timed_at_its_requests_arrival_not_at_its_end() {
    let config = logged("arrival", 100);
    let h = start_logged("[routes.slow]\ntargets = [{ provider = \"oa\", model = \"gpt-slow400\" }]\n", &config).await;
    let sent = SystemTime::now();
    assert_eq!(send(&h, "slow-1", "slow", false).await, 200);
    let answered = SystemTime::now();
    let r = row(&h, "slow-1").await;
    let time = humantime::parse_rfc3339(r["time"].as_str().unwrap()).unwrap();
    let latency = Duration::from_millis(r["latency_ms"].as_u64().unwrap());
    assert!(latency >= Duration::from_millis(400), "{r}");
    // The stored time and latency are whole milliseconds, cut down: a millisecond of slack each way.
    assert!(time + Duration::from_millis(1) >= sent, "arrived {time:?} before it was sent ({sent:?}): {r}");
    assert!(
        time + latency <= answered + Duration::from_millis(1),
        "arrival {time:?} + {latency:?} after {answered:?}: {r}"
    );
}

#[tokio::test]
async fn every_ending_gets_a_row_with_its_fields_streamed_or_not_and_the_file_holds_no_key() {
    let config = logged("rows", 1000);
    let h = start_logged(ROUTES, &config).await;
    for stream in [false, true] {
        for route in ["ok", "fb", "dead", "rl", "bad"] {
            let id = format!("t-{route}-{stream}");
            let status = send(&h, &id, route, stream).await;
            let r = row(&h, &id).await;
            assert_eq!(r["id"], id.as_str());
            assert_eq!(r["route"], route, "{r}");
            assert_eq!(r["api"], "openai");
            assert_eq!(r["stream"], stream, "{r}");
            assert_eq!(r["key"], Value::Null);
            assert_eq!(r["status"], status, "{r}");
            assert!(r["time"].as_str().unwrap().ends_with('Z'), "{r}");
            assert!(r["attempts"].as_array().is_some_and(|a| !a.is_empty()), "{r}");
            match route {
                "ok" | "fb" => {
                    assert_eq!(status, 200);
                    assert_eq!(r["outcome"], "success", "{r}");
                    assert_eq!(r["served_by"], "oa/gpt-ok", "{r}");
                    assert_eq!(r["fallback"], route == "fb", "{r}");
                    assert!(r["output_tokens"].as_u64().unwrap() > 0, "{r}");
                    assert_eq!(r["error"], Value::Null);
                    assert_eq!(r["first_chunk_ms"].is_u64(), stream, "{r}");
                    if route == "fb" {
                        assert_eq!(r["attempts"][0]["target"], "an/claude-500", "{r}");
                        assert_eq!(r["attempts"][0]["outcome"], "failed", "{r}");
                    }
                }
                _ => {
                    let expected = match route {
                        "rl" => 429,
                        "bad" => 400,
                        _ => 502,
                    };
                    assert_eq!(status, expected, "{route}");
                    assert_eq!(r["outcome"], "failed", "{r}");
                    assert_eq!(r["served_by"], Value::Null, "{r}");
                    assert_eq!(r["fallback"], false, "{r}");
                    assert!(r["error"]["kind"].is_string() && r["error"]["message"].is_string(), "{r}");
                }
            }
        }
    }
    flush(&h).await;
    let mut bytes = Vec::new();
    for suffix in ["", "-wal"] {
        let mut path = config.path.clone().into_os_string();
        path.push(suffix);
        bytes.extend(std::fs::read(&path).unwrap_or_default());
    }
    assert!(bytes.len() > 1000);
    for key in ["sim-key", CLIENT_KEY, ADMIN_KEY] {
        assert!(!bytes.windows(key.len()).any(|w| w == key.as_bytes()), "{key} found in the database");
    }
}

#[tokio::test]
async fn a_finished_request_is_in_the_log_at_once_without_waiting_for_the_writers_next_batch() {
    let config = logged("at-once", 1000);
    let h = start_logged(ROUTES, &config).await;
    // A first request and a pause: the writer has taken its rows and is idle (it takes rows once a second
    // then), so only the read itself can bring the next row in.
    assert_eq!(send(&h, "at-once-0", "ok", false).await, 200);
    let _ = row(&h, "at-once-0").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 1..=3 {
        let id = format!("at-once-{i}");
        assert_eq!(send(&h, &id, "ok", false).await, 200);
        // One read each, no flush and no retry.
        let one = h.admin_get(&format!("/admin/requests/{id}")).await;
        assert_eq!(one.status, 200, "{}", one.body);
        let page = h.admin_get("/admin/requests?route=ok&limit=1").await;
        assert_eq!(page.body["requests"][0]["id"], id.as_str(), "{}", page.body);
        let usage = h.admin_get("/admin/usage?by=route&since=1h").await;
        let buckets = usage.body["buckets"].as_array().unwrap();
        assert_eq!(buckets.iter().map(|b| b["requests"].as_u64().unwrap()).sum::<u64>(), i + 1, "{}", usage.body);
    }
}

#[tokio::test]
async fn a_row_names_the_api_of_the_endpoint_called() {
    let config = logged("api", 1000);
    let h = start_logged(ROUTES, &config).await;
    let calls = [
        ("/v1/chat/completions", json!({ "model": "ok", "messages": [{ "role": "user", "content": "hi" }] }), "openai"),
        (
            "/v1/messages",
            json!({ "model": "ok", "max_tokens": 50, "messages": [{ "role": "user", "content": "hi" }] }),
            "anthropic",
        ),
        ("/v1/responses", json!({ "model": "ok", "input": "hi" }), "responses"),
    ];
    for (path, mut body, api) in calls {
        for stream in [false, true] {
            body["stream"] = json!(stream);
            let reply = h.post(path, &body).await;
            assert_eq!(reply.status, 200, "{path} stream {stream}: {:?}", reply.body);
            let r = row(&h, reply.header("x-request-id")).await;
            assert_eq!((r["api"].as_str(), r["stream"].as_bool()), (Some(api), Some(stream)), "{path}: {r}");
            assert_eq!(r["served_by"], "oa/gpt-ok", "{path}: {r}");
            assert_eq!(r["attempts"][0]["target"], "oa/gpt-ok", "{path}: {r}");
        }
    }
}

#[tokio::test]
async fn a_client_that_leaves_gets_a_cancelled_row() {
    let h = start_logged(ROUTES, &logged("cancel", 1000)).await;
    let quick = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().unwrap();
    for (id, route, stream) in [("c-whole", "hang", false), ("c-stream", "hang", true), ("c-committed", "stall", true)]
    {
        let sent = quick
            .post(h.url("/v1/chat/completions"))
            .bearer_auth(CLIENT_KEY)
            .header("x-request-id", id)
            .json(&body(route, stream))
            .send()
            .await;
        if let Ok(response) = sent {
            assert_eq!(response.status(), 200, "{id}");
            assert!(response.bytes().await.is_err(), "{id}: the stall never finishes");
        }
        let r = row(&h, id).await;
        assert_eq!(r["outcome"], "cancelled", "{r}");
        if id == "c-committed" {
            assert_eq!(r["status"], 200, "a committed stream sent its 200: {r}");
            assert_eq!(r["served_by"], "oa/gpt-stall2", "{r}");
            assert!(r["first_chunk_ms"].is_u64(), "{r}");
        } else {
            assert_eq!(r["status"], Value::Null, "nothing was sent: {r}");
        }
    }
}

#[tokio::test]
async fn a_full_queue_drops_rows_counts_them_and_requests_still_succeed() {
    let config = logged("full", 1);
    let h = start_logged(ROUTES, &config).await;
    flush(&h).await;
    // A held write lock stalls the writer (up to its 1 s busy timeout): the one-row queue fills at once.
    let lock = rusqlite::Connection::open(&config.path).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    // One row gets the writer into its transaction, where it waits on the lock; then the queue fills.
    assert_eq!(send(&h, "q-first", "ok", false).await, 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let started = std::time::Instant::now();
    for i in 0..20 {
        assert_eq!(send(&h, &format!("q-{i}"), "ok", false).await, 200);
    }
    let took = started.elapsed();
    lock.execute_batch("COMMIT").unwrap();
    drop(lock);
    flush(&h).await;
    let dropped = storage(&h).dropped();
    let page = h.admin_get("/admin/requests?limit=100").await;
    let rows = page.body["requests"].as_array().unwrap().len() as u64;
    assert_eq!(rows + dropped, 21, "every request is either a row or a counted drop; {took:?}");
    assert!(dropped >= 15, "dropped {dropped}");
    assert!(h.metrics().await.contains(&format!("switchyard_log_dropped_total {dropped}")));
}

#[tokio::test]
async fn a_database_that_cannot_be_opened_drops_and_counts_while_requests_succeed() {
    let folder = temp_folder("unwritable");
    // A path under a plain file, and a file that is not a database: neither can be opened (even as root).
    std::fs::write(folder.join("file"), b"x").unwrap();
    std::fs::write(folder.join("garbage.db"), vec![7u8; 8192]).unwrap();
    for path in [folder.join("file").join("switchyard.db"), folder.join("garbage.db")] {
        let h = start_logged(ROUTES, &storage_config(path.clone(), 100)).await;
        for i in 0..5 {
            assert_eq!(send(&h, &format!("d-{i}"), "ok", i % 2 == 0).await, 200, "{}", path.display());
        }
        for _ in 0..100 {
            flush(&h).await;
            if storage(&h).dropped() == 5 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(storage(&h).dropped(), 5, "{}", path.display());
        assert!(h.metrics().await.contains("switchyard_log_dropped_total 5"));
        assert_eq!(h.admin_get("/admin/requests").await.status, 503);
    }
}

#[tokio::test]
async fn filters_and_pages_return_every_matching_row_once() {
    let h = start_logged(ROUTES, &logged("filters", 1000)).await;
    let mut expected = Vec::new();
    for i in 0..12 {
        let route = ["ok", "fb", "dead"][i % 3];
        let id = format!("f-{i}");
        send(&h, &id, route, i % 2 == 1).await;
        expected.push((id, route));
    }
    row(&h, "f-11").await;
    let all = pages(&h, "limit=5").await;
    assert_eq!(all.len(), 12);
    let ids: Vec<&str> = all.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let newest_first: Vec<String> = expected.iter().rev().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids, newest_first);
    assert_eq!(pages(&h, "route=fb&limit=2").await.len(), 4);
    assert_eq!(pages(&h, "outcome=failed").await.len(), 4);
    assert_eq!(pages(&h, "outcome=success&limit=1").await.len(), 8);
    // An attempted target matches too: claude-500 served nothing, yet was tried in fb and dead.
    assert_eq!(pages(&h, "target=an%2Fclaude-500&limit=3").await.len(), 8);
    assert_eq!(pages(&h, "target=oa%2Fgpt-ok").await.len(), 8);
    assert_eq!(pages(&h, "since=1h").await.len(), 12);
    assert_eq!(pages(&h, "until=1h").await.len(), 0);
    assert_eq!(pages(&h, "key=team-a").await.len(), 0);
    assert_eq!(h.admin_get("/admin/requests?limit=0").await.status, 400);
    assert_eq!(h.admin_get("/admin/requests?limit=1001").await.status, 400);
    assert_eq!(h.admin_get("/admin/requests/nope").await.status, 404);
    for path in ["/admin/requests", "/admin/requests/f-1", "/admin/usage", "/admin/events"] {
        let anonymous = h.http.get(h.url(path)).bearer_auth(CLIENT_KEY).send().await.unwrap();
        assert_eq!(anonymous.status(), 401, "{path} needs the admin key");
    }
    // Usage sums equal the rows.
    let fallbacks = all.iter().filter(|r| r["fallback"] == true).count() as u64;
    assert!(fallbacks >= 1);
    for by in ["route", "target", "key"] {
        let u = h.admin_get(&format!("/admin/usage?by={by}&bucket=1m&since=1h")).await;
        let buckets = u.body["buckets"].as_array().unwrap();
        let sum = |k: &str| buckets.iter().map(|b| b[k].as_u64().unwrap()).sum::<u64>();
        assert_eq!((sum("requests"), sum("success"), sum("failed"), sum("fallbacks")), (12, 8, 4, fallbacks), "{by}");
    }
    let u = h.admin_get("/admin/usage?by=target&bucket=1d").await;
    let nothing = u.body["buckets"].as_array().unwrap().iter().find(|b| b["group"].is_null()).unwrap().clone();
    assert_eq!(nothing["failed"], 4, "requests nothing served group under null: {nothing}");
}

/// Every row the filter matches, following `next` page by page.
async fn pages(h: &Harness, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut before = String::new();
    loop {
        let r = h.admin_get(&format!("/admin/requests?{query}{before}")).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        out.extend(r.body["requests"].as_array().unwrap().iter().cloned());
        match r.body["next"].as_str() {
            Some(next) => before = format!("&before={next}"),
            None => return out,
        }
    }
}

/// A generated row at `time`.
fn generated(i: usize, time: SystemTime) -> Row {
    let route = ["chat", "code", "bulk"][i % 3];
    let served = ["oa/gpt-4o", "an/claude", "oa/gpt-mini"][i % 3];
    serde_json::from_value(json!({
        "id": format!("g-{i}"), "time": humantime::format_rfc3339_millis(time).to_string(), "route": route,
        "api": "openai", "stream": i.is_multiple_of(2), "key": null, "status": 200, "outcome": "success",
        "served_by": served, "fallback": i.is_multiple_of(10),
        "attempts": [{ "target": served, "retry": 0, "outcome": "success", "latency_ms": 100 + i % 900 }],
        "input_tokens": 10, "output_tokens": 20, "latency_ms": 100 + i % 900, "first_chunk_ms": null, "error": null
    }))
    .unwrap()
}

#[tokio::test]
async fn rows_sharing_a_millisecond_page_without_skips_or_repeats() {
    let config = logged("same-ms", 1000);
    let now = SystemTime::now();
    let rows: Vec<Row> = (0..25).map(|i| generated(i, now)).collect();
    switchyard_gateway::storage::write_rows(&config.path, &rows).unwrap();
    let h = start_logged(ROUTES, &config).await;
    let all = pages(&h, "limit=4").await;
    let mut ids: Vec<&str> = all.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 25);
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 25);
}

#[tokio::test]
async fn rows_of_one_millisecond_from_two_writers_are_each_listed_once() {
    // Two writers of one file (as across a restart with the clock set back) write rows of one millisecond:
    // every row keeps its own place in the newest-first order.
    let config = logged("taken", 1000);
    let now = SystemTime::now();
    let first: Vec<Row> = (0..40).map(|i| generated(i, now)).collect();
    let second: Vec<Row> = (40..80).map(|i| generated(i, now)).collect();
    switchyard_gateway::storage::write_rows(&config.path, &first).unwrap();
    switchyard_gateway::storage::write_rows(&config.path, &second).unwrap();
    let h = start_logged(ROUTES, &config).await;
    let all = pages(&h, "limit=7").await;
    let mut ids: Vec<&str> = all.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 80, "every row written and listed once");
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 80);
    let time = humantime::format_rfc3339_millis(now).to_string();
    assert!(all.iter().all(|r| r["time"] == time.as_str()), "rows keep their arrival time");
}

#[tokio::test]
async fn a_log_of_the_first_layout_is_moved_to_the_current_one_keeping_rows_and_order() {
    let mut config = logged("first-layout", 1000);
    config.retention = Duration::from_secs(20 * 365 * 86_400); // The rows below are from 2023.
    {
        // The layout of the first release: a `time` column with its own index, `seq` in insertion order.
        let db = rusqlite::Connection::open(&config.path).unwrap();
        db.execute_batch(
            "CREATE TABLE requests (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, time INTEGER NOT NULL, \
             route TEXT NOT NULL, api INTEGER NOT NULL, stream INTEGER NOT NULL, key TEXT, status INTEGER, \
             outcome INTEGER NOT NULL, served_by TEXT, fallback INTEGER NOT NULL, attempts TEXT NOT NULL, \
             input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, latency_ms INTEGER NOT NULL, \
             first_chunk_ms INTEGER, error_kind TEXT, error_message TEXT, request TEXT, response TEXT); \
             CREATE INDEX requests_time ON requests(time); CREATE INDEX requests_id ON requests(id);",
        )
        .unwrap();
        // Three rows share a millisecond (inserted out of id order), one is older, one newer.
        for (id, time) in [("b", 2_000), ("a", 2_000), ("c", 2_000), ("old", 1_000), ("new", 3_000)] {
            db.execute(
                "INSERT INTO requests (id, time, route, api, stream, status, outcome, served_by, fallback, \
                 attempts, input_tokens, output_tokens, latency_ms, request) \
                 VALUES (?1, ?2 + 1700000000000, 'ok', 0, 0, 200, 0, 'oa/gpt-ok', 0, \
                 '[{\"target\":\"oa/gpt-ok\",\"outcome\":\"success\"}]', 3, 4, 5, 'body')",
                rusqlite::params![id, time],
            )
            .unwrap();
        }
    }
    let h = start_logged(ROUTES, &config).await;
    let all = pages(&h, "limit=2").await;
    let ids: Vec<&str> = all.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["new", "c", "a", "b", "old"],
        "newest first; one millisecond's rows in insertion order, newest first"
    );
    assert_eq!(all[0]["time"], "2023-11-14T22:13:23.000Z");
    assert_eq!(all[1]["attempts"][0]["target"], "oa/gpt-ok");
    assert_eq!(row(&h, "a").await["request"], "body");
    // New rows go on being written after the moved ones.
    assert_eq!(send(&h, "after-move", "ok", false).await, 200);
    assert_eq!(row(&h, "after-move").await["outcome"], "success");
    assert_eq!(pages(&h, "limit=100").await.len(), 6);
}

#[tokio::test]
async fn a_log_of_one_row_per_request_is_moved_into_batches_keeping_rows_order_and_bodies() {
    let mut config = logged("second-layout", 1000);
    config.retention = Duration::from_secs(20 * 365 * 86_400); // The rows below are from 2023.
    {
        // Layout 2: one row per request, `seq` = arrival in ms times 4096 plus a number within the millisecond.
        let db = rusqlite::Connection::open(&config.path).unwrap();
        db.execute_batch(
            "CREATE TABLE requests (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, route TEXT NOT NULL, \
             api INTEGER NOT NULL, stream INTEGER NOT NULL, key TEXT, status INTEGER, outcome INTEGER NOT NULL, \
             served_by TEXT, fallback INTEGER NOT NULL, attempts TEXT NOT NULL, input_tokens INTEGER NOT NULL, \
             output_tokens INTEGER NOT NULL, latency_ms INTEGER NOT NULL, first_chunk_ms INTEGER, error_kind TEXT, \
             error_message TEXT, request TEXT, response TEXT); CREATE INDEX requests_id ON requests(id); \
             PRAGMA user_version = 2;",
        )
        .unwrap();
        // 1,203 rows (three batches' worth), three of them sharing a millisecond; the last one failed.
        let ms = 1_700_000_000_000i64;
        for i in 0..1203i64 {
            let (time, n) = if i < 3 { (ms, 2 - i) } else { (ms + i, 0) };
            let failed = i == 1202;
            db.execute(
                "INSERT INTO requests (seq, id, route, api, stream, key, status, outcome, served_by, fallback, \
                 attempts, input_tokens, output_tokens, latency_ms, first_chunk_ms, error_kind, error_message, \
                 request, response) VALUES (?1, ?2, 'ok', 1, 1, 'team-a', ?3, ?4, ?5, 0, \
                 '[{\"target\":\"oa/gpt-ok\",\"outcome\":\"success\"}]', 3, 4, 5, 2, ?6, ?7, 'asked', 'answered')",
                rusqlite::params![
                    time * 4096 + n,
                    format!("m-{i}"),
                    if failed { 502 } else { 200 },
                    i64::from(failed),
                    (!failed).then_some("oa/gpt-ok"),
                    failed.then_some("server"),
                    failed.then_some("every target failed"),
                ],
            )
            .unwrap();
        }
    }
    let h = start_logged(ROUTES, &config).await;
    let all = pages(&h, "limit=1000").await;
    assert_eq!(all.len(), 1203);
    let ids: Vec<&str> = all.iter().rev().take(3).map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["m-2", "m-1", "m-0"], "oldest first here: one millisecond's rows in their seq order");
    assert_eq!(all[0]["id"], "m-1202");
    assert_eq!(all[0]["error"], json!({ "kind": "server", "message": "every target failed" }));
    assert_eq!((all[0]["outcome"].as_str(), all[0]["served_by"].is_null()), (Some("failed"), true));
    assert_eq!((all[1]["api"].as_str(), all[1]["stream"].as_bool()), (Some("anthropic"), Some(true)));
    assert_eq!((all[1]["key"].as_str(), all[1]["first_chunk_ms"].as_u64()), (Some("team-a"), Some(2)));
    let one = row(&h, "m-600").await;
    assert_eq!((one["request"].as_str(), one["response"].as_str()), (Some("asked"), Some("answered")));
    assert_eq!(one["time"], "2023-11-14T22:13:20.600Z");
    assert_eq!(pages(&h, "limit=1000&outcome=failed").await.len(), 1);
}

#[test]
fn a_row_without_bodies_takes_at_most_400_bytes_of_file() {
    let config = logged("row-size", 1000);
    let now = SystemTime::now();
    let rows: Vec<Row> = (0..20_000)
        .map(|i| {
            // In the order concurrent requests finish: later arrivals mostly, some earlier ones among them.
            let arrival =
                now - Duration::from_secs(900) + Duration::from_millis(i as u64 * 30 + 1000 - (i as u64 % 7) * 100);
            let mut row = generated(i, arrival);
            row.id = format!("{:032x}", i as u128 * 0x9e37_79b9_7f4a_7c15).into(); // As long as the gateway's own ids.
            row
        })
        .collect();
    switchyard_gateway::storage::write_rows(&config.path, &rows).unwrap();
    let wal = config.path.with_file_name("switchyard.db-wal");
    let bytes = std::fs::metadata(&config.path).unwrap().len() + std::fs::metadata(&wal).map_or(0, |m| m.len());
    let per_row = bytes / rows.len() as u64;
    assert!(per_row <= 400, "{per_row} bytes per row (database and WAL: {bytes} bytes)");
}

#[tokio::test]
async fn usage_over_100k_rows_of_a_week_sums_to_the_rows() {
    let config = logged("usage-100k", 1000);
    let now = SystemTime::now();
    let week = 7 * 86_400_000u64;
    let rows: Vec<Row> =
        (0..100_000).map(|i| generated(i, now - Duration::from_millis((i as u64 * 6_047) % week))).collect();
    switchyard_gateway::storage::write_rows(&config.path, &rows).unwrap();
    let h = start_logged(ROUTES, &config).await;
    let u = h.admin_get("/admin/usage?since=7d&by=route").await;
    let buckets = u.body["buckets"].as_array().unwrap();
    assert!(buckets.len() > 100, "hourly buckets over a week");
    let sum = |k: &str| buckets.iter().map(|b| b[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!((sum("requests"), sum("success"), sum("fallbacks")), (100_000, 100_000, 10_000));
    assert_eq!(sum("output_tokens"), 2_000_000);
    let b = &buckets[0];
    let (p50, p95) = (b["p50_ms"].as_u64().unwrap(), b["p95_ms"].as_u64().unwrap());
    assert!((100..=1200).contains(&p50) && p50 <= p95, "{b}");
    let per_day = h.admin_get("/admin/usage?since=7d&by=target&bucket=1d").await;
    let groups: std::collections::BTreeSet<String> =
        per_day.body["buckets"].as_array().unwrap().iter().map(|b| b["group"].as_str().unwrap().to_owned()).collect();
    assert_eq!(groups.len(), 3);
    assert_eq!(Outcome::parse("success"), Some(Outcome::Success));
    drop(h);
    let _ = std::fs::remove_dir_all(config.path.parent().unwrap());
}

/// Reads SSE frames from `response` until `done` says enough; returns (event, data) pairs.
async fn read_events(
    response: reqwest::Response,
    mut done: impl FnMut(&[(String, Value)]) -> bool,
) -> Vec<(String, Value)> {
    use futures::StreamExt;
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let mut events = Vec::new();
    while !done(&events) {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next()).await.expect("an event").unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = text.find("\n\n") {
            let frame: String = text.drain(..end + 2).collect();
            let event = frame.lines().find_map(|l| l.strip_prefix("event: ")).map(str::to_owned);
            let data = frame.lines().find_map(|l| l.strip_prefix("data: ")).map(|d| serde_json::from_str(d).unwrap());
            if let (Some(event), Some(data)) = (event, data) {
                events.push((event, data));
            }
        }
    }
    events
}

#[tokio::test]
async fn events_say_each_finished_request_once_and_each_disable() {
    let h = start_logged(ROUTES, &logged("events", 1000)).await;
    let response = h.http.get(h.url("/admin/events")).bearer_auth(ADMIN_KEY).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let reader = tokio::spawn(read_events(response, |events| events.len() >= 4));
    // No wait needed: the handler subscribes before it answers, and `send` returned with the headers.
    send(&h, "e-1", "ok", false).await;
    send(&h, "e-2", "ok", true).await;
    send(&h, "e-3", "dead", false).await;
    let r = h.admin_patch("/admin/routes/ok/targets/oa%2Fgpt-ok", &json!({ "enabled": false })).await;
    assert_eq!(r.status, 200);
    let events = reader.await.unwrap();
    let requests: Vec<&str> =
        events.iter().filter(|(e, _)| e == "request").map(|(_, d)| d["id"].as_str().unwrap()).collect();
    let mut sorted = requests.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["e-1", "e-2", "e-3"], "{events:?}");
    let targets: Vec<&Value> = events.iter().filter(|(e, _)| e == "target").map(|(_, d)| d).collect();
    assert_eq!(targets.len(), 1, "{events:?}");
    assert_eq!(targets[0]["route"], "ok");
    assert_eq!(targets[0]["target"], "oa/gpt-ok");
    assert_eq!(targets[0]["enabled"], false);
    assert_eq!(targets[0]["breaker"], "closed");
    assert!(targets[0]["at"].as_str().unwrap().ends_with('Z'));
    assert!(events.iter().all(|(_, d)| d.get("request").is_none()), "no bodies in events");
}

#[tokio::test]
async fn a_breaker_that_opens_is_an_event_for_every_route_listing_the_target() {
    let routes = r#"
[routes.one]
breaker = { failures = 1, cooldown = "60s" }
targets = [{ provider = "an", model = "claude-500" }, { provider = "oa", model = "gpt-ok" }]
[routes.two]
breaker = { failures = 1, cooldown = "60s" }
targets = [{ provider = "an", model = "claude-500" }]
"#;
    let h = start_logged(routes, &logged("breaker-events", 1000)).await;
    let response = h.http.get(h.url("/admin/events")).bearer_auth(ADMIN_KEY).send().await.unwrap();
    let reader = tokio::spawn(read_events(response, |events| {
        events.iter().filter(|(e, d)| e == "target" && d["breaker"] == "open").count() >= 2
    }));
    // No wait needed: the handler subscribes before it answers, and `send` returned with the headers.
    send(&h, "b-1", "one", false).await;
    let events = reader.await.unwrap();
    let mut opened: Vec<&str> = events
        .iter()
        .filter(|(e, d)| e == "target" && d["breaker"] == "open")
        .map(|(_, d)| d["route"].as_str().unwrap())
        .collect();
    opened.sort_unstable();
    assert_eq!(opened, ["one", "two"], "{events:?}");
}

#[tokio::test]
async fn an_override_is_shown_per_route_and_cleared_back_to_the_config() {
    let h = start_logged(ROUTES, &logged("override", 1000)).await;
    assert_eq!(h.admin_patch("/admin/targets/oa%2Fgpt-ok", &json!({ "enabled": false })).await.status, 200);
    let routes = h.admin_get("/admin/routes").await.body;
    let shown = |routes: &Value, route: &str| -> Value {
        let r = routes["routes"].as_array().unwrap().iter().find(|r| r["name"] == route).unwrap();
        r["targets"].as_array().unwrap().iter().find(|t| t["id"] == "oa/gpt-ok").unwrap()["override"].clone()
    };
    assert_eq!(shown(&routes, "ok")["enabled"], false);
    assert_eq!(shown(&routes, "fb")["enabled"], false);
    let r = h.admin_delete("/admin/routes/ok/targets/oa%2Fgpt-ok/override").await;
    assert_eq!((r.status, r.body["enabled"].clone()), (200, json!(true)), "{:?}", r.body);
    let routes = h.admin_get("/admin/routes").await.body;
    assert_eq!(shown(&routes, "ok"), Value::Null);
    assert_eq!(shown(&routes, "fb")["enabled"], false, "cleared on one route only");
    assert_eq!(h.chat("ok", "hi").await.status, 200);
    assert_eq!(h.admin_delete("/admin/routes/ok/targets/oa%2Fnope/override").await.status, 404);
    assert_eq!(h.admin_delete("/admin/routes/nope/targets/oa%2Fgpt-ok/override").await.status, 404);
}

#[tokio::test]
async fn rows_and_usage_older_than_the_retention_are_deleted() {
    let mut config = logged("retention", 100);
    config.retention = Duration::from_secs(86_400);
    let now = SystemTime::now();
    let rows: Vec<Row> =
        (0..20).map(|i| generated(i, now - Duration::from_secs(if i < 5 { 60 } else { 3 * 86_400 }))).collect();
    switchyard_gateway::storage::write_rows(&config.path, &rows).unwrap();
    // The writer checks at start, then hourly.
    let h = start_logged(ROUTES, &config).await;
    flush(&h).await;
    flush(&h).await;
    assert_eq!(pages(&h, "limit=100").await.len(), 5);
    let u = h.admin_get("/admin/usage?since=7d&bucket=1d&by=route").await;
    let total: u64 = u.body["buckets"].as_array().unwrap().iter().map(|b| b["requests"].as_u64().unwrap()).sum();
    assert_eq!(total, 5, "{:?}", u.body);
}

#[tokio::test]
async fn with_log_bodies_a_row_keeps_the_request_and_the_answer_as_sent() {
    let mut config = logged("bodies", 100);
    config.log_bodies = true;
    let h = start_logged(ROUTES, &config).await;
    for (id, stream) in [("b-whole", false), ("b-stream", true)] {
        let response = h
            .http
            .post(h.url("/v1/chat/completions"))
            .bearer_auth(CLIENT_KEY)
            .header("x-request-id", id)
            .json(&body("ok", stream))
            .send()
            .await
            .unwrap();
        let sent = response.text().await.unwrap();
        let r = row(&h, id).await;
        assert!(r["request"].as_str().unwrap().contains("hello there"), "{r}");
        assert_eq!(r["response"].as_str().unwrap(), sent, "the answer exactly as sent");
    }
    let page = h.admin_get("/admin/requests").await;
    assert!(
        page.body["requests"].as_array().unwrap().iter().all(|r| r.get("request").is_none()),
        "lists leave bodies out"
    );
    // The view `requests` shows the log a request per row, bodies included, for sqlite3 and other tools.
    let listed = &page.body["requests"][0];
    let db = rusqlite::Connection::open(&config.path).unwrap();
    let (time, route, outcome, status, response): (String, String, String, u16, String) = db
        .query_row(
            "SELECT time, route, outcome, status, response FROM requests WHERE id = ?1",
            [listed["id"].as_str().unwrap()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!((time.as_str(), route.as_str()), (listed["time"].as_str().unwrap(), "ok"));
    assert_eq!((outcome.as_str(), status), ("success", 200));
    assert_eq!(response, row(&h, listed["id"].as_str().unwrap()).await["response"].as_str().unwrap());
    let without = start_logged(ROUTES, &logged("no-bodies", 100)).await;
    send(&without, "nb", "ok", false).await;
    assert!(row(&without, "nb").await.get("request").is_none());
}

#[tokio::test]
async fn attempts_a_newer_version_wrote_read_back_with_unknown_kinds_as_server() {
    let config = logged("future-attempts", 100);
    let h = start_logged(ROUTES, &config).await;
    // The gateway made the tables; a newer version's row goes in beside its rows.
    assert_eq!(send(&h, "made-tables", "ok", false).await, 200);
    row(&h, "made-tables").await;
    let attempts = json!([
        { "target": "an/claude-500", "outcome": "failed", "kind": "from_the_future", "status": 599, "latency_ms": 7 },
        { "target": "oa/gpt-x", "outcome": "teleported" },
        { "target": "oa/gpt-ok", "outcome": "success", "latency_ms": 9 },
    ]);
    let now_ms = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as i64;
    // A newer version's row: its fields by position, and one more at the end that this build does not know.
    let stored = json!([[
        now_ms, "future", "fb", "openai", false, null, 200, "success", "oa/gpt-ok", true, attempts, 3, 4, 20, null,
        null, null, { "from": "the future" }
    ]]);
    let db = rusqlite::Connection::open(&config.path).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    // An empty filter: a batch a tool wrote without one is read.
    db.execute(
        "INSERT INTO batches (first_ms, last_ms, filter, rows) VALUES (?1, ?1, x'', ?2)",
        rusqlite::params![now_ms, stored.to_string()],
    )
    .unwrap();
    // A damaged batch is left out; it does not make the rest of the log unreadable.
    db.execute(
        "INSERT INTO batches (first_ms, last_ms, filter, rows) VALUES (?1, ?1, x'', '[[1, \"damaged')",
        [now_ms],
    )
    .unwrap();
    drop(db);
    let listed = h.admin_get("/admin/requests?limit=10").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let ids: Vec<&str> =
        listed.body["requests"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["future", "made-tables"]);
    let r = h.admin_get("/admin/requests/future").await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The unknown kind reads as `server`; the attempt this build cannot read at all is left out, not the rest.
    assert_eq!(
        r.body["attempts"],
        json!([
            { "target": "an/claude-500", "outcome": "failed", "kind": "server", "status": 599, "latency_ms": 7 },
            { "target": "oa/gpt-ok", "outcome": "success", "latency_ms": 9 },
        ]),
        "{}",
        r.body
    );
}
