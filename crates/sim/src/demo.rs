//! The model-fallback walkthrough of the Go seed (its five examples), on simulated models.
//!
//! The example `model_fallback` prints it; the gateway's `demo` command may too. It writes its report
//! through a callback so that a caller can print as it goes (streamed text shows chunk by chunk) or
//! collect it.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use switchyard::{
    Backoff, ChatChunk, ChatModel, ChatRequest, Error, FallbackManager, ModelFallback,
    attempt::{Attempt, AttemptOutcome},
    stats::StatsSnapshot,
};

use crate::{Behavior, SimModel};

/// What every simulated model answers in the walkthrough.
pub const DEMO_ANSWER: &str =
    "Artificial intelligence is technology that lets computers imitate intelligent human behaviour.";

/// The walkthrough's question.
pub const DEMO_QUESTION: &str = "What is artificial intelligence? Answer in one sentence.";

/// The key outcomes of the walkthrough, for tests and callers that want more than the text.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    /// The target that served each request, in order (examples 1, 2, 4 and 5).
    pub served_by: Vec<String>,
    /// The attempts of example 5 (retries of the primary, then the fallback).
    pub retry_attempts: Vec<Attempt>,
    /// Calls each simulated model received: primary, second, third.
    pub calls: [usize; 3],
    /// The manager's stats at the end.
    pub stats: StatsSnapshot,
}

/// The three targets of the seed, as `(provider, model, priority, max_retries)`.
const TARGETS: [(&str, &str, i32, u32); 3] =
    [("anthropic", "claude-sonnet-4-5", 1, 2), ("openai", "gpt-4o", 2, 1), ("deepseek", "deepseek-chat", 3, 0)];

/// Runs the five examples, writing the report through `out`. Takes about 1.5 s of (tokio) time: the
/// retry example waits the seed's linear backoff (500 ms, then 1 s).
pub async fn model_fallback_demo(mut out: impl FnMut(&str)) -> Result<DemoSummary, Error> {
    let models: Vec<SimModel> = TARGETS
        .iter()
        .map(|(provider, model, _, _)| {
            SimModel::replying(format!("{provider}/{model}"), DEMO_ANSWER)
                .latency(Duration::from_millis(20))
                .chunk_delay(Duration::from_millis(25))
        })
        .collect();
    let mut builder = FallbackManager::builder().backoff(Backoff::linear());
    for ((provider, model, priority, retries), sim) in TARGETS.iter().zip(&models) {
        let target = ModelFallback::new(*provider, *model).with_priority(*priority).with_max_retries(*retries);
        builder = builder.target(target, Arc::new(sim.clone()));
    }
    let manager = builder.build().map_err(|e| Error::invalid_request(e.to_string(), None))?;
    let primary = ModelFallback::new(TARGETS[0].0, TARGETS[0].1).id();
    let mut served_by = Vec::new();
    let request = || ChatRequest::user(DEMO_QUESTION).with_system("You are a concise assistant.");

    out("=== Model Fallback example ===\n\n");

    out("Example 1: non-streaming request\n---\n");
    let response = manager.complete(request()).await?;
    out(&success_line(&response.attempts, false));
    out(&format!("Response: {}\n\n", response.message.text()));
    served_by.extend(response.served_by);

    out("Example 2: streaming request\n---\n");
    let mut stream = manager.stream(request()).await?;
    out(&success_line(&stream.attempts, true));
    served_by.extend(stream.served_by.clone());
    out("Response: ");
    while let Some(chunk) = stream.next().await {
        if let ChatChunk::Text { text } = chunk? {
            out(&text);
        }
    }
    out("\n\n");

    out("Example 3: stats\n---\n");
    out(&stats_block(&manager.stats()));
    out("\n");

    out("Example 4: managing models at runtime\n---\nCurrent models:\n");
    out(&model_list(&manager));
    out(&format!("\nDisabling the primary model ({primary})...\n"));
    manager.disable_model(&primary).map_err(|e| Error::invalid_request(e.to_string(), None))?;
    let response = manager.complete(request()).await?;
    out(&success_line(&response.attempts, false));
    out(&format!("Response from the fallback model: {}\n", response.message.text()));
    served_by.extend(response.served_by);
    out("\nRe-enabling the primary model...\n");
    manager.enable_model(&primary).map_err(|e| Error::invalid_request(e.to_string(), None))?;
    out(&model_list(&manager));
    out("\n");

    out("Example 5: automatic retry and fallback\n---\n");
    out("When the primary model fails, the manager automatically:\n");
    out("1. retries the primary model (up to its max_retries, with backoff)\n");
    out("2. falls back to the next model when every retry failed\n");
    out("3. repeats this until a model answers or all have failed\n\n");
    let failures = usize::try_from(TARGETS[0].3).unwrap_or(0) + 1;
    for _ in 0..failures {
        models[0].push(Behavior::Fail(Error::server(503, "simulated outage")));
    }
    out(&format!("The primary now fails its next {failures} calls with HTTP 503.\n"));
    let started = tokio::time::Instant::now();
    let response = manager.complete(request()).await?;
    let took = started.elapsed();
    for attempt in &response.attempts {
        out(&format!("  attempt: {}\n", describe(attempt)));
    }
    out(&success_line(&response.attempts, false));
    out(&format!("Answered after {} ms, backoff waits included (linear: 500 ms, then 1 s).\n", took.as_millis()));
    out(&format!("Response: {}\n\n", response.message.text()));
    served_by.extend(response.served_by.clone());

    let stats = manager.stats();
    out("=== Final stats ===\n");
    out(&format!("Total requests: {}\n", stats.total));
    let rate = if stats.total == 0 { 0.0 } else { 100.0 * stats.success as f64 / stats.total as f64 };
    out(&format!("Success rate: {rate:.2}%\n"));
    out(&format!("Fallbacks: {}\n", stats.fallbacks));
    out("\nModel usage:\n");
    out(&usage_lines(&stats));

    Ok(DemoSummary {
        served_by,
        retry_attempts: response.attempts,
        calls: [models[0].calls(), models[1].calls(), models[2].calls()],
        stats,
    })
}

/// The seed's log line for the attempt that answered.
fn success_line(attempts: &[Attempt], stream: bool) -> String {
    let Some(last) = attempts.last() else {
        return "[ModelFallback] Success\n".to_owned();
    };
    let mode = if stream { "stream, " } else { "" };
    format!("[ModelFallback] Success with model {} ({mode}retry: {})\n", last.target, last.retry)
}

fn describe(attempt: &Attempt) -> String {
    match &attempt.outcome {
        AttemptOutcome::Succeeded => format!("{} (retry {}) succeeded", attempt.target, attempt.retry),
        AttemptOutcome::Failed { kind, message } => {
            format!("{} (retry {}) failed: {kind}: {message}", attempt.target, attempt.retry)
        }
        AttemptOutcome::Skipped { reason } => format!("{} skipped: {reason}", attempt.target),
    }
}

fn stats_block(stats: &StatsSnapshot) -> String {
    format!(
        "Total requests: {}\nSuccessful requests: {}\nFailed requests: {}\nFallbacks: {}\n\nModel usage:\n{}",
        stats.total,
        stats.success,
        stats.failed,
        stats.fallbacks,
        usage_lines(stats)
    )
}

fn usage_lines(stats: &StatsSnapshot) -> String {
    stats
        .targets
        .iter()
        .filter(|(_, t)| t.usage_count > 0)
        .map(|(id, t)| format!("  {id}: {} requests\n", t.usage_count))
        .collect()
}

fn model_list(manager: &FallbackManager) -> String {
    manager
        .list_models()
        .iter()
        .map(|m| {
            format!(
                "  [{}] {} - priority: {}, retries: {}{}\n",
                if m.enabled { "enabled" } else { "disabled" },
                m.id,
                m.priority,
                m.max_retries,
                if m.is_current { " (current)" } else { "" }
            )
        })
        .collect()
}
