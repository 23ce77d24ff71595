//! [`SimModel`]: an in-process [`ChatModel`] with scripted outcomes, random faults and delays.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use switchyard::{ChatModel, ChatRequest, ChatResponse, ChatStream, Error};

use crate::behavior::{Behavior, DEFAULT_REPLY, Outcome, Plan, Step};

/// A simulated model for tests and demos.
///
/// Each call takes the next [`Behavior`] of its script; once the script is used up, calls get the default
/// behaviour ([`SimModel::then_default`]), replaced by a random fault at the configured rate. Clones share the
/// script, the counters and the recorded requests, so a test can keep a handle after moving one into an engine.
///
/// Timing (all through `tokio::time`, so paused-time tests work): every call waits `latency` first (the time to
/// the response headers); a stream then waits `first_chunk_delay` before its first item and `chunk_delay` before
/// each later content chunk or error. `complete` waits as long as the whole stream would have.
#[derive(Clone)]
pub struct SimModel {
    config: Arc<Config>,
    state: Arc<State>,
}

#[derive(Clone)]
struct Config {
    name: String,
    latency: Duration,
    first_chunk_delay: Duration,
    chunk_delay: Duration,
    fault: Option<(f64, Error)>,
    seed: u64,
    keep_requests: bool,
}

struct State {
    calls: AtomicUsize,
    script: Mutex<VecDeque<Behavior>>,
    default: Mutex<Behavior>,
    requests: Mutex<Vec<ChatRequest>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not make the simulation unusable; the data stays consistent per operation.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SimModel {
    /// A model that answers every call with [`DEFAULT_REPLY`], instantly. `name` is the response's `model`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            config: Arc::new(Config {
                name: name.into(),
                latency: Duration::ZERO,
                first_chunk_delay: Duration::ZERO,
                chunk_delay: Duration::ZERO,
                fault: None,
                seed: rand::random(),
                keep_requests: true,
            }),
            state: Arc::new(State {
                calls: AtomicUsize::new(0),
                script: Mutex::new(VecDeque::new()),
                default: Mutex::new(Behavior::Reply(DEFAULT_REPLY.to_owned())),
                requests: Mutex::new(Vec::new()),
            }),
        }
    }

    /// A model that answers every call with this text.
    pub fn replying(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self::new(name).then_default(Behavior::Reply(text.into()))
    }

    /// A model whose every call fails with this error.
    pub fn failing(name: impl Into<String>, error: Error) -> Self {
        Self::new(name).then_default(Behavior::Fail(error))
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// The behaviours of the next calls, in order (replaces any script not yet used).
    pub fn script(self, behaviors: impl IntoIterator<Item = Behavior>) -> Self {
        *lock(&self.state.script) = behaviors.into_iter().collect();
        self
    }

    /// The behaviour of every call after the script (default: reply with [`DEFAULT_REPLY`]).
    pub fn then_default(self, behavior: Behavior) -> Self {
        self.set_default(behavior);
        self
    }

    /// Time before every answer (the response headers, for a stream).
    pub fn latency(mut self, latency: Duration) -> Self {
        self.config_mut().latency = latency;
        self
    }

    /// Time between the stream's start and its first item.
    pub fn first_chunk_delay(mut self, delay: Duration) -> Self {
        self.config_mut().first_chunk_delay = delay;
        self
    }

    /// Time before each later content chunk (or error) of a stream.
    pub fn chunk_delay(mut self, delay: Duration) -> Self {
        self.config_mut().chunk_delay = delay;
        self
    }

    /// After the script, each call fails with `error` with probability `rate` (clamped to 0..=1).
    pub fn fault_rate(mut self, rate: f64, error: Error) -> Self {
        let rate = if rate.is_nan() { 0.0 } else { rate.clamp(0.0, 1.0) };
        self.config_mut().fault = Some((rate, error));
        self
    }

    /// Seed for the random faults: the same seed gives the same faulty call numbers.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config_mut().seed = seed;
        self
    }

    /// Whether to record requests for [`SimModel::requests`] (default true; turn off for long benchmarks).
    pub fn keep_requests(mut self, keep: bool) -> Self {
        self.config_mut().keep_requests = keep;
        self
    }

    /// Appends behaviours to the script at run time (shared by all clones).
    pub fn push(&self, behavior: Behavior) {
        lock(&self.state.script).push_back(behavior);
    }

    /// Replaces the behaviour after the script at run time (shared by all clones).
    pub fn set_default(&self, behavior: Behavior) {
        *lock(&self.state.default) = behavior;
    }

    /// The name given at construction.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Calls made so far (`complete` and `stream` alike).
    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// Copies of the requests received, in order of arrival.
    pub fn requests(&self) -> Vec<ChatRequest> {
        lock(&self.state.requests).clone()
    }

    /// The last request received.
    pub fn last_request(&self) -> Option<ChatRequest> {
        lock(&self.state.requests).last().cloned()
    }

    /// Counts the call and picks its behaviour; returns the call's number (from 0).
    fn begin(&self) -> (usize, Behavior) {
        let index = self.state.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(behavior) = lock(&self.state.script).pop_front() {
            return (index, behavior);
        }
        if let Some((rate, error)) = &self.config.fault
            && *rate > 0.0
        {
            // One generator per call number keeps faults reproducible however calls interleave.
            let mut rng =
                SmallRng::seed_from_u64(self.config.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            if rng.random_bool(*rate) {
                return (index, Behavior::Fail(error.clone()));
            }
        }
        (index, lock(&self.state.default).clone())
    }

    fn record(&self, request: ChatRequest) {
        if self.config.keep_requests {
            lock(&self.state.requests).push(request);
        }
    }
}

impl std::fmt::Debug for SimModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimModel").field("name", &self.config.name).field("calls", &self.calls()).finish()
    }
}

async fn wait(delay: Duration) {
    // Skipping zero sleeps keeps instant models instant (a zero sleep still goes through the timer).
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

#[async_trait]
impl ChatModel for SimModel {
    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, Error> {
        let (index, behavior) = self.begin();
        let outcome = behavior.outcome(&request);
        self.record(request);
        let config = &self.config;
        wait(config.latency.saturating_add(behavior.delay())).await;
        match outcome {
            Outcome::Answer { message, finish, usage, chunks } => {
                let later = u32::try_from(chunks.saturating_sub(1)).unwrap_or(u32::MAX);
                wait(config.first_chunk_delay + config.chunk_delay.saturating_mul(later)).await;
                Ok(ChatResponse {
                    id: format!("sim-{index}"),
                    model: config.name.clone(),
                    message,
                    finish_reason: finish,
                    usage,
                    served_by: None,
                    attempts: Vec::new(),
                })
            }
            Outcome::Fail(error) => {
                wait(config.first_chunk_delay).await;
                Err(error)
            }
            Outcome::Hang => futures::future::pending().await,
        }
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, Error> {
        let (_, behavior) = self.begin();
        let plan = behavior.plan(&request);
        self.record(request);
        wait(self.config.latency.saturating_add(behavior.delay())).await;
        match plan {
            Plan::Refuse(error) => Err(error),
            Plan::Hang => futures::future::pending().await,
            Plan::Steps(steps) => Ok(play(steps, self.config.first_chunk_delay, self.config.chunk_delay)),
        }
    }
}

/// Turns planned steps into a stream with the configured delays.
fn play(steps: Vec<Step>, first_chunk_delay: Duration, chunk_delay: Duration) -> ChatStream {
    let state = (steps.into_iter(), true);
    let items = futures::stream::unfold(state, move |(mut steps, first)| async move {
        let step = steps.next()?;
        // The first item waits for the first chunk; later content chunks and errors wait between chunks.
        let delay = match &step {
            _ if first => first_chunk_delay,
            Step::Chunk(chunk) if !chunk.is_content() => Duration::ZERO,
            _ => chunk_delay,
        };
        wait(delay).await;
        match step {
            Step::Chunk(chunk) => Some((Ok(chunk), (steps, false))),
            Step::Fail(error) => Some((Err(error), (Vec::new().into_iter(), false))),
            Step::Stall => futures::future::pending().await,
        }
    });
    ChatStream::new(items.boxed())
}
