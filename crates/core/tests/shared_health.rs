//! A health registry shared by several managers: one breaker per target id for all of them, one set
//! of settings per target; managers without a registry keep their own health, as before.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{server_error, shared};
use switchyard::{
    ChatModel, ChatRequest, ConfigError, FallbackManager, FallbackManagerBuilder, ModelFallback,
    breaker::{BreakerConfig, BreakerState},
    health::{HealthRegistry, HealthSettings},
};
use switchyard_sim::SimModel;

fn state(m: &FallbackManager, id: &str) -> BreakerState {
    m.list_models().into_iter().find(|t| t.id == id).unwrap().breaker
}

/// A manager over the shared upstream "sick" then its own backup.
fn route(sick: &SimModel, backup: &SimModel, registry: Option<&HealthRegistry>) -> FallbackManager {
    let builder = FallbackManager::builder()
        .target(ModelFallback::new("sim", "sick"), shared(sick))
        .target(ModelFallback::new("sim", backup.name()).with_priority(1), shared(backup));
    with(builder, registry).build().unwrap()
}

fn with(builder: FallbackManagerBuilder, registry: Option<&HealthRegistry>) -> FallbackManagerBuilder {
    match registry {
        Some(registry) => builder.health(registry.clone()),
        None => builder,
    }
}

#[tokio::test(start_paused = true)]
async fn managers_sharing_a_registry_share_a_targets_breaker() {
    let registry = HealthRegistry::new();
    let sick = SimModel::failing("sick", server_error());
    let (a_backup, b_backup) = (SimModel::replying("a", "from a"), SimModel::replying("b", "from b"));
    let a = route(&sick, &a_backup, Some(&registry));
    let b = route(&sick, &b_backup, Some(&registry));
    let direct =
        with(FallbackManager::builder().target(ModelFallback::new("sim", "sick"), shared(&sick)), Some(&registry))
            .build()
            .unwrap();

    for _ in 0..5 {
        a.complete(ChatRequest::user("hi")).await.unwrap();
    }
    assert_eq!(sick.calls(), 5);
    assert_eq!(state(&a, "sim/sick"), BreakerState::Open);
    assert_eq!(state(&b, "sim/sick"), BreakerState::Open, "the other manager sees the same breaker");
    assert_eq!(registry.get("sim/sick").unwrap().breaker_state(), BreakerState::Open);

    let answer = b.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(answer.served_by.as_deref(), Some("sim/b"));
    assert_eq!(sick.calls(), 5, "the other manager skips the open target without a call");

    // A manager with only that target still makes one call (never lost to breakers alone), and no retry.
    let single = with(
        FallbackManager::builder().target(ModelFallback::new("sim", "sick").with_max_retries(3), shared(&sick)),
        Some(&registry),
    )
    .build()
    .unwrap();
    single.complete(ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(sick.calls(), 6, "one call, no retries, while its breaker is open");
    direct.complete(ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(sick.calls(), 7);
}

#[tokio::test(start_paused = true)]
async fn managers_without_a_registry_stay_independent() {
    let sick = SimModel::failing("sick", server_error());
    let (a_backup, b_backup) = (SimModel::replying("a", "from a"), SimModel::replying("b", "from b"));
    let a = route(&sick, &a_backup, None);
    let b = route(&sick, &b_backup, None);
    for _ in 0..5 {
        a.complete(ChatRequest::user("hi")).await.unwrap();
    }
    assert_eq!(state(&a, "sim/sick"), BreakerState::Open);
    assert_eq!(state(&b, "sim/sick"), BreakerState::Closed);
    b.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(sick.calls(), 6, "the other manager still calls it");
}

#[tokio::test(start_paused = true)]
async fn one_target_cannot_have_two_breaker_settings_in_one_registry() {
    let registry = HealthRegistry::new();
    let sick = SimModel::failing("sick", server_error());
    let backup = SimModel::replying("a", "from a");
    route(&sick, &backup, Some(&registry));
    let other = FallbackManager::builder()
        .target(ModelFallback::new("sim", "sick"), shared(&sick))
        .breaker(Some(BreakerConfig::new(2, Duration::from_secs(5))))
        .health(registry.clone())
        .build()
        .unwrap_err();
    assert_eq!(other, ConfigError::SharedHealth { id: "sim/sick".into() });

    let conflict =
        registry.entry("sim/sick", &HealthSettings { retry_budget: None, ..HealthSettings::default() }).unwrap_err();
    assert_eq!(conflict.id, "sim/sick");
    assert_eq!(*conflict.existing, HealthSettings::default());
    assert_eq!(registry.entry("sim/sick", &HealthSettings::default()).unwrap().settings(), &HealthSettings::default());
    assert_eq!(registry.ids(), vec!["sim/a".to_owned(), "sim/sick".to_owned()]);
}

#[tokio::test(start_paused = true)]
async fn a_registry_announces_each_breaker_change_and_remembers_when() {
    let registry = HealthRegistry::new();
    let mut changes = registry.subscribe();
    let sick = SimModel::failing("sick", server_error());
    let backup = SimModel::replying("backup", "fine");
    let manager = route(&sick, &backup, Some(&registry));
    let target = |m: &FallbackManager| m.list_models().into_iter().find(|t| t.id == "sim/sick").unwrap();
    assert_eq!(target(&manager).breaker_since, None, "a breaker that never changed has no since");

    for _ in 0..5 {
        manager.complete(ChatRequest::user("hi")).await.unwrap();
    }
    let opened = changes.try_recv().unwrap();
    assert_eq!((opened.target.as_str(), opened.state), ("sim/sick", BreakerState::Open));
    assert_eq!(target(&manager).breaker_since, Some(opened.at));
    assert_eq!(registry.get("sim/sick").unwrap().breaker_since(), Some(opened.at));

    // The cooldown ends; the next request probes, and the now healthy target closes the breaker.
    tokio::time::advance(Duration::from_secs(31)).await;
    assert_eq!(target(&manager).breaker, BreakerState::HalfOpen);
    assert!(target(&manager).breaker_since.unwrap() > opened.at, "half-open since the cooldown's end");
    sick.set_default(switchyard_sim::Behavior::Reply("back".into()));
    let answer = manager.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(answer.served_by.as_deref(), Some("sim/sick"));
    let probing = changes.try_recv().unwrap();
    assert_eq!(probing.state, BreakerState::HalfOpen);
    let closed = changes.try_recv().unwrap();
    assert_eq!((closed.target.as_str(), closed.state), ("sim/sick", BreakerState::Closed));
    assert!(changes.try_recv().is_err(), "one change each, nothing more");
    assert_eq!(target(&manager).breaker_since, Some(closed.at));
}

#[tokio::test(start_paused = true)]
async fn a_rebuilt_manager_keeps_health_and_the_counters_it_carries_and_a_forgotten_target_starts_fresh() {
    let registry = HealthRegistry::new();
    let sick = SimModel::failing("sick", server_error());
    let backup = SimModel::replying("backup", "ok");
    let old = route(&sick, &backup, Some(&registry));
    for _ in 0..5 {
        old.complete(ChatRequest::user("hi")).await.unwrap();
    }
    assert_eq!(state(&old, "sim/sick"), BreakerState::Open);

    // Rebuilt in another order, carrying the backup's counters but not the sick target's.
    let rebuilt = FallbackManager::builder()
        .target(ModelFallback::new("sim", "backup"), shared(&backup))
        .target(ModelFallback::new("sim", "sick").with_priority(1), shared(&sick))
        .health(registry.clone())
        .carry_stats(&old, |id| id != "sim/sick")
        .build()
        .unwrap();
    assert_eq!(state(&rebuilt, "sim/sick"), BreakerState::Open, "health lives in the registry, by id");
    let stats = rebuilt.stats();
    assert_eq!(stats.total, 5, "the request totals go on");
    assert_eq!(stats.targets["sim/backup"].successes, 5);
    assert_eq!(stats.targets["sim/sick"].attempts, 0, "not carried: starts at zero");

    // A request still finishing on the old manager counts where the rebuilt one reads.
    old.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(rebuilt.stats().targets["sim/backup"].successes, 6);

    registry.forget("sim/sick");
    let fresh = route(&sick, &backup, Some(&registry));
    assert_eq!(state(&fresh, "sim/sick"), BreakerState::Closed, "a forgotten target starts with fresh health");
    assert_eq!(state(&old, "sim/sick"), BreakerState::Open, "managers built before keep the entry they hold");
}
