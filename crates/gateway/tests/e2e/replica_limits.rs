//! SPEC-2 sections 9 and 12, shared limits: with `[state] backend = "redis"`, a target's `rpm` and a client
//! key's `rpm` are cluster-wide. Two gateways on one `redis-server` admit together at most the limit plus 5%
//! plus one lease per replica, and not grossly less; with Redis away each serves on its own share (the limit
//! divided by the replicas it last saw), and reports it when Redis returns.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use switchyard_gateway::config::Config;
use switchyard_gateway::server::Running;
use switchyard_gateway::shared_state;
use switchyard_gateway::state::{AppState, HttpProviders};
use switchyard_sim::{Upstream, UpstreamConfig};

use crate::common::{ADMIN_KEY, CLIENT_KEY, base_config, reply};
use crate::redis_server::RedisServer;
use crate::replicas::within;

/// `capped`: one target with `rpm = 100`; `free`: one without limits. Key `team`: `rpm = 100`; key `solo`:
/// `rpm = 10`.
const ROUTES: &str = r#"
[routes.capped]
targets = [{ provider = "oa", model = "gpt-capped", rpm = 100 }]
[routes.free]
targets = [{ provider = "oa", model = "gpt-free" }]
"#;

const KEYS: &str =
    "[server.keys.team]\nkey = \"team-key\"\nrpm = 100\n[server.keys.solo]\nkey = \"solo-key\"\nrpm = 10\n";

/// The largest lease one replica takes of a limit of 100: 5% (as if it were alone).
const LEASE: u64 = 5;

struct Replica {
    gateway: Running,
    http: reqwest::Client,
}

impl Replica {
    async fn start(upstream: &Upstream, url: &str) -> Replica {
        let server = format!("api_keys = [\"{CLIENT_KEY}\"]\nadmin_key = \"{ADMIN_KEY}\"\n{KEYS}");
        let text = format!(
            "{}\n[state]\nbackend = \"redis\"\nurl = \"{url}\"\nprefix = \"lim\"\n{ROUTES}",
            base_config(upstream, &server)
        );
        let config = Config::parse(&text, &|_| None, None).unwrap();
        let state = Arc::new(AppState::build(&config, &HttpProviders::default()).unwrap());
        let gateway = Running::start(state.clone(), "127.0.0.1:0", Duration::from_secs(5)).await.unwrap();
        shared_state::start(&state, gateway.addr).await;
        Replica { gateway, http: reqwest::Client::new() }
    }

    /// The status of one chat request to `route` with `key`.
    async fn chat(&self, key: &str, route: &str) -> u16 {
        let body = json!({ "model": route, "messages": [{ "role": "user", "content": "hi" }] });
        let request = self.http.post(format!("{}/v1/chat/completions", self.gateway.url())).bearer_auth(key);
        reply(request.json(&body).send().await.unwrap()).await.status
    }

    async fn instances(&self) -> usize {
        let request = self.http.get(format!("{}/admin/instances", self.gateway.url())).bearer_auth(ADMIN_KEY);
        let body = reply(request.send().await.unwrap()).await.body;
        body["instances"].as_array().map_or(0, Vec::len)
    }

    async fn degraded(&self) -> bool {
        let body = reply(self.http.get(format!("{}/health", self.gateway.url())).send().await.unwrap()).await.body;
        body["state"] == "degraded"
    }
}

/// Two replicas that have seen each other (the replica count is read with every heartbeat, each second).
async fn two_replicas(upstream: &Upstream, redis: &RedisServer) -> (Replica, Replica) {
    let a = Replica::start(upstream, &redis.url()).await;
    let b = Replica::start(upstream, &redis.url()).await;
    within("both list two replicas", Duration::from_secs(5), || async {
        a.instances().await == 2 && b.instances().await == 2
    })
    .await;
    // One more heartbeat on each, so both count two replicas.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    (a, b)
}

/// Bursts of `total` requests to `route` with `key`, half through each replica (16 at a time on each), a
/// second apart as the refusals' `Retry-After` says, until a burst admits none (at most 6); every status.
/// A burst far faster than a lease round trip is partly refused while the leases refill; the budget it did not
/// use stays for the next.
async fn bursts(a: &Replica, b: &Replica, key: &str, route: &str, total: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let (from_a, from_b) = tokio::join!(half(a, key, route, total / 2), half(b, key, route, total / 2));
        let admitted = from_a.iter().chain(&from_b).filter(|s| **s == 200).count();
        statuses.extend(from_a.into_iter().chain(from_b));
        if admitted == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    statuses
}

async fn half(replica: &Replica, key: &str, route: &str, n: usize) -> Vec<u16> {
    futures::stream::iter((0..n).map(|_| replica.chat(key, route))).buffer_unordered(16).collect().await
}

fn count(statuses: &[u16], status: u16) -> u64 {
    statuses.iter().filter(|s| **s == status).count() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_share_a_targets_rpm() {
    let redis = RedisServer::start().await;
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    let (a, b) = two_replicas(&upstream, &redis).await;
    let statuses = bursts(&a, &b, CLIENT_KEY, "capped", 300).await;
    let calls = upstream.calls("gpt-capped");
    assert!(calls <= 105 + 2 * LEASE, "the upstream saw {calls} calls: over 100 + 5% + a lease per replica");
    assert!(calls >= 100 - 2 * LEASE, "only {calls} calls admitted of 100");
    assert_eq!(count(&statuses, 200), calls, "{statuses:?}");
    assert!(statuses.iter().all(|s| [200, 429].contains(s)), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_share_a_client_keys_rpm() {
    let redis = RedisServer::start().await;
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    let (a, b) = two_replicas(&upstream, &redis).await;
    let statuses = bursts(&a, &b, "team-key", "free", 300).await;
    let admitted = count(&statuses, 200);
    let total = statuses.len() as u64;
    assert!(admitted <= 105 + 2 * LEASE, "{admitted} admitted: over 100 + 5% + a lease per replica");
    assert!(admitted >= 100 - 2 * LEASE, "only {admitted} admitted of 100");
    assert_eq!(count(&statuses, 429), total - admitted, "the rest are refused with 429: {statuses:?}");
    assert_eq!(upstream.calls("gpt-free"), admitted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_redis_each_replica_admits_its_share_of_the_limit() {
    let mut redis = RedisServer::start().await;
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    let (a, b) = two_replicas(&upstream, &redis).await;
    redis.stop();
    within("both say degraded", Duration::from_secs(5), || async { a.degraded().await && b.degraded().await }).await;
    // `solo` has rpm = 10 and two replicas were seen: each admits 5 on its own.
    for replica in [&a, &b] {
        let mut statuses = Vec::new();
        for _ in 0..8 {
            statuses.push(replica.chat("solo-key", "free").await);
        }
        assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    }
    // Requests without a limit are served as ever.
    assert_eq!(a.chat(CLIENT_KEY, "free").await, 200);

    // Redis returns empty: each replica reports what it admitted on its own, so the minute's 10 are spent but
    // for a lease (1) each may take before the other's report arrives.
    redis.restart().await;
    within("both share again", Duration::from_secs(8), || async { !a.degraded().await && !b.degraded().await }).await;
    let mut admitted = 0;
    for replica in [&a, &b, &a, &b, &a, &b] {
        let status = replica.chat("solo-key", "free").await;
        assert!(status == 200 || status == 429, "a request is admitted or refused for the limit, not {status}");
        admitted += usize::from(status == 200);
    }
    assert!(admitted <= 2, "{admitted} of 6 admitted: the use without Redis was not reported");
}
