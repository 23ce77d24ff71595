//! Tiers: targets of equal priority share traffic by weight or by latency, and fall back within the
//! tier before the next one (SPEC-2 section 12).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{MS, SEC, server_error, shared};
use switchyard::{ChatModel, ChatRequest, FallbackManager, ModelFallback, breaker::BreakerConfig, manager::Balance};
use switchyard_sim::SimModel;

fn target(name: &str) -> ModelFallback {
    ModelFallback::new("sim", name)
}

/// Share of `calls` in `total`, in percentage points.
fn share(calls: usize, total: usize) -> f64 {
    calls as f64 * 100.0 / total as f64
}

#[tokio::test]
async fn over_ten_thousand_requests_shares_match_weights_within_three_points() {
    let models: Vec<SimModel> = ["a", "b", "c"].iter().map(|n| SimModel::replying(*n, "ok")).collect();
    let mut builder = FallbackManager::builder().balance(Balance::Weighted).seed(18);
    for (model, weight) in models.iter().zip([1, 2, 7]) {
        builder = builder.target(target(model.name()).with_weight(weight), shared(model));
    }
    let m = builder.build().unwrap();
    for _ in 0..10_000 {
        m.complete(ChatRequest::user("hi")).await.unwrap();
    }
    for (model, expected) in models.iter().zip([10.0, 20.0, 70.0]) {
        let got = share(model.calls(), 10_000);
        assert!((got - expected).abs() <= 3.0, "{}: {got:.1}% of requests, weight share {expected}%", model.name());
    }
}

#[tokio::test(start_paused = true)]
async fn a_five_times_slower_target_gets_clearly_less_but_at_least_five_percent() {
    let fast = SimModel::replying("fast", "ok").latency(100 * MS);
    let slow = SimModel::replying("slow", "ok").latency(500 * MS);
    let m = FallbackManager::builder()
        .balance(Balance::Latency)
        .seed(18)
        .target(target("fast"), shared(&fast))
        .target(target("slow"), shared(&slow))
        .build()
        .unwrap();
    let total = 5_000;
    for _ in 0..total {
        m.complete(ChatRequest::user("hi")).await.unwrap();
    }
    let slow_share = share(slow.calls(), total);
    assert_eq!(fast.calls() + slow.calls(), total);
    assert!(slow_share < 20.0, "the slow target got {slow_share:.1}%");
    assert!(slow_share >= 5.0, "the slow target starved: {slow_share:.1}%");
}

#[tokio::test(start_paused = true)]
async fn busy_targets_get_less_under_latency_balancing() {
    // `a` is faster, so one request at a time goes to it; 20 at once spread to `b` as `a`'s calls in flight
    // make it costlier.
    let a = SimModel::replying("a", "ok").latency(100 * MS);
    let b = SimModel::replying("b", "ok").latency(150 * MS);
    let m = FallbackManager::builder()
        .balance(Balance::Latency)
        .seed(3)
        .target(target("a"), shared(&a))
        .target(target("b"), shared(&b))
        .build()
        .unwrap();
    while a.calls() == 0 || b.calls() == 0 {
        m.complete(ChatRequest::user("warm")).await.unwrap();
    }
    let (a0, b0) = (a.calls(), b.calls());
    let requests = (0..20).map(|_| m.complete(ChatRequest::user("hi")));
    futures::future::join_all(requests).await.into_iter().for_each(|r| assert!(r.is_ok()));
    let (a1, b1) = (a.calls() - a0, b.calls() - b0);
    assert_eq!(a1 + b1, 20);
    assert!(a1 >= 8 && b1 >= 5, "20 concurrent requests split {a1}/{b1}");
}

#[tokio::test]
async fn a_failing_target_falls_back_within_its_tier_before_the_next_tier() {
    for balance in [Balance::Weighted, Balance::Latency] {
        let failing = SimModel::failing("failing", server_error());
        let healthy = SimModel::replying("healthy", "ok");
        let next_tier = SimModel::replying("next", "ok");
        let m = FallbackManager::builder()
            .balance(balance)
            .seed(5)
            .breaker(None::<BreakerConfig>)
            .target(target("failing"), shared(&failing))
            .target(target("healthy"), shared(&healthy))
            .target(target("next").with_priority(1), shared(&next_tier))
            .build()
            .unwrap();
        for _ in 0..200 {
            let r = m.complete(ChatRequest::user("hi")).await.unwrap();
            assert_eq!(r.served_by.as_deref(), Some("sim/healthy"), "{balance:?}");
        }
        assert_eq!(next_tier.calls(), 0, "{balance:?}: the next tier was called");
        assert_eq!(healthy.calls(), 200);
        assert!(failing.calls() >= 10, "{balance:?}: the failing target was never first ({})", failing.calls());
    }
}

#[tokio::test(start_paused = true)]
async fn under_latency_a_disabled_or_open_member_does_not_pile_its_draws_onto_one_other() {
    // Never measured, `a` would cost nothing and win every draw it is in; the request would then go to
    // whichever member follows it, not to the two it should share between.
    for breaker_open in [false, true] {
        let a = match breaker_open {
            true => SimModel::failing("a", server_error()),
            false => SimModel::replying("a", "ok"),
        };
        let b = SimModel::replying("b", "ok").latency(100 * MS);
        let c = SimModel::replying("c", "ok").latency(100 * MS);
        let m = FallbackManager::builder()
            .balance(Balance::Latency)
            .seed(18)
            .breaker(Some(BreakerConfig::new(2, 3600 * SEC)))
            .target(target("a"), shared(&a))
            .target(target("b"), shared(&b))
            .target(target("c"), shared(&c))
            .build()
            .unwrap();
        if breaker_open {
            while a.calls() < 2 {
                m.complete(ChatRequest::user("warm")).await.unwrap();
            }
            let a_listed = m.list_models().into_iter().find(|t| t.id == "sim/a").unwrap();
            assert_eq!(a_listed.breaker.as_str(), "open");
        } else {
            m.disable_model("sim/a").unwrap();
        }
        let (a0, b0, c0) = (a.calls(), b.calls(), c.calls());
        let total = 2_000;
        for _ in 0..total {
            m.complete(ChatRequest::user("hi")).await.unwrap();
        }
        let (bn, cn) = (b.calls() - b0, c.calls() - c0);
        assert_eq!((a.calls() - a0, bn + cn), (0, total), "breaker open: {breaker_open}");
        let (b_share, c_share) = (share(bn, total), share(cn, total));
        assert!(b_share > 35.0 && c_share > 35.0, "breaker open: {breaker_open}: b got {b_share:.1}%, c {c_share:.1}%");
    }
}

#[tokio::test]
async fn a_weight_of_zero_is_refused() {
    let a = SimModel::replying("a", "ok");
    let err = FallbackManager::builder().target(target("a").with_weight(0), shared(&a)).build().unwrap_err();
    assert!(err.to_string().contains("weight"), "{err}");
}
