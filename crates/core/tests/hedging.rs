//! Hedged requests: the next target starts when the first is slow; the first answer (first content
//! chunk for streams) wins, the loser is dropped, and a budget caps the extra calls.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use common::{MS, SEC, server_error, shared};
use futures::StreamExt;
use switchyard::{
    ChatChunk, ChatModel, ChatRequest, ChatResponse, ChatStream, Error, ErrorKind, FallbackManager, ModelFallback,
    attempt::AttemptOutcome,
    budget::BudgetConfig,
    hedge::{HedgeAfter, HedgeConfig},
};
use switchyard_sim::{Behavior, SimModel};
use tokio::time::Instant;

/// Answers after a delay chosen per call; counts calls and calls dropped before they answered.
struct Tailed {
    delay: Box<dyn Fn(usize) -> Duration + Send + Sync>,
    calls: AtomicUsize,
    dropped: Arc<AtomicUsize>,
}

struct CountDrop(Arc<AtomicUsize>, bool);

impl Drop for CountDrop {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Tailed {
    fn new(delay: impl Fn(usize) -> Duration + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Self { delay: Box::new(delay), calls: AtomicUsize::new(0), dropped: Arc::default() })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }

    async fn wait(&self) {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let mut guard = CountDrop(self.dropped.clone(), false);
        tokio::time::sleep((self.delay)(n)).await;
        guard.1 = true;
    }
}

#[async_trait]
impl ChatModel for Tailed {
    async fn complete(&self, _request: ChatRequest) -> Result<ChatResponse, Error> {
        self.wait().await;
        Ok(ChatResponse::text("tailed", "from the tailed primary"))
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, Error> {
        self.wait().await;
        let response = self.complete_now(request);
        Ok(ChatStream::from_items(vec![
            Ok(ChatChunk::text(response)),
            Ok(ChatChunk::Finish { reason: switchyard::FinishReason::Stop }),
        ]))
    }
}

impl Tailed {
    fn complete_now(&self, _request: ChatRequest) -> String {
        "from the tailed primary".to_owned()
    }
}

fn manager(primary: Arc<dyn ChatModel>, secondary: &SimModel, hedge: Option<HedgeConfig>) -> FallbackManager {
    FallbackManager::builder()
        .target(ModelFallback::new("sim", "primary").with_max_retries(2), primary)
        .target(ModelFallback::new("sim", "secondary"), shared(secondary))
        .hedge(hedge)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_slow_primary_is_hedged_after_the_delay_and_the_loser_is_dropped() {
    let primary = Tailed::new(|_| SEC * 2);
    let secondary = SimModel::replying("secondary", "from secondary").latency(MS * 100);
    let m = manager(primary.clone(), &secondary, Some(HedgeConfig::after(MS * 150)));
    let start = Instant::now();
    let r = m.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(start.elapsed(), MS * 250);
    assert_eq!(r.served_by.as_deref(), Some("sim/secondary"));
    assert_eq!((primary.calls(), secondary.calls(), primary.dropped()), (1, 1, 1));
    // Both calls are on record, the winner last; the loser as cancelled.
    assert_eq!(r.attempts.len(), 2);
    assert_eq!(r.attempts[0].target, "sim/primary");
    assert_eq!(r.attempts[0].error_kind(), Some(ErrorKind::Cancelled));
    assert_eq!(r.attempts[1].outcome, AttemptOutcome::Succeeded);
    assert_eq!((r.attempts[0].hedge, r.attempts[1].hedge), (false, true), "the winner is marked as the hedge");
    let s = m.stats();
    assert_eq!((s.targets["sim/secondary"].hedges, s.targets["sim/primary"].cancelled), (1, 1));
    assert_eq!((s.success, s.fallbacks, s.in_flight), (1, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_primary_that_answers_before_the_delay_is_not_hedged() {
    let primary = Tailed::new(|_| MS * 100);
    let secondary = SimModel::replying("secondary", "from secondary");
    let m = manager(primary.clone(), &secondary, Some(HedgeConfig::after(MS * 150)));
    let r = m.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.served_by.as_deref(), Some("sim/primary"));
    assert_eq!(secondary.calls(), 0);
    // Exactly at the delay, the answer in hand wins over starting a hedge.
    let primary = Tailed::new(|_| MS * 150);
    let m = manager(primary.clone(), &secondary, Some(HedgeConfig::after(MS * 150)));
    assert_eq!(m.complete(ChatRequest::user("hi")).await.unwrap().served_by.as_deref(), Some("sim/primary"));
    assert_eq!(secondary.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn for_streams_the_first_content_chunk_wins() {
    let primary = SimModel::replying("primary", "slow words").first_chunk_delay(SEC * 3);
    let secondary = SimModel::replying("secondary", "quick words").first_chunk_delay(MS * 50);
    let m = manager(shared(&primary), &secondary, Some(HedgeConfig::after(MS * 200)));
    let start = Instant::now();
    let stream = m.stream(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(start.elapsed(), MS * 250);
    assert_eq!(stream.served_by.as_deref(), Some("sim/secondary"));
    let text: String = stream
        .filter_map(|c| async move {
            match c.unwrap() {
                ChatChunk::Text { text } => Some(text),
                _ => None,
            }
        })
        .collect()
        .await;
    assert_eq!(text, "quick words");
}

#[tokio::test(start_paused = true)]
async fn when_the_primary_fails_during_the_race_the_hedge_answers_without_primary_retries() {
    let primary = SimModel::failing("primary", server_error()).latency(MS * 300);
    let secondary = SimModel::replying("secondary", "from secondary").latency(MS * 500);
    let m = manager(shared(&primary), &secondary, Some(HedgeConfig::after(MS * 100)));
    let start = Instant::now();
    let r = m.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.served_by.as_deref(), Some("sim/secondary"));
    assert_eq!(start.elapsed(), MS * 600);
    assert_eq!((primary.calls(), secondary.calls()), (1, 1));
    assert_eq!(m.stats().fallbacks, 1, "a target failed and another answered");
}

#[tokio::test(start_paused = true)]
async fn a_failed_hedge_counts_as_the_secondarys_first_attempt() {
    let primary = SimModel::failing("primary", Error::invalid_response("garbled")).latency(MS * 500);
    let secondary = SimModel::new("secondary")
        .script([Behavior::Fail(server_error())])
        .then_default(Behavior::Reply("second try".into()));
    let m = FallbackManager::builder()
        .target(ModelFallback::new("sim", "primary"), shared(&primary))
        .target(ModelFallback::new("sim", "secondary").with_max_retries(1), shared(&secondary))
        .hedge(Some(HedgeConfig::after(MS * 100)))
        .backoff(switchyard::Backoff::Immediate)
        .build()
        .unwrap();
    let r = m.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.message.text(), "second try");
    assert_eq!((primary.calls(), secondary.calls()), (1, 2));
    let retries: Vec<_> = r.attempts.iter().map(|a| (a.target.as_str(), a.retry)).collect();
    assert_eq!(retries, [("sim/secondary", 0), ("sim/primary", 0), ("sim/secondary", 1)]);
}

#[tokio::test(start_paused = true)]
async fn the_budget_caps_hedges_at_a_share_of_requests_plus_a_floor() {
    let primary = Tailed::new(|_| SEC);
    let secondary = SimModel::replying("secondary", "from secondary").latency(MS * 10).keep_requests(false);
    let config = HedgeConfig { after: HedgeAfter::Fixed(MS * 10), budget: BudgetConfig::HEDGE };
    let m = manager(primary.clone(), &secondary, Some(config));
    let start = Instant::now();
    let n = 200;
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let m = m.clone();
            tokio::spawn(async move { m.complete(ChatRequest::user("hi")).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    // 10% of 200 requests, 1 per second of elapsed time, and the 10 the bucket starts with.
    let bound = (0.1 * n as f64 + elapsed + 10.0).floor() as usize;
    assert!(secondary.calls() <= bound, "{} hedges, bound {bound}", secondary.calls());
    assert!(secondary.calls() >= 1);
    assert_eq!(primary.calls(), n);
}

/// p99 of the answer times.
fn p99(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times[(times.len() * 99).div_ceil(100) - 1]
}

#[tokio::test(start_paused = true)]
async fn hedging_at_the_p95_cuts_a_heavy_tail_with_few_extra_calls() {
    // 5% of the primary's calls take 2 s; the rest 20–60 ms. The secondary takes 80 ms.
    let tail = |n: usize| if n % 20 == 7 { SEC * 2 } else { MS * (20 + (n as u32 * 7) % 41) };
    let n = 1000;
    let mut figures = Vec::new();
    for hedge in [None, Some(HedgeConfig::p95())] {
        let primary = Tailed::new(tail);
        let secondary = SimModel::replying("secondary", "from secondary").latency(MS * 80).keep_requests(false);
        let m = manager(primary.clone(), &secondary, hedge);
        let mut times = Vec::new();
        for _ in 0..n {
            let start = Instant::now();
            m.complete(ChatRequest::user("hi")).await.unwrap();
            times.push(start.elapsed());
        }
        let extra = secondary.calls() as f64 / n as f64;
        figures.push((p99(times), extra));
    }
    let (plain, hedged) = (figures[0], figures[1]);
    eprintln!(
        "p99 without hedging {:?}, with p95 hedging {:?}; extra calls {:.1}%",
        plain.0,
        hedged.0,
        hedged.1 * 100.0
    );
    assert_eq!(plain.0, SEC * 2);
    assert!(hedged.0 * 5 <= plain.0, "p99 {:?} vs {:?}", hedged.0, plain.0);
    assert!(hedged.1 <= 0.10, "extra calls {}", hedged.1);
}

#[tokio::test(start_paused = true)]
async fn the_gateway_default_hedges_a_slow_first_token_after_ten_seconds_then_at_the_p95() {
    for streaming in [false, true] {
        // The primary's first answer takes 20 s, the next twenty 100 ms, then 20 s again.
        let primary = Tailed::new(|n| if n == 0 || n == 21 { SEC * 20 } else { MS * 100 });
        let secondary = SimModel::replying("secondary", "from secondary").latency(MS * 50);
        let m = manager(primary.clone(), &secondary, Some(HedgeConfig::p95_or(SEC * 10)));
        let ask = || async {
            let start = Instant::now();
            let served_by = if streaming {
                let mut stream = m.stream(ChatRequest::user("hi")).await.unwrap();
                let served_by = stream.served_by.clone();
                while stream.next().await.is_some() {}
                served_by
            } else {
                m.complete(ChatRequest::user("hi")).await.unwrap().served_by
            };
            (start.elapsed(), served_by.unwrap())
        };
        // Fewer than 20 samples: the hedge starts after the initial 10 s; the primary is cancelled.
        assert_eq!(ask().await, (SEC * 10 + MS * 50, "sim/secondary".to_owned()), "streaming: {streaming}");
        assert_eq!((primary.calls(), primary.dropped()), (1, 1));
        for _ in 0..20 {
            assert_eq!(ask().await, (MS * 100, "sim/primary".to_owned()));
        }
        // Twenty fast answers: the p95 (100 ms) takes over.
        assert_eq!(ask().await, (MS * 150, "sim/secondary".to_owned()));
        assert_eq!((primary.calls(), primary.dropped(), secondary.calls()), (22, 2, 2));
    }
}
