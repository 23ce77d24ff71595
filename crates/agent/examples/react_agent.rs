//! A ReAct agent with two tools (a calculator and a clock) over a `FallbackManager` whose primary
//! fails from the agent's second step on, printing each event as it streams.
//!
//! ```text
//! cargo run -p switchyard-agent --example react_agent
//! ```
//!
//! With `OPENAI_API_KEY` and/or `ANTHROPIC_API_KEY` set it uses the real providers (`OPENAI_MODEL`,
//! `OPENAI_BASE_URL`, `ANTHROPIC_MODEL` override the defaults). Without keys it starts Switchyard's
//! simulated upstream on 127.0.0.1 (an OpenAI-shaped primary, an Anthropic-shaped backup), so it
//! runs on a fresh machine with no network.
#![allow(clippy::print_stdout)] // An example prints what happens.

use std::error::Error as StdError;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use switchyard::{
    ChatModel, ChatRequest, ChatResponse, ChatStream, Error, FallbackManager, ModelFallback, SharedModel,
};
use switchyard_agent::{AgentEvent, ReactAgent, SharedTool, ToolError, ToolErrorInterceptor, ToolInterceptor, fn_tool};
use switchyard_providers::{ApiKey, ProviderConfig, ProviderKind, build_model};
use switchyard_sim::{DEFAULT_API_KEY, Upstream, UpstreamConfig};

#[derive(Deserialize)]
struct Calc {
    op: String,
    a: f64,
    b: f64,
}

fn calculator() -> SharedTool {
    fn_tool(
        "calculator",
        "Computes `a op b` for op in add, sub, mul, div",
        json!({
            "type": "object",
            "properties": {
                "op": {"type": "string", "enum": ["add", "sub", "mul", "div"]},
                "a": {"type": "number"},
                "b": {"type": "number"}
            },
            "required": ["op", "a", "b"],
            "additionalProperties": false
        }),
        |c: Calc| async move {
            match c.op.as_str() {
                "add" => Ok(c.a + c.b),
                "sub" => Ok(c.a - c.b),
                "mul" => Ok(c.a * c.b),
                "div" if c.b != 0.0 => Ok(c.a / c.b),
                "div" => Err(ToolError::permanent("division by zero")),
                other => Err(ToolError::permanent(format!("unknown op `{other}`"))),
            }
        },
    )
}

#[derive(Deserialize)]
struct NoArgs {}

fn clock() -> SharedTool {
    fn_tool(
        "clock",
        "The current date and time in UTC (ISO 8601)",
        json!({"type": "object", "properties": {}}),
        |_: NoArgs| async {
            let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|e| ToolError::permanent(e.to_string()))?;
            Ok::<_, ToolError>(iso8601(secs.as_secs()))
        },
    )
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (Howard Hinnant's civil-from-days).
fn iso8601(secs: u64) -> String {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Wraps a model and simulates its outage from the `from`th call on (a 503), so the demo shows a
/// fallback in the middle of the loop even against healthy providers.
struct OutageFrom {
    inner: SharedModel,
    from: usize,
    calls: AtomicUsize,
}

impl OutageFrom {
    fn check(&self) -> Result<(), Error> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= self.from { Err(Error::server(503, "simulated outage of the primary")) } else { Ok(()) }
    }
}

#[async_trait]
impl ChatModel for OutageFrom {
    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, Error> {
        self.check()?;
        self.inner.complete(request).await
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, Error> {
        self.check()?;
        self.inner.stream(request).await
    }
}

fn provider(kind: ProviderKind, name: &str, model: &str, base_url: Option<String>, key: &str) -> ProviderConfig {
    let mut config = ProviderConfig::new(kind, name, model);
    if let Some(url) = base_url {
        config.base_url = url;
    }
    config.api_key = Some(ApiKey::new(key));
    config
}

/// Primary and backup: real providers when keys are set, else the simulated upstream.
async fn targets() -> Result<(ProviderConfig, ProviderConfig, Option<Upstream>), Box<dyn StdError>> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let openai = env("OPENAI_API_KEY").map(|key| {
        let model = env("OPENAI_MODEL").unwrap_or_else(|| "gpt-4o-mini".into());
        provider(ProviderKind::OpenAi, "openai", &model, env("OPENAI_BASE_URL"), &key)
    });
    let anthropic = env("ANTHROPIC_API_KEY").map(|key| {
        let model = env("ANTHROPIC_MODEL").unwrap_or_else(|| "claude-3-5-haiku-latest".into());
        provider(ProviderKind::Anthropic, "anthropic", &model, None, &key)
    });
    match (openai, anthropic) {
        (Some(primary), Some(backup)) => Ok((primary, backup, None)),
        (Some(only), None) | (None, Some(only)) => Ok((only.clone(), only, None)),
        (None, None) => {
            let upstream = Upstream::start(UpstreamConfig::default()).await?;
            println!("no API keys set: using the simulated upstream at {}\n", upstream.url());
            let primary = provider(
                ProviderKind::OpenAi,
                "sim-openai",
                "sim-primary",
                Some(upstream.openai_base_url()),
                DEFAULT_API_KEY,
            );
            let backup = provider(
                ProviderKind::Anthropic,
                "sim-anthropic",
                "sim-backup",
                Some(upstream.anthropic_base_url()),
                DEFAULT_API_KEY,
            );
            Ok((primary, backup, Some(upstream)))
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn StdError>> {
    let (primary, backup, upstream) = targets().await?;
    let primary_id = format!("{}/{}", primary.name, primary.model);
    // With one key the backup is the same model; it still needs its own id.
    let mut backup_id = format!("{}/{}", backup.name, backup.model);
    if backup_id == primary_id {
        backup_id.push_str("#backup");
    }
    let manager = FallbackManager::builder()
        .target(
            ModelFallback::new(&primary.name, &primary.model),
            Arc::new(OutageFrom { inner: build_model(primary)?, from: 2, calls: AtomicUsize::new(0) }),
        )
        .target(
            ModelFallback::new(&backup.name, &backup.model).with_id(&backup_id).with_priority(1),
            build_model(backup)?,
        )
        .build()?;
    println!("targets: {primary_id} (fails from its 2nd call on), then {backup_id}\n");

    let agent = ReactAgent::builder()
        .model(Arc::new(manager))
        .system_prompt("You are a careful assistant. Use the tools for arithmetic and for the time.")
        .tools([calculator(), clock()])
        .tool_interceptors([Arc::new(ToolErrorInterceptor::new()) as Arc<dyn ToolInterceptor>])
        .max_iterations(6)
        .build()?;

    let question = "Use the tools: what is 12.5 * 8, and what time is it now (UTC)?";
    println!("user: {question}\n");
    let mut events = Box::pin(agent.stream(question));
    let mut at_line_start = true;
    while let Some(event) = events.next().await {
        let event = event?;
        if !at_line_start && !matches!(event, AgentEvent::TextDelta { .. }) {
            println!();
            at_line_start = true;
        }
        match event {
            AgentEvent::ModelSwitched { step, from, to } => println!("[step {step}] model switched: {from} -> {to}"),
            AgentEvent::TextDelta { step, text } => {
                if at_line_start {
                    print!("[step {step}] text: ");
                    at_line_start = false;
                }
                print!("{text}");
            }
            AgentEvent::ToolCall { step, call } => {
                println!("[step {step}] tool call: {}({})", call.name, call.arguments);
            }
            AgentEvent::ToolResult { step, name, result } => {
                let flag = if result.is_error { " (error)" } else { "" };
                println!("[step {step}] tool result: {name} -> {}{flag}", result.content);
            }
            AgentEvent::Done(output) => {
                println!(
                    "\ndone after {} steps; usage: {} in, {} out",
                    output.steps.len(),
                    output.usage.input_tokens,
                    output.usage.output_tokens
                );
                for (i, step) in output.steps.iter().enumerate() {
                    let attempts: Vec<String> = step.attempts.iter().map(ToString::to_string).collect();
                    println!(
                        "  step {}: served by {}; attempts: {}",
                        i + 1,
                        step.served_by.as_deref().unwrap_or("?"),
                        attempts.join("; ")
                    );
                }
                println!("answer: {}", output.text);
            }
            other => println!("{other:?}"),
        }
    }
    drop(events);
    if let Some(upstream) = upstream {
        upstream.shutdown().await?;
    }
    Ok(())
}
