//! The admin and public JSON shapes of SPEC sections 4 and 7 and SPEC-2, whole: every key, and no other.
//! Through the router with in-process models (sockets add nothing to a shape).

use serde_json::{Value, json};
use switchyard::Error;
use switchyard_sim::{Behavior, SimModel};

use crate::in_process::*;

const ROUTES: &str = r#"
[routes.main]
targets = [
  { provider = "an", model = "flaky", max_retries = 0 },
  { provider = "oa", model = "steady", priority = 2, max_retries = 1 },
]
"#;

fn models() -> Vec<SimModel> {
    let flaky = SimModel::new("flaky").script([Behavior::Fail(Error::server(503, "busy"))]);
    vec![flaky, SimModel::replying("steady", "fine")]
}

/// A target as `GET /admin/routes` shows it, before any override.
fn listed(id: &str, priority: i64, max_retries: u64, usage: u64, current: bool, failed: bool) -> Value {
    let (provider, model) = id.split_once('/').unwrap();
    json!({
        "id": id, "provider": provider, "model": model, "enabled": true, "priority": priority,
        "max_retries": max_retries, "is_current": current, "usage": usage, "breaker": "closed",
        "breaker_opened": 0, "last_failure": if failed { Value::from("<time>") } else { Value::Null },
        "last_recovery": null, "disabled_reason": null, "override": null, "breaker_since": null,
    })
}

/// `value` with every RFC 3339 time string replaced by "<time>" and every measured latency (a number) by
/// "<ms>", so the shape compares whole.
fn times_hidden(mut value: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::String(s) if s.len() > 20 && s.ends_with('Z') && s.as_bytes()[10] == b'T' => *v = "<time>".into(),
            Value::Array(items) => items.iter_mut().for_each(walk),
            Value::Object(map) => {
                for (key, item) in map.iter_mut() {
                    if key == "mean_latency_ms" && item.is_number() {
                        *item = "<ms>".into();
                    }
                    walk(item);
                }
            }
            _ => {}
        }
    }
    walk(&mut value);
    value
}

#[tokio::test]
async fn routes_targets_and_patches_have_exactly_the_spec_keys() {
    let router = router(&keys(), ROUTES, models());
    assert_eq!(chat(&router, "main", "hi").await.status, 200);
    let r = admin_get(&router, "/admin/routes").await;
    assert_eq!(r.status, 200);
    let expected = json!({ "routes": [{ "name": "main", "targets": [
        listed("an/flaky", 1, 0, 0, false, true),
        listed("oa/steady", 2, 1, 1, true, false),
    ] }] });
    assert_eq!(times_hidden(r.body), expected);

    let patch = json!({ "priority": 3 });
    let r =
        call(&router, request("PATCH", "/admin/routes/main/targets/oa%2Fsteady", Some(ADMIN_KEY), Some(&patch))).await;
    let mut patched = listed("oa/steady", 3, 1, 1, true, false);
    let target = patched.as_object_mut().unwrap();
    target.remove("override");
    target.remove("breaker_since");
    assert_eq!(r.body, patched);

    let r = call(&router, request("DELETE", "/admin/routes/main/targets/oa%2Fsteady/override", Some(ADMIN_KEY), None))
        .await;
    let mut cleared = listed("oa/steady", 2, 1, 1, true, false);
    let target = cleared.as_object_mut().unwrap();
    target.remove("override");
    target.remove("breaker_since");
    assert_eq!(r.body, cleared);
}

#[tokio::test]
async fn stats_have_exactly_the_spec_keys_and_reset_says_so() {
    let router = router(&keys(), ROUTES, models());
    assert_eq!(chat(&router, "main", "hi").await.status, 200);
    let target = |attempts: u64, successes: u64, failures: Value, usage: u64| {
        json!({
            "attempts": attempts, "successes": successes, "failures": failures, "cancelled": 0,
            "stream_failures": 0, "usage": usage, "skipped": 0, "retries_refused": 0, "hedges": 0,
            "events_skipped": 0, "mean_latency_ms": "<ms>",
        })
    };
    let targets = json!({
        "an/flaky": target(1, 0, json!({ "server": 1 }), 0),
        "oa/steady": target(1, 1, json!({}), 1),
    });
    let route = |direct: bool, total: u64, fallbacks: u64, targets: Value| {
        json!({
            "direct": direct, "total": total, "success": total, "failed": 0, "cancelled": 0,
            "fallbacks": fallbacks, "in_flight": 0, "last_fallback": if fallbacks > 0 { Value::from("<time>") } else { Value::Null },
            "targets": targets,
        })
    };
    let expected = json!({
        "total": 1, "success": 1, "failed": 0, "cancelled": 0, "fallbacks": 1, "in_flight": 0,
        "routes": {
            "main": route(false, 1, 1, targets.clone()),
            "an/flaky": route(true, 0, 0, json!({ "an/flaky": target(0, 0, json!({}), 0) })),
            "oa/steady": route(true, 0, 0, json!({ "oa/steady": target(0, 0, json!({}), 0) })),
        },
        "targets": targets,
    });
    let r = admin_get(&router, "/admin/stats").await;
    assert_eq!(times_hidden(r.body), expected);

    let r = call(&router, request("POST", "/admin/stats/reset", Some(ADMIN_KEY), None)).await;
    assert_eq!((r.status, r.body), (200, json!({ "reset": true })));
}

#[tokio::test]
async fn health_models_and_config_have_exactly_the_spec_keys() {
    let router = router(&keys(), ROUTES, models());
    let r = call(&router, request("GET", "/health", None, None)).await;
    assert_eq!((r.status, r.body), (200, json!({ "status": "ok", "routes": { "main": { "enabled_targets": 2 } } })));

    let r = call(&router, request("GET", "/v1/models", Some(CLIENT_KEY), None)).await;
    let model = |id: &str, owner: &str| json!({ "id": id, "object": "model", "created": 0, "owned_by": owner });
    let data = [model("main", "switchyard"), model("an/flaky", "an"), model("oa/steady", "oa")];
    assert_eq!(r.body, json!({ "object": "list", "data": data }));

    let r = admin_get(&router, "/admin/config").await;
    let keys: Vec<&str> = r.body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["config", "hash", "loaded_at"], "{}", r.body);
    assert_eq!(r.body["config"]["server"]["admin_key"], "<redacted>");
    assert_eq!(r.body["hash"].as_str().unwrap().len(), 64);
    assert_eq!(times_hidden(r.body["loaded_at"].clone()), "<time>");
}

#[tokio::test]
async fn health_is_503_degraded_when_a_route_has_no_enabled_target() {
    let router = router(&keys(), "[routes.main]\ntargets = [{ provider = \"oa\", model = \"only\" }]\n", vec![]);
    let off = json!({ "enabled": false });
    let r = call(&router, request("PATCH", "/admin/targets/oa%2Fonly", Some(ADMIN_KEY), Some(&off))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(&router, request("GET", "/health", None, None)).await;
    assert_eq!(
        (r.status, r.body),
        (503, json!({ "status": "degraded", "routes": { "main": { "enabled_targets": 0 } } }))
    );
}

#[tokio::test]
async fn config_shows_a_base_url_without_the_credentials_it_carries() {
    let text = format!(
        "[server]\n{}\n\
         [providers.oa]\nkind = \"openai\"\nbase_url = \"https://user:S3cret-pw@127.0.0.1:9/v1?key=S3cret-key&v=2\"\n\
         [routes.main]\ntargets = [{{ provider = \"oa\", model = \"m\" }}]\n",
        keys()
    );
    let config = switchyard_gateway::config::Config::parse(&text, &|_| None, None).unwrap();
    let state = switchyard_gateway::state::AppState::build(&config, &Models(vec![])).unwrap();
    let router = switchyard_gateway::server::router(std::sync::Arc::new(state));
    for path in ["/admin/config", "/admin/routes", "/admin/stats"] {
        let r = admin_get(&router, path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let shown = r.body.to_string();
        assert!(!shown.contains("S3cret"), "{path}: {shown}");
    }
    let r = admin_get(&router, "/admin/config").await;
    let base_url = &r.body["config"]["providers"]["oa"]["base_url"];
    assert_eq!(base_url, "https://<redacted>@127.0.0.1:9/v1?key=<redacted>&v=<redacted>");
}
