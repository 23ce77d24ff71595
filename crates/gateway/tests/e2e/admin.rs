//! The admin API: the SPEC's JSON shapes, runtime changes that the next request obeys, stats.

use serde_json::json;

use crate::common::*;

const ROUTES: &str = r#"
[routes.main]
targets = [
  { provider = "an", model = "claude-ok", max_retries = 2 },
  { provider = "oa", model = "gpt-ok", max_retries = 1 },
]
"#;

#[tokio::test]
async fn routes_have_the_spec_shape() {
    let h = start(ROUTES).await;
    h.chat("main", "hi").await;
    let r = h.admin_get("/admin/routes").await;
    assert_eq!(r.status, 200);
    let route = &r.body["routes"][0];
    assert_eq!(route["name"], "main");
    let t = &route["targets"][0];
    assert_eq!(t["id"], "an/claude-ok");
    assert_eq!(t["provider"], "an");
    assert_eq!(t["model"], "claude-ok");
    assert_eq!(t["enabled"], true);
    assert_eq!(t["priority"], 1);
    assert_eq!(t["max_retries"], 2);
    assert_eq!(t["is_current"], true);
    assert_eq!(t["usage"], 1);
    assert_eq!(t["breaker"], "closed");
    assert!(t["last_failure"].is_null() && t["last_recovery"].is_null() && t["disabled_reason"].is_null());
    assert_eq!(route["targets"][1]["is_current"], false);
}

#[tokio::test]
async fn disabling_a_target_makes_the_next_request_skip_it() {
    let h = start(ROUTES).await;
    let r = h.admin_patch("/admin/routes/main/targets/an%2Fclaude-ok", &json!({ "enabled": false })).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["enabled"], false);
    assert_eq!(r.body["disabled_reason"], "disabled");

    let r = h.chat("main", "hi").await;
    assert_eq!((r.status, r.target(), r.attempts(), r.fallback()), (200, "oa/gpt-ok", "1", "false"));
    assert_eq!(h.upstream.calls("claude-ok"), 0, "a disabled target is not called");

    // Written with its slash, the id works too.
    let r = h.admin_patch("/admin/routes/main/targets/an/claude-ok", &json!({ "enabled": true })).await;
    assert_eq!((r.status, &r.body["enabled"]), (200, &json!(true)));
    assert_eq!(h.chat("main", "hi").await.target(), "an/claude-ok");
}

#[tokio::test]
async fn priority_and_retries_change_at_runtime() {
    let h = start(ROUTES).await;
    let r = h.admin_patch("/admin/routes/main/targets/oa%2Fgpt-ok", &json!({ "priority": 0, "max_retries": 3 })).await;
    assert_eq!(r.status, 200);
    assert_eq!((r.body["priority"].as_i64(), r.body["max_retries"].as_u64()), (Some(0), Some(3)));
    assert_eq!(h.chat("main", "hi").await.target(), "oa/gpt-ok");
    let routes = h.admin_get("/admin/routes").await;
    assert_eq!(routes.body["routes"][0]["targets"][0]["id"], "oa/gpt-ok", "listed in the order requests try them");
}

#[tokio::test]
async fn bad_admin_requests_are_clear() {
    let h = start(ROUTES).await;
    let r = h.admin_patch("/admin/routes/nope/targets/an%2Fclaude-ok", &json!({ "enabled": false })).await;
    assert_eq!(r.status, 404);
    let r = h.admin_patch("/admin/routes/main/targets/an%2Fnope", &json!({ "enabled": false })).await;
    assert_eq!(r.status, 404);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("an/nope"));
    let r = h.admin_patch("/admin/routes/main/targets/an%2Fclaude-ok", &json!({ "enable": false })).await;
    assert_eq!(r.status, 400);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("enable"));
    let r = h.admin_patch("/admin/routes/main/targets/an%2Fclaude-ok", &json!({ "priority": "high" })).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn stats_count_exactly_and_reset() {
    let h = start(
        r#"
[routes.main]
backoff = { kind = "linear", base = "1ms" }
targets = [{ provider = "an", model = "claude-500" }, { provider = "oa", model = "gpt-ok" }]
[routes.dead]
targets = [{ provider = "oa", model = "gpt-503" }]
"#,
    )
    .await;
    for _ in 0..3 {
        assert_eq!(h.chat("main", "hi").await.status, 200);
    }
    assert_eq!(h.chat("dead", "hi").await.status, 502);
    let s = h.admin_get("/admin/stats").await.body;
    assert_eq!((s["total"].as_u64(), s["success"].as_u64(), s["failed"].as_u64()), (Some(4), Some(3), Some(1)));
    assert_eq!(s["fallbacks"], 3);
    assert_eq!(s["routes"]["main"]["total"], 3);
    assert_eq!(s["routes"]["dead"]["failed"], 1);
    let t = &s["targets"]["an/claude-500"];
    assert_eq!((t["attempts"].as_u64(), t["failures"]["server"].as_u64()), (Some(3), Some(3)));
    assert_eq!(s["targets"]["oa/gpt-ok"]["usage"], 3);

    assert_eq!(h.admin_post("/admin/stats/reset").await.status, 200);
    let s = h.admin_get("/admin/stats").await.body;
    assert_eq!((s["total"].as_u64(), s["fallbacks"].as_u64()), (Some(0), Some(0)));
    assert_eq!(s["targets"]["an/claude-500"]["attempts"], 0);
}

#[tokio::test]
async fn the_cli_tables_render_live_data() {
    let h = start(ROUTES).await;
    h.chat("main", "hi").await;
    let routes = h.admin_get("/admin/routes").await.body;
    let table = switchyard_gateway::commands::models::routes_table(&routes);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ROUTE"));
    assert!(lines[1].contains("an/claude-ok") && lines[1].contains("yes") && lines[1].contains('*'), "{table}");
    let stats = switchyard_gateway::commands::models::stats_text(&h.admin_get("/admin/stats").await.body);
    assert!(stats.contains("1 total, 1 succeeded"), "{stats}");
    assert!(stats.contains("success rate: 100.00%"));
}
