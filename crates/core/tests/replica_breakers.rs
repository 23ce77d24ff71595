//! What a gateway sharing breakers between replicas drives in the engine: holding a breaker open until
//! another replica's end time, closing it when another replica's probe succeeded, and claiming the one
//! probe among replicas. Remote-applied changes are announced as remote, so a sharer never echoes them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, SystemTime};

use common::{server_error, shared};
use switchyard::{
    ChatModel, ChatRequest, FallbackManager, ModelFallback,
    breaker::{BreakerConfig, BreakerState},
    health::HealthRegistry,
};
use switchyard_sim::{Behavior, SimModel};

/// A manager over "up" (primary, breaker after 2 failures for 10 s) then "backup", sharing `registry`.
fn route(up: &SimModel, backup: &SimModel, registry: &HealthRegistry) -> FallbackManager {
    FallbackManager::builder()
        .target(ModelFallback::new("sim", "up"), shared(up))
        .target(ModelFallback::new("sim", "backup").with_priority(1), shared(backup))
        .breaker(Some(BreakerConfig::new(2, Duration::from_secs(10))))
        .health(registry.clone())
        .build()
        .unwrap()
}

async fn served_by(manager: &FallbackManager) -> String {
    manager.complete(ChatRequest::user("hi")).await.unwrap().served_by.unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_remote_open_is_held_until_its_end_time_without_a_call_and_announced_as_remote() {
    let registry = HealthRegistry::new();
    let (up, backup) = (SimModel::replying("up", "fine"), SimModel::replying("backup", "spare"));
    let manager = route(&up, &backup, &registry);
    let mut changes = registry.subscribe();
    let health = registry.get("sim/up").unwrap();

    let until = SystemTime::now() + Duration::from_secs(5);
    health.hold_open_until(until);
    let change = changes.try_recv().unwrap();
    assert_eq!((change.state, change.until, change.remote), (BreakerState::Open, Some(until), true));
    assert_eq!(health.open_until(), Some(until));
    assert_eq!(served_by(&manager).await, "sim/backup");
    assert_eq!(up.calls(), 0, "an open held for another replica makes no call");

    // An earlier end never shortens it.
    health.hold_open_until(until - Duration::from_secs(3));
    assert_eq!(health.open_until(), Some(until));
    assert!(changes.try_recv().is_err(), "already open: nothing new to announce");

    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(health.breaker_state(), BreakerState::HalfOpen);
    assert_eq!(served_by(&manager).await, "sim/up", "claims off: the next request probes");
    assert_eq!(health.breaker_state(), BreakerState::Closed);
    let local: Vec<_> = std::iter::from_fn(|| changes.try_recv().ok()).collect();
    assert!(local.iter().all(|c| !c.remote), "the probe and its close happened here: {local:?}");
}

#[tokio::test(start_paused = true)]
async fn a_local_open_carries_its_end_time_and_a_remote_close_closes_it() {
    let registry = HealthRegistry::new();
    let (up, backup) = (SimModel::failing("up", server_error()), SimModel::replying("backup", "spare"));
    let manager = route(&up, &backup, &registry);
    let mut changes = registry.subscribe();
    let before = SystemTime::now();
    served_by(&manager).await;
    served_by(&manager).await;
    let opened = changes.try_recv().unwrap();
    assert_eq!((opened.state, opened.remote), (BreakerState::Open, false));
    let until = opened.until.unwrap();
    assert!(until >= before + Duration::from_secs(10), "the cooldown's end: {until:?}");
    assert_eq!(registry.get("sim/up").unwrap().open_until(), Some(until));

    registry.get("sim/up").unwrap().close();
    let closed = changes.try_recv().unwrap();
    assert_eq!((closed.state, closed.remote), (BreakerState::Closed, true));
    up.set_default(Behavior::Reply("back".into()));
    assert_eq!(served_by(&manager).await, "sim/up");
    assert_eq!(registry.get("sim/up").unwrap().open_until(), None);
}

#[tokio::test(start_paused = true)]
async fn with_probe_claims_only_the_claim_holder_probes() {
    let registry = HealthRegistry::new();
    registry.set_probe_claims(true);
    let (up, backup) = (SimModel::replying("up", "fine"), SimModel::replying("backup", "spare"));
    let manager = route(&up, &backup, &registry);
    let health = registry.get("sim/up").unwrap();
    health.hold_open_until(SystemTime::now() + Duration::from_secs(5));
    tokio::time::advance(Duration::from_secs(6)).await;

    assert_eq!(health.breaker_state(), BreakerState::HalfOpen);
    assert_eq!(served_by(&manager).await, "sim/backup", "no claim: another replica may be probing");
    assert_eq!(up.calls(), 0);

    health.allow_probe();
    assert!(health.withdraw_probe(), "no probe runs yet: the claim can be given back");
    assert_eq!(served_by(&manager).await, "sim/backup", "a claim given back lets nobody probe here");
    health.allow_probe();
    assert_eq!(served_by(&manager).await, "sim/up", "the claim holder probes");
    assert_eq!(up.calls(), 1);
    assert_eq!(health.breaker_state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn turning_probe_claims_off_lets_a_waiting_breaker_probe_for_itself() {
    let registry = HealthRegistry::new();
    registry.set_probe_claims(true);
    let (up, backup) = (SimModel::replying("up", "fine"), SimModel::replying("backup", "spare"));
    let manager = route(&up, &backup, &registry);
    let health = registry.get("sim/up").unwrap();
    health.hold_open_until(SystemTime::now() + Duration::from_secs(5));
    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(served_by(&manager).await, "sim/backup");

    registry.set_probe_claims(false);
    assert_eq!(served_by(&manager).await, "sim/up");
    assert_eq!(health.breaker_state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_new_open_period_needs_a_new_claim() {
    let registry = HealthRegistry::new();
    registry.set_probe_claims(true);
    let (up, backup) = (SimModel::failing("up", server_error()), SimModel::replying("backup", "spare"));
    let manager = route(&up, &backup, &registry);
    let health = registry.get("sim/up").unwrap();
    health.hold_open_until(SystemTime::now() + Duration::from_secs(5));
    tokio::time::advance(Duration::from_secs(6)).await;
    health.allow_probe();
    assert_eq!(served_by(&manager).await, "sim/backup", "the probe failed: reopened");
    assert_eq!(up.calls(), 1);
    assert!(!health.probing());
    tokio::time::advance(Duration::from_secs(11)).await;
    assert_eq!(served_by(&manager).await, "sim/backup", "the reopened period has no claim yet");
    assert_eq!(up.calls(), 1);
}
