//! `switchyard chat [--route R] PROMPT`: streams an answer from a running gateway to the terminal.

use std::io::Write;

use anyhow::{Context, bail};
use futures::StreamExt;
use http::Method;
use serde_json::{Value, json};

use super::gateway_http::{GatewayHttp, data_of, json_of};
use crate::cli::ChatArgs;

/// What one streamed chat call produced.
#[derive(Debug, Clone, Default)]
pub struct ChatOutcome {
    /// The answer text.
    pub text: String,
    /// `x-switchyard-target`.
    pub target: String,
    /// `x-switchyard-attempts`.
    pub attempts: String,
    /// `x-switchyard-fallback`.
    pub fallback: bool,
}

/// Sends `prompt` to `model` at `url` with `stream: true`, calling `on_text` for every delta.
pub async fn stream_chat(
    url: &str,
    api_key: Option<&str>,
    model: &str,
    system: Option<&str>,
    prompt: &str,
    mut on_text: impl FnMut(&str),
) -> anyhow::Result<ChatOutcome> {
    let mut messages = Vec::new();
    if let Some(system) = system {
        messages.push(json!({ "role": "system", "content": system }));
    }
    messages.push(json!({ "role": "user", "content": prompt }));
    let body = json!({ "model": model, "stream": true, "messages": messages });
    let response = GatewayHttp::new(url)?.send(Method::POST, "/v1/chat/completions", api_key, Some(&body)).await?;
    let status = response.status();
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let mut outcome = ChatOutcome {
        text: String::new(),
        target: header("x-switchyard-target"),
        attempts: header("x-switchyard-attempts"),
        fallback: header("x-switchyard-fallback") == "true",
    };
    if !status.is_success() {
        let body = json_of(response).await.unwrap_or(Value::Null);
        bail!("the gateway answered {status}: {}", body["error"]["message"].as_str().unwrap_or("no message"));
    }
    let mut bytes = data_of(response);
    let mut pending = String::new();
    let mut done = false;
    while let Some(chunk) = bytes.next().await {
        let chunk = chunk.map_err(anyhow::Error::from_boxed).context("the stream broke")?;
        pending.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = pending.find("\n\n") {
            let event: String = pending.drain(..end + 2).collect();
            for line in event.lines() {
                let Some(data) = line.strip_prefix("data:") else { continue };
                let data = data.trim();
                if data == "[DONE]" {
                    done = true;
                    continue;
                }
                let value: Value = serde_json::from_str(data).context("the gateway sent a malformed event")?;
                if let Some(message) = value["error"]["message"].as_str() {
                    bail!("the stream failed after it started: {message}");
                }
                if let Some(text) = value["choices"][0]["delta"]["content"].as_str() {
                    on_text(text);
                    outcome.text.push_str(text);
                }
            }
        }
    }
    if !done {
        bail!("the stream ended without [DONE]");
    }
    Ok(outcome)
}

/// Runs the command.
pub async fn run(args: ChatArgs) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout();
    let outcome = stream_chat(
        &args.server.url,
        args.api_key.as_deref(),
        &args.route,
        args.system.as_deref(),
        &args.prompt,
        |t| {
            let _ = stdout.write_all(t.as_bytes());
            let _ = stdout.flush();
        },
    )
    .await?;
    let calls: u32 = outcome.attempts.parse().unwrap_or(1);
    let mut stderr = std::io::stderr();
    let _ = writeln!(
        stderr,
        "\n\n-- answered by {} after {calls} attempt{}{}",
        outcome.target,
        if calls == 1 { "" } else { "s" },
        if outcome.fallback { " (fallback)" } else { "" }
    );
    Ok(())
}
