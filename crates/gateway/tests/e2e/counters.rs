//! One definition, one counter: after a mixed run (fallbacks, a hedge won, a broken stream, a skipped target,
//! a malformed event, a caller who left), `/metrics` and `/admin/stats` show the same numbers, because both read
//! the engine's counters.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::common::*;

const ROUTES: &str = r#"
[routes.fb]
targets = [{ provider = "oa", model = "gpt-500", max_retries = 0 }, { provider = "an", model = "claude-ok" }]
[routes.hedged]
hedge = { after = "50ms" }
targets = [{ provider = "oa", model = "gpt-slow2000" }, { provider = "an", model = "claude-ok" }]
[routes.brk]
targets = [{ provider = "an", model = "claude-break2" }]
[routes.skip]
targets = [{ provider = "oa", model = "gpt-ok", enabled = false }, { provider = "oa", model = "gpt-badchunk1" }]
[routes.slow]
hedge = false
targets = [{ provider = "oa", model = "gpt-slow5000" }]
"#;

/// `name{labels} value` lines of the exposition, by `name{labels}`.
fn samples(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter_map(|(key, value)| value.parse::<u64>().ok().map(|v| (key.to_owned(), v)))
        .collect()
}

#[tokio::test]
async fn metrics_and_admin_stats_show_the_same_engine_counters() {
    let h = start(ROUTES).await;
    // The caller gives up on the slow route: its call is cancelled.
    let gone = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_KEY)
        .json(&json!({ "model": "slow", "messages": [{ "role": "user", "content": "hi" }] }))
        .timeout(std::time::Duration::from_millis(300))
        .send()
        .await;
    assert!(gone.is_err(), "the client timed out");
    for model in ["fb", "hedged", "brk", "skip"] {
        h.chat(model, "hi").await;
        let body = json!({ "model": model, "stream": true, "messages": [{ "role": "user", "content": "hi" }] });
        h.stream("/v1/chat/completions", &body).await;
    }
    // Streams are counted when their body ends; wait until nothing is in flight.
    for _ in 0..200 {
        if h.admin_get("/admin/stats").await.body["in_flight"] == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let stats = h.admin_get("/admin/stats").await.body;
    assert_eq!(stats["in_flight"], 0, "every request ended before the counters are compared");
    let metrics = samples(&h.metrics().await);
    let metric = |name: &str, labels: &str| metrics.get(&format!("{name}{{{labels}}}")).copied().unwrap_or(0);

    let mut checked = 0;
    for (route, r) in stats["routes"].as_object().unwrap() {
        let labels = format!("route=\"{route}\"");
        assert_eq!(metric("switchyard_fallbacks_total", &labels), r["fallbacks"].as_u64().unwrap(), "{route}: {r}");
        for (id, t) in r["targets"].as_object().unwrap() {
            let labels = format!("route=\"{route}\",target=\"{id}\"");
            let n = |v: &Value| v.as_u64().unwrap_or(0);
            let failures: u64 = t["failures"].as_object().unwrap().values().map(n).sum();
            let pairs = [
                (metric("switchyard_attempts_total", &format!("{labels},outcome=\"success\"")), n(&t["successes"])),
                (metric("switchyard_attempts_total", &format!("{labels},outcome=\"failure\"")), failures),
                (metric("switchyard_attempts_total", &format!("{labels},outcome=\"cancelled\"")), n(&t["cancelled"])),
                (metric("switchyard_hedges_total", &labels), n(&t["hedges"])),
                (metric("switchyard_stream_failures_total", &labels), n(&t["stream_failures"])),
                (metric("switchyard_target_skipped_total", &labels), n(&t["skipped"])),
                (metric("switchyard_stream_events_skipped_total", &labels), n(&t["events_skipped"])),
            ];
            for (i, (from_metrics, from_stats)) in pairs.into_iter().enumerate() {
                assert_eq!(from_metrics, from_stats, "{route} {id} pair {i}: {t}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 7);
    // The run did what it says: two fallbacks, hedges won (not fallbacks), a broken stream.
    assert_eq!(stats["routes"]["fb"]["fallbacks"], 2, "{stats}");
    assert_eq!(stats["routes"]["hedged"]["fallbacks"], 0, "{stats}");
    assert_eq!(stats["routes"]["hedged"]["targets"]["an/claude-ok"]["hedges"], 2, "{stats}");
    assert_eq!(stats["routes"]["brk"]["targets"]["an/claude-break2"]["stream_failures"], 1, "{stats}");
    assert_eq!(stats["routes"]["skip"]["targets"]["oa/gpt-ok"]["skipped"], 2, "{stats}");
    assert_eq!(stats["routes"]["skip"]["targets"]["oa/gpt-badchunk1"]["events_skipped"], 1, "{stats}");
    assert_eq!(stats["routes"]["slow"]["targets"]["oa/gpt-slow5000"]["cancelled"], 1, "{stats}");

    // `switchyard stats` does not show the broken stream as OK.
    let text = switchyard_gateway::commands::models::stats_text(&stats["routes"]["brk"]);
    let row = text.lines().find(|l| l.starts_with("an/claude-break2")).unwrap();
    assert!(row.contains("stream_broke=1"), "{text}");
    let columns: Vec<&str> = row.split_whitespace().collect();
    assert_eq!((columns[1], columns[2]), ("2", "0"), "2 calls, none OK:\n{text}");
}
