//! SPEC-2 section 9, replicas: runtime overrides made on one gateway are applied by the others within
//! 1 s (and so are their clears), outlive every replica, and survive Redis going away and coming back
//! empty.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_sim::{Upstream, UpstreamConfig};

use crate::common::{ADMIN_KEY, temp_folder};
use crate::redis_server::RedisServer;
use crate::replicas::{Replica, SLACK, served_by, within};

const FLAKY: &str = "/admin/routes/main/targets/oa%2Fgpt-flaky2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_on_one_replica_is_applied_by_the_other_within_a_second_and_so_is_its_clear() {
    let redis = RedisServer::start().await;
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    let a = Replica::start(&upstream, &redis.url(), "sy").await;
    let b = Replica::start(&upstream, &redis.url(), "sy").await;
    let configured = b.target("main", "oa/gpt-flaky2").await;
    assert_eq!(configured["override"], Value::Null);

    let r = a.patch(FLAKY, &json!({ "enabled": false, "priority": 7, "max_retries": 2 })).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let took = within("B applies A's disable", Duration::from_secs(3), || async {
        b.target("main", "oa/gpt-flaky2").await["enabled"] == false
    })
    .await;
    assert!(took <= Duration::from_secs(1) + SLACK, "B applied it after {took:?}");
    let on_b = b.target("main", "oa/gpt-flaky2").await;
    assert_eq!((&on_b["priority"], &on_b["max_retries"]), (&json!(7), &json!(2)), "{on_b}");
    let shown = &on_b["override"];
    assert_eq!((&shown["enabled"], &shown["priority"], &shown["max_retries"]), (&json!(false), &json!(7), &json!(2)));
    assert_eq!(shown["by"], a.id(), "{shown}");
    assert_eq!(shown["at"], a.target("main", "oa/gpt-flaky2").await["override"]["at"]);
    for _ in 0..3 {
        assert_eq!(served_by(&b.chat("main").await), "oa/gpt-ok");
    }
    assert_eq!(upstream.calls("gpt-flaky2"), 0, "B never calls the target A disabled");

    // A change everywhere (every route and direct requests) travels too.
    let r = a.patch("/admin/targets/oa%2Fgpt-500", &json!({ "enabled": false })).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let took = within("B refuses direct requests to the target A disabled", Duration::from_secs(3), || async {
        b.chat("oa/gpt-500").await.status == 503
    })
    .await;
    assert!(took <= Duration::from_secs(1) + SLACK, "B applied it after {took:?}");
    assert_eq!(b.target("sick", "oa/gpt-500").await["enabled"], false);

    // Clearing on A returns the target to its config values on B too.
    let r = a.delete(&format!("{FLAKY}/override")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let took = within("B clears it", Duration::from_secs(3), || async {
        b.target("main", "oa/gpt-flaky2").await["override"].is_null()
    })
    .await;
    assert!(took <= Duration::from_secs(1) + SLACK, "B cleared it after {took:?}");
    let on_b = b.target("main", "oa/gpt-flaky2").await;
    for field in ["enabled", "priority", "max_retries"] {
        assert_eq!(on_b[field], configured[field], "{field} is back to its config value: {on_b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_outlive_every_replica_and_load_before_a_new_one_serves() {
    let redis = RedisServer::start().await;
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    let a = Replica::start(&upstream, &redis.url(), "sy").await;
    let b = Replica::start(&upstream, &redis.url(), "sy").await;
    assert_eq!(a.patch(FLAKY, &json!({ "enabled": false })).await.status, 200);
    assert_eq!(b.patch("/admin/routes/sick/targets/oa%2Fgpt-spare", &json!({ "priority": 9 })).await.status, 200);
    within("both reached Redis", Duration::from_secs(3), || async {
        a.target("sick", "oa/gpt-spare").await["priority"] == 9
            && b.target("main", "oa/gpt-flaky2").await["enabled"] == false
    })
    .await;
    a.gateway.shutdown().await.unwrap();
    b.gateway.shutdown().await.unwrap();

    let c = Replica::start(&upstream, &redis.url(), "sy").await;
    // Checked once, right after start-up: loaded before it serves.
    assert_eq!(c.target("main", "oa/gpt-flaky2").await["enabled"], false);
    assert_eq!(c.target("sick", "oa/gpt-spare").await["priority"], 9);
    assert_eq!(served_by(&c.chat("main").await), "oa/gpt-ok");
    assert_eq!(upstream.calls("gpt-flaky2"), 0);

    // `switchyard models reset` through C clears it on D as well.
    let d = Replica::start(&upstream, &redis.url(), "sy").await;
    assert_eq!(d.target("main", "oa/gpt-flaky2").await["enabled"], false);
    let args =
        ["models", "reset", "oa/gpt-flaky2", "--url", &c.gateway.url(), "--admin-key", ADMIN_KEY].map(str::to_owned);
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_switchyard")).args(args).env("NO_COLOR", "1").output().unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let took = within("D clears it", Duration::from_secs(3), || async {
        let t = d.target("main", "oa/gpt-flaky2").await;
        t["override"].is_null() && t["enabled"] == true
    })
    .await;
    assert!(took <= Duration::from_secs(1) + SLACK, "D cleared it after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_made_while_redis_is_away_applies_locally_and_reaches_the_other_when_it_returns() {
    let mut redis = RedisServer::start().await;
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    let a = Replica::start(&upstream, &redis.url(), "sy").await;
    let b = Replica::start(&upstream, &redis.url(), "sy").await;
    // Made before the outage; the Redis that comes back is empty, so the replicas must write it again.
    assert_eq!(b.patch("/admin/routes/sick/targets/oa%2Fgpt-spare", &json!({ "priority": 9 })).await.status, 200);
    within("A has B's override", Duration::from_secs(3), || async {
        a.target("sick", "oa/gpt-spare").await["priority"] == 9
    })
    .await;

    redis.stop();
    within("A says degraded", Duration::from_secs(5), || async { a.health().await["state"] == "degraded" }).await;
    let r = a.patch(FLAKY, &json!({ "enabled": false })).await;
    assert_eq!(r.status, 200, "an admin change does not wait for Redis: {:?}", r.body);
    for _ in 0..3 {
        assert_eq!(served_by(&a.chat("main").await), "oa/gpt-ok", "applied locally at once");
    }
    assert_eq!(upstream.calls("gpt-flaky2"), 0);
    assert_eq!(b.target("main", "oa/gpt-flaky2").await["enabled"], true, "B cannot know yet");
    for _ in 0..5 {
        for replica in [&a, &b] {
            let r = replica.chat("main").await;
            assert_eq!(r.status, 200, "no request fails while Redis is away: {:?}", r.body);
        }
    }

    redis.restart().await;
    within("B applies A's override once Redis is back", Duration::from_secs(10), || async {
        b.target("main", "oa/gpt-flaky2").await["enabled"] == false
    })
    .await;
    assert_eq!(b.target("main", "oa/gpt-flaky2").await["override"]["by"], a.id());
    let c = Replica::start(&upstream, &redis.url(), "sy").await;
    assert_eq!(c.target("main", "oa/gpt-flaky2").await["enabled"], false, "stored in the new Redis");
    assert_eq!(c.target("sick", "oa/gpt-spare").await["priority"], 9, "written again into the empty Redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_resolve_per_field_the_newer_winning() {
    let redis = RedisServer::start().await;
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    let a = Replica::start(&upstream, &redis.url(), "sy").await;
    let b = Replica::start(&upstream, &redis.url(), "sy").await;
    // Two fields of one target at the same moment, one on each replica: both stay.
    let (priority, disable) = (json!({ "priority": 5 }), json!({ "enabled": false }));
    let (through_a, through_b) = tokio::join!(a.patch(FLAKY, &priority), b.patch(FLAKY, &disable));
    assert_eq!((through_a.status, through_b.status), (200, 200));
    within("both replicas hold both fields", Duration::from_secs(3), || async {
        let (on_a, on_b) = (a.target("main", "oa/gpt-flaky2").await, b.target("main", "oa/gpt-flaky2").await);
        [on_a, on_b].iter().all(|t| t["priority"] == 5 && t["enabled"] == false)
    })
    .await;
    // The same field later on the other replica: the newer value wins on both.
    assert_eq!(b.patch(FLAKY, &json!({ "priority": 6 })).await.status, 200);
    within("the newer priority everywhere", Duration::from_secs(3), || async {
        let (on_a, on_b) = (a.target("main", "oa/gpt-flaky2").await, b.target("main", "oa/gpt-flaky2").await);
        [on_a, on_b].iter().all(|t| t["priority"] == 6 && t["enabled"] == false)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_drops_a_target_drops_its_override_there_only_and_the_others_keep_it() {
    let redis = RedisServer::start().await;
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    let path = temp_folder("replica-reload").join("switchyard.toml");
    let text = Replica::config_text(&upstream, &redis.url(), "sy");
    std::fs::write(&path, &text).unwrap();
    let a = Replica::from_file(&path).await;
    let b = Replica::start(&upstream, &redis.url(), "sy").await;
    assert_eq!(a.patch(FLAKY, &json!({ "enabled": false })).await.status, 200);
    within("B applies A's disable", Duration::from_secs(3), || async {
        b.target("main", "oa/gpt-flaky2").await["enabled"] == false
    })
    .await;

    // A rolling config change: A's new file no longer has the target, B still runs the old one.
    let flaky = r#"{ provider = "oa", model = "gpt-flaky2", max_retries = 0 }, "#;
    assert!(text.contains(flaky));
    std::fs::write(&path, text.replace(flaky, "")).unwrap();
    let r = a.post("/admin/reload").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // A later change from A: once B has it, B has seen whatever A told before it.
    assert_eq!(a.patch("/admin/routes/sick/targets/oa%2Fgpt-spare", &json!({ "priority": 9 })).await.status, 200);
    within("B applies A's later change", Duration::from_secs(3), || async {
        b.target("sick", "oa/gpt-spare").await["priority"] == 9
    })
    .await;
    let on_b = b.target("main", "oa/gpt-flaky2").await;
    assert_eq!((&on_b["enabled"], &on_b["override"]["enabled"]), (&json!(false), &json!(false)), "B keeps it: {on_b}");
    assert_eq!(served_by(&b.chat("main").await), "oa/gpt-ok");
    assert_eq!(upstream.calls("gpt-flaky2"), 0);
}
