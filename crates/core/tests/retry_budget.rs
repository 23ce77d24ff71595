//! The retry budget: during an outage retries stay a bounded share of traffic; light traffic keeps its retries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{SEC, server_error, shared};
use switchyard::{Backoff, ChatModel, ChatRequest, FallbackManager, ModelFallback, budget::BudgetConfig};
use switchyard_sim::SimModel;

fn manager(primary: &SimModel, secondary: &SimModel, budget: Option<BudgetConfig>) -> FallbackManager {
    FallbackManager::builder()
        .target(ModelFallback::new("sim", "primary").with_max_retries(3), shared(primary))
        .target(ModelFallback::new("sim", "secondary"), shared(secondary))
        .backoff(Backoff::Immediate)
        .breaker(None) // so that every request reaches the primary and only the budget limits retries
        .retry_budget(budget)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn with_the_primary_down_upstream_calls_per_request_stay_under_the_bound() {
    let primary = SimModel::failing("primary", server_error()).keep_requests(false);
    let secondary = SimModel::replying("secondary", "from secondary").keep_requests(false);
    let m = manager(&primary, &secondary, Some(BudgetConfig::RETRY));
    let n = 1000;
    for _ in 0..n {
        let r = m.complete(ChatRequest::user("hi")).await.unwrap();
        assert_eq!(r.served_by.as_deref(), Some("sim/secondary"));
    }
    // Bound: one call per request, plus 20% retries, plus the 100 (ten seconds of the floor) the bucket starts with.
    let per_request = primary.calls() as f64 / f64::from(n);
    assert!(primary.calls() <= 1200 + 100, "{} calls to the primary", primary.calls());
    assert!(per_request >= 1.19, "the budget is used, not just refused: {per_request}");
    let s = m.stats();
    assert!(s.targets["sim/primary"].retries_refused >= 750, "{:?}", s.targets["sim/primary"]);

    // Without a budget the same outage costs four calls per request.
    let unbounded = SimModel::failing("primary", server_error()).keep_requests(false);
    let m = manager(&unbounded, &secondary, None);
    for _ in 0..100 {
        m.complete(ChatRequest::user("hi")).await.unwrap();
    }
    assert_eq!(unbounded.calls(), 400);
}

#[tokio::test(start_paused = true)]
async fn light_traffic_keeps_every_retry_thanks_to_the_floor() {
    let primary = SimModel::failing("primary", server_error());
    let secondary = SimModel::replying("secondary", "from secondary");
    let m = manager(&primary, &secondary, Some(BudgetConfig::RETRY));
    for _ in 0..30 {
        m.complete(ChatRequest::user("hi")).await.unwrap();
        tokio::time::advance(SEC).await;
    }
    assert_eq!(primary.calls(), 30 * 4);
    assert_eq!(m.stats().targets["sim/primary"].retries_refused, 0);
}
