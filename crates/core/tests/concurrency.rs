//! Stats stay exact under concurrency; runtime changes while requests are in flight are safe.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{auth_error, server_error, shared};
use switchyard::{Backoff, ChatModel, ChatRequest, FallbackManager, ModelFallback};
use switchyard_sim::SimModel;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_with_mixed_outcomes_add_up() {
    let latency = Duration::from_millis(20);
    let a = SimModel::new("a").fault_rate(0.5, server_error()).seed(1).latency(latency).keep_requests(false);
    let b = SimModel::new("b").fault_rate(0.4, auth_error()).seed(2).latency(latency).keep_requests(false);
    let c = SimModel::new("c").fault_rate(0.3, server_error()).seed(3).latency(latency).keep_requests(false);
    let m = FallbackManager::builder()
        .target(ModelFallback::new("sim", "a").with_max_retries(1), shared(&a))
        .target(ModelFallback::new("sim", "b"), shared(&b))
        .target(ModelFallback::new("sim", "c"), shared(&c))
        .backoff(Backoff::Constant { delay: Duration::from_millis(1) })
        .build()
        .unwrap();

    let mut tasks = Vec::new();
    let started: Arc<Vec<AtomicBool>> = Arc::new((0..1000).map(|_| AtomicBool::new(false)).collect());
    for i in 0..1000 {
        let m = m.clone();
        let started = started.clone();
        tasks.push(tokio::spawn(async move {
            // Set in the same poll that starts the request, so an abort cannot fall between the two.
            started[i].store(true, Ordering::SeqCst);
            let stream = i % 2 == 1;
            if stream {
                match m.stream(ChatRequest::user("hi")).await {
                    Ok(s) => s.collect_response().await,
                    Err(e) => Err(e),
                }
            } else {
                m.complete(ChatRequest::user("hi")).await
            }
        }));
    }
    // Once all have started (each call takes 20 ms), abandon every 7th request, wherever it is.
    for _ in 0..1000 {
        if started.iter().all(|s| s.load(Ordering::SeqCst)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for task in tasks.iter().step_by(7) {
        task.abort();
    }

    let (mut ok, mut failed, mut cancelled, mut fell_back) = (0u64, 0u64, 0u64, 0u64);
    let mut never_started = 0;
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await {
            Ok(Ok(r)) => {
                ok += 1;
                let called: BTreeSet<_> =
                    r.attempts.iter().filter(|a| a.was_called()).map(|a| a.target.clone()).collect();
                fell_back += u64::from(called.len() > 1);
            }
            Ok(Err(e)) => {
                failed += 1;
                let called: BTreeSet<_> =
                    e.attempts().iter().filter(|a| a.was_called()).map(|a| a.target.clone()).collect();
                fell_back += u64::from(called.len() > 1);
            }
            Err(e) => {
                assert!(e.is_cancelled());
                if started[i].load(Ordering::SeqCst) {
                    cancelled += 1;
                } else {
                    never_started += 1;
                }
            }
        }
    }
    eprintln!("ok {ok} failed {failed} cancelled {cancelled} never started {never_started} fell back {fell_back}");
    assert!(ok > 0 && failed > 0 && cancelled > 0, "want mixed outcomes: {ok} {failed} {cancelled}");

    let s = m.stats();
    assert_eq!(s.total + never_started, 1000);
    assert_eq!(s.total, s.success + s.failed + s.cancelled);
    assert_eq!((s.success, s.failed, s.cancelled, s.in_flight), (ok, failed, cancelled, 0));
    // Abandoned requests may or may not have fallen back before they were dropped.
    assert!(s.fallbacks >= fell_back && s.fallbacks <= fell_back + cancelled, "{} vs {fell_back}", s.fallbacks);

    let targets = s.targets.values();
    let successes: u64 = targets.clone().map(|t| t.successes).sum();
    let usage: u64 = targets.clone().map(|t| t.usage_count).sum();
    assert_eq!(usage, successes);
    // Every success served a request that ended well, or was abandoned mid-stream.
    assert!(successes >= s.success && successes <= s.success + s.cancelled);
    for (id, t) in &s.targets {
        assert_eq!(t.attempts, t.successes + t.failure_count() + t.cancelled, "{id}: {t:?}");
    }
    assert_eq!(s.targets["sim/a"].attempts as usize, a.calls());
    assert_eq!(s.targets["sim/b"].attempts as usize, b.calls());
    assert_eq!(s.targets["sim/c"].attempts as usize, c.calls());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enabling_and_disabling_while_requests_are_in_flight() {
    let latency = Duration::from_millis(1);
    let a = SimModel::replying("a", "from a").latency(latency).keep_requests(false);
    let b = SimModel::replying("b", "from b").latency(latency).keep_requests(false);
    let m = FallbackManager::builder()
        .target(ModelFallback::new("sim", "a"), shared(&a))
        .target(ModelFallback::new("sim", "b"), shared(&b))
        .build()
        .unwrap();

    let toggler = tokio::spawn({
        let m = m.clone();
        async move {
            for i in 0..200 {
                if i % 2 == 0 { m.disable_model("sim/a") } else { m.enable_model("sim/a") }.unwrap();
                m.set_priority("sim/b", i % 3 - 1).unwrap();
                let _ = m.list_models();
                tokio::task::yield_now().await;
            }
        }
    });
    let mut tasks = Vec::new();
    for _ in 0..300 {
        let m = m.clone();
        tasks.push(tokio::spawn(async move { m.complete(ChatRequest::user("hi")).await }));
    }
    for task in tasks {
        let r = task.await.unwrap().unwrap();
        assert!(["from a", "from b"].contains(&r.message.text().as_str()));
    }
    toggler.await.unwrap();

    // The next request sees the change.
    m.set_priority("sim/b", 5).unwrap();
    m.disable_model("sim/a").unwrap();
    let calls_a = a.calls();
    for _ in 0..5 {
        assert_eq!(m.complete(ChatRequest::user("hi")).await.unwrap().message.text(), "from b");
    }
    assert_eq!(a.calls(), calls_a);
    m.enable_model("sim/a").unwrap();
    assert_eq!(m.complete(ChatRequest::user("hi")).await.unwrap().message.text(), "from a");
    let s = m.stats();
    assert_eq!((s.total, s.success), (306, 306));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resetting_stats_while_requests_run_keeps_them_consistent() {
    let a = SimModel::new("a").fault_rate(0.3, server_error()).seed(9).latency(Duration::from_millis(1));
    let b = SimModel::new("b").latency(Duration::from_millis(1));
    let m = FallbackManager::builder()
        .target(ModelFallback::new("sim", "a"), shared(&a))
        .target(ModelFallback::new("sim", "b"), shared(&b))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let m = m.clone();
        tasks.push(tokio::spawn(async move { m.complete(ChatRequest::user("hi")).await.map(|_| ()) }));
    }
    for _ in 0..20 {
        m.reset_stats();
        let s = m.stats();
        assert_eq!(s.total, s.success + s.failed + s.cancelled);
        tokio::task::yield_now().await;
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let s = m.stats();
    assert_eq!((s.in_flight, s.failed, s.cancelled), (0, 0, 0));
    assert!(s.success <= 200);
    m.reset_stats();
    m.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(m.stats().total, 1);
}
