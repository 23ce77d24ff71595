//! SPEC-2 section 9, replicas: two gateways sharing one `redis-server` (`[state] backend = "redis"`) see
//! each other's breaker opens within 1 s, make one half-open probe between them, keep serving when Redis
//! is away and share again when it returns; prefixes keep deployments apart; the replica list and cluster
//! stats.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard_gateway::config::Config;
use switchyard_gateway::server::Running;
use switchyard_gateway::shared_state;
use switchyard_gateway::state::{AppState, HttpProviders};
use switchyard_sim::{Upstream, UpstreamConfig};

use crate::common::{ADMIN_KEY, CLIENT_KEY, Reply, base_config, reply};
use crate::redis_server::RedisServer;

/// `main`: a primary failing its first two calls (per upstream), then a healthy backup; `slow`: a primary
/// answering after 600 ms; `sick`: a primary that always fails. Breakers open after 2 failures.
const ROUTES: &str = r#"
[routes.main]
breaker = { failures = 2, cooldown = "2s" }
targets = [{ provider = "oa", model = "gpt-flaky2", max_retries = 0 }, { provider = "oa", model = "gpt-ok" }]
[routes.slow]
breaker = { failures = 2, cooldown = "2s" }
targets = [{ provider = "oa", model = "gpt-slow600", max_retries = 0 }, { provider = "an", model = "claude-other" }]
[routes.sick]
breaker = { failures = 2, cooldown = "60s" }
targets = [{ provider = "oa", model = "gpt-500", max_retries = 0 }, { provider = "oa", model = "gpt-spare" }]
"#;

/// The slack over a "within 1 s" contract: polling steps and a loaded machine.
pub(crate) const SLACK: Duration = Duration::from_millis(500);

pub(crate) struct Replica {
    pub(crate) gateway: Running,
    http: reqwest::Client,
}

impl Replica {
    /// A gateway in front of `upstream` sharing state through the Redis at `url` under `prefix`.
    pub(crate) async fn start(upstream: &Upstream, url: &str, prefix: &str) -> Replica {
        Replica::with_head(head(upstream), url, prefix).await
    }

    /// Like [`Replica::start`] with this `[server]` and `[providers]` text.
    async fn with_head(head: String, url: &str, prefix: &str) -> Replica {
        let config = Config::parse(&with_state(&head, url, prefix), &|_| None, None).unwrap();
        let state = Arc::new(AppState::build(&config, &HttpProviders::default()).unwrap());
        Replica::serve(state).await
    }

    /// The config text [`Replica::start`] runs.
    pub(crate) fn config_text(upstream: &Upstream, url: &str, prefix: &str) -> String {
        with_state(&head(upstream), url, prefix)
    }

    /// A replica running the config file at `path`, which it reloads on `POST /admin/reload`.
    pub(crate) async fn from_file(path: &Path) -> Replica {
        let config = Config::load(path, None).unwrap();
        let factory = Arc::new(HttpProviders::default());
        let state = AppState::build(&config, factory.as_ref()).unwrap().reloadable(path.to_path_buf(), None, factory);
        Replica::serve(Arc::new(state)).await
    }

    async fn serve(state: Arc<AppState>) -> Replica {
        let gateway = Running::start(state.clone(), "127.0.0.1:0", Duration::from_secs(5)).await.unwrap();
        shared_state::start(&state, gateway.addr).await;
        Replica { gateway, http: reqwest::Client::new() }
    }

    pub(crate) async fn chat(&self, route: &str) -> Reply {
        let body = json!({ "model": route, "messages": [{ "role": "user", "content": "hi" }] });
        let request = self.http.post(format!("{}/v1/chat/completions", self.gateway.url())).bearer_auth(CLIENT_KEY);
        reply(request.json(&body).send().await.unwrap()).await
    }

    pub(crate) async fn admin(&self, path: &str) -> Reply {
        reply(self.http.get(format!("{}{path}", self.gateway.url())).bearer_auth(ADMIN_KEY).send().await.unwrap()).await
    }

    /// `PATCH path` with `body`, as the admin.
    pub(crate) async fn patch(&self, path: &str, body: &Value) -> Reply {
        let request = self.http.patch(format!("{}{path}", self.gateway.url())).bearer_auth(ADMIN_KEY).json(body);
        reply(request.send().await.unwrap()).await
    }

    /// `POST path`, as the admin.
    pub(crate) async fn post(&self, path: &str) -> Reply {
        reply(self.http.post(format!("{}{path}", self.gateway.url())).bearer_auth(ADMIN_KEY).send().await.unwrap())
            .await
    }

    /// `DELETE path`, as the admin.
    pub(crate) async fn delete(&self, path: &str) -> Reply {
        reply(self.http.delete(format!("{}{path}", self.gateway.url())).bearer_auth(ADMIN_KEY).send().await.unwrap())
            .await
    }

    /// This replica's instance id.
    pub(crate) fn id(&self) -> String {
        self.gateway.state.shared.as_ref().unwrap().instance_id().to_owned()
    }

    pub(crate) async fn health(&self) -> Value {
        reply(self.http.get(format!("{}/health", self.gateway.url())).send().await.unwrap()).await.body
    }

    async fn metrics(&self) -> String {
        self.http.get(format!("{}/metrics", self.gateway.url())).send().await.unwrap().text().await.unwrap()
    }

    /// `target` in `route`, from `/admin/routes`.
    pub(crate) async fn target(&self, route: &str, target: &str) -> Value {
        let routes = self.admin("/admin/routes").await.body;
        let route = routes["routes"].as_array().unwrap().iter().find(|r| r["name"] == route).unwrap().clone();
        route["targets"].as_array().unwrap().iter().find(|t| t["id"] == target).unwrap().clone()
    }

    /// The breaker of `target` in `route`, from `/admin/routes`.
    async fn breaker(&self, route: &str, target: &str) -> String {
        self.target(route, target).await["breaker"].as_str().unwrap().to_owned()
    }
}

/// `head`, `[state]` sharing through the Redis at `url` under `prefix`, and [`ROUTES`].
fn with_state(head: &str, url: &str, prefix: &str) -> String {
    format!("{head}\n[state]\nbackend = \"redis\"\nurl = \"{url}\"\nprefix = \"{prefix}\"\n{ROUTES}")
}

/// The `[server]` (with keys) and `[providers]` in front of `upstream`.
fn head(upstream: &Upstream) -> String {
    base_config(upstream, &format!("api_keys = [\"{CLIENT_KEY}\"]\nadmin_key = \"{ADMIN_KEY}\""))
}

/// Polls `check` every 20 ms for at most `limit`; the time it took to hold, or a panic naming `what`.
pub(crate) async fn within<F: std::future::Future<Output = bool>>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> F,
) -> Duration {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("not within {limit:?}: {what}");
}

pub(crate) fn served_by(r: &Reply) -> String {
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.headers["x-switchyard-target"].to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_on_one_replica_is_held_by_the_other_and_one_probe_closes_it_on_both() {
    let redis = RedisServer::start().await;
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    let a = Replica::start(&upstream, &redis.url(), "sy").await;
    let b = Replica::start(&upstream, &redis.url(), "sy").await;

    // Two failures through A open the primary's breaker there.
    for _ in 0..2 {
        assert_eq!(served_by(&a.chat("main").await), "oa/gpt-ok");
    }
    assert_eq!(a.breaker("main", "oa/gpt-flaky2").await, "open");
    let took = within("B holds A's open", Duration::from_secs(3), || async {
        b.breaker("main", "oa/gpt-flaky2").await == "open"
    })
    .await;
    assert!(took <= Duration::from_secs(1) + SLACK, "B saw the open after {took:?}");
    for _ in 0..3 {
        assert_eq!(served_by(&b.chat("main").await), "oa/gpt-ok");
    }
    assert_eq!(upstream.calls("gpt-flaky2"), 2, "B skips the open primary without calling it");

    // After the cooldown, requests through both: one of them probes, and its success closes it on both.
    let deadline = Instant::now() + Duration::from_secs(8);
    'probe: while upstream.calls("gpt-flaky2") == 2 {
        assert!(Instant::now() < deadline, "nobody probed after the cooldown");
        for replica in [&a, &b] {
            if served_by(&replica.chat("main").await) == "oa/gpt-flaky2" {
                break 'probe;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(upstream.calls("gpt-flaky2"), 3, "one probe");
    let took = within("the probe's success closes it on both", Duration::from_secs(3), || async {
        a.breaker("main", "oa/gpt-flaky2").await == "closed" && b.breaker("main", "oa/gpt-flaky2").await == "closed"
    })
    .await;
    assert!(took <= Duration::from_secs(1) + SLACK, "closed everywhere after {took:?}");
    assert_eq!(served_by(&a.chat("main").await), "oa/gpt-flaky2");
    assert_eq!(served_by(&b.chat("main").await), "oa/gpt-flaky2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_half_open_exactly_one_replica_probes() {
    let redis = RedisServer::start().await;
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    let a = Replica::start(&upstream, &redis.url(), "sy").await;
    let b = Replica::start(&upstream, &redis.url(), "sy").await;
    // A third replica that cannot reach the OpenAI-kind provider opens the primary's breaker for
    // everyone, then stops.
    let gone = Upstream::start(UpstreamConfig::default()).await.unwrap();
    let dead = gone.openai_base_url();
    gone.shutdown().await.unwrap();
    let c_head = head(&upstream).replace(&format!("\"{}\"", upstream.openai_base_url()), &format!("\"{dead}\""));
    let c = Replica::with_head(c_head, &redis.url(), "sy").await;
    for _ in 0..2 {
        assert_eq!(served_by(&c.chat("slow").await), "an/claude-other");
    }
    assert_eq!(c.breaker("slow", "oa/gpt-slow600").await, "open");
    c.gateway.shutdown().await.unwrap();
    within("A and B hold the open", Duration::from_secs(3), || async {
        a.breaker("slow", "oa/gpt-slow600").await == "open" && b.breaker("slow", "oa/gpt-slow600").await == "open"
    })
    .await;

    // After the cooldown, pairs of simultaneous requests: the probe takes 600 ms, so the other replica's
    // request of the same pair is admitted while it runs, and must skip.
    let deadline = Instant::now() + Duration::from_secs(8);
    while upstream.calls("gpt-slow600") == 0 {
        assert!(Instant::now() < deadline, "nobody probed after the cooldown");
        let (through_a, through_b) = tokio::join!(a.chat("slow"), b.chat("slow"));
        served_by(&through_a);
        served_by(&through_b);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(upstream.calls("gpt-slow600"), 1, "one probe across both replicas");
    within("the probe's success closes it on both", Duration::from_secs(3), || async {
        a.breaker("slow", "oa/gpt-slow600").await == "closed" && b.breaker("slow", "oa/gpt-slow600").await == "closed"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_starting_late_loads_the_current_opens_before_serving() {
    let redis = RedisServer::start().await;
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    let a = Replica::start(&upstream, &redis.url(), "sy").await;
    for _ in 0..2 {
        a.chat("sick").await;
    }
    assert_eq!(a.breaker("sick", "oa/gpt-500").await, "open");
    let b = Replica::start(&upstream, &redis.url(), "sy").await;
    assert_eq!(b.breaker("sick", "oa/gpt-500").await, "open", "loaded before start returned");
    assert_eq!(served_by(&b.chat("sick").await), "oa/gpt-spare");
    assert_eq!(upstream.calls("gpt-500"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_both_keep_serving_degraded_and_share_again_when_it_returns() {
    let mut redis = RedisServer::start().await;
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    let a = Replica::start(&upstream, &redis.url(), "sy").await;
    let b = Replica::start(&upstream, &redis.url(), "sy").await;
    assert_eq!(a.health().await["state"], "ok");
    assert!(a.metrics().await.contains("switchyard_state_backend_up 1"));

    redis.stop();
    let took = within("both say degraded", Duration::from_secs(5), || async {
        a.health().await["state"] == "degraded" && b.health().await["state"] == "degraded"
    })
    .await;
    assert!(took <= Duration::from_secs(2) + SLACK, "degraded after {took:?}");
    assert!(b.metrics().await.contains("switchyard_state_backend_up 0"));
    for _ in 0..10 {
        for replica in [&a, &b] {
            let r = replica.chat("main").await;
            assert_eq!(r.status, 200, "no request fails while Redis is away: {:?}", r.body);
        }
    }
    let r = a.admin("/admin/instances").await;
    assert_eq!((r.status, &r.body["error"]["code"]), (503, &json!("state_unavailable")), "{:?}", r.body);

    redis.restart().await;
    within("both reconnect (backoff capped at 5 s)", Duration::from_secs(10), || async {
        a.health().await["state"] == "ok" && b.health().await["state"] == "ok"
    })
    .await;
    // Sharing resumed without restarting either: an open through B reaches A.
    for _ in 0..2 {
        assert_eq!(served_by(&b.chat("sick").await), "oa/gpt-spare");
    }
    let calls = upstream.calls("gpt-500");
    let took = within("A holds B's open", Duration::from_secs(3), || async {
        a.breaker("sick", "oa/gpt-500").await == "open"
    })
    .await;
    assert!(took <= Duration::from_secs(1) + SLACK, "A saw the open after {took:?}");
    assert_eq!(served_by(&a.chat("sick").await), "oa/gpt-spare");
    assert_eq!(upstream.calls("gpt-500"), calls, "A skips it without a call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_does_not_wait_for_an_unreachable_redis() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    let started = Instant::now();
    let a = Replica::start(&upstream, &format!("redis://127.0.0.1:{port}"), "sy").await;
    assert!(started.elapsed() <= Duration::from_secs(2) + SLACK, "start-up waited {:?}", started.elapsed());
    assert_eq!(a.health().await["state"], "degraded");
    assert_eq!(served_by(&a.chat("main").await), "oa/gpt-ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_prefixes_on_one_redis_do_not_see_each_other() {
    let redis = RedisServer::start().await;
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    let blue = Replica::start(&upstream, &redis.url(), "blue").await;
    let green = Replica::start(&upstream, &redis.url(), "green").await;
    for _ in 0..2 {
        blue.chat("sick").await;
    }
    assert_eq!(blue.breaker("sick", "oa/gpt-500").await, "open");
    within("both heartbeats are written", Duration::from_secs(3), || async {
        redis.keys().await.iter().filter(|k| k.contains(":instance:")).count() == 2
    })
    .await;
    // A second and a half: more than the 1 s a shared open takes.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(green.breaker("sick", "oa/gpt-500").await, "closed", "green never sees blue's open");
    for replica in [&blue, &green] {
        let instances = replica.admin("/admin/instances").await.body;
        assert_eq!(instances["instances"].as_array().unwrap().len(), 1, "{instances}");
    }
    let keys = redis.keys().await;
    assert!(keys.iter().all(|k| k.starts_with("blue:") || k.starts_with("green:")), "{keys:?}");
    assert!(keys.iter().any(|k| k.starts_with("blue:breaker:")), "{keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replica_list_and_the_cluster_stats_cover_every_live_replica() {
    let redis = RedisServer::start().await;
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    let a = Replica::start(&upstream, &redis.url(), "sy").await;
    let b = Replica::start(&upstream, &redis.url(), "sy").await;
    for _ in 0..3 {
        served_by(&a.chat("sick").await);
    }
    for _ in 0..2 {
        served_by(&b.chat("sick").await);
    }
    let list = a.admin("/admin/instances").await.body;
    let instances = list["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 2, "{list}");
    let listens: Vec<&str> = instances.iter().map(|i| i["listen"].as_str().unwrap()).collect();
    assert!(listens.contains(&a.gateway.addr.to_string().as_str()), "{list}");
    assert!(listens.contains(&b.gateway.addr.to_string().as_str()), "{list}");
    for i in instances {
        for field in ["id", "version", "listen", "started", "last_seen"] {
            assert!(i[field].is_string(), "{field} in {i}");
        }
    }

    let deadline = Instant::now() + Duration::from_secs(3);
    let cluster = loop {
        let cluster = a.admin("/admin/stats?scope=cluster").await.body;
        if cluster["total"] == 5 {
            break cluster;
        }
        assert!(Instant::now() < deadline, "the cluster stats never summed both replicas: {cluster}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(cluster["instances"], 2);
    assert_eq!(cluster["routes"]["sick"]["total"], 5);
    assert_eq!(a.admin("/admin/stats").await.body["total"], 3, "plain /admin/stats stays this replica's own");
    assert_eq!(a.admin("/admin/stats?scope=everything").await.status, 400);
}
