//! Helpers shared by the agent's integration tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use switchyard::{SharedModel, ToolCall};
use switchyard_agent::{AgentError, AgentEvent, ReactAgent, SharedTool, ToolError, fn_tool};
use switchyard_sim::{Behavior, SimModel};

/// A tool call the scripted model asks for.
#[allow(clippy::needless_pass_by_value)]
pub(crate) fn call(id: &str, name: &str, arguments: serde_json::Value) -> ToolCall {
    ToolCall { id: id.to_owned(), name: name.to_owned(), arguments: arguments.to_string() }
}

/// A scripted model step asking for these calls.
pub(crate) fn asks(calls: Vec<ToolCall>) -> Behavior {
    Behavior::ToolCalls(calls)
}

pub(crate) fn reply(text: &str) -> Behavior {
    Behavior::Reply(text.to_owned())
}

pub(crate) fn shared(model: &SimModel) -> SharedModel {
    Arc::new(model.clone())
}

#[derive(Deserialize)]
pub(crate) struct Calc {
    pub(crate) op: String,
    pub(crate) a: f64,
    pub(crate) b: f64,
}

/// A calculator counting its calls.
pub(crate) fn calculator(calls: Arc<AtomicUsize>) -> SharedTool {
    fn_tool(
        "calculator",
        "Applies add, sub, mul or div to a and b",
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
        move |args: Calc| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                match args.op.as_str() {
                    "add" => Ok(args.a + args.b),
                    "sub" => Ok(args.a - args.b),
                    "mul" => Ok(args.a * args.b),
                    "div" if args.b == 0.0 => Err(ToolError::permanent("division by zero")),
                    "div" => Ok(args.a / args.b),
                    other => Err(ToolError::permanent(format!("unknown op {other}"))),
                }
            }
        },
    )
}

#[derive(Deserialize)]
pub(crate) struct NoArgs {}

/// A clock that always says the same time.
pub(crate) fn clock() -> SharedTool {
    fn_tool("clock", "The current time (UTC)", json!({"type": "object", "properties": {}}), |_: NoArgs| async {
        Ok::<_, ToolError>("2026-11-22T04:00:00Z")
    })
}

/// Collects a stream run: its events, and its error if it failed.
pub(crate) async fn collect(agent: &ReactAgent, input: &str) -> (Vec<AgentEvent>, Option<AgentError>) {
    let mut events = Vec::new();
    let stream = agent.stream(input);
    futures::pin_mut!(stream);
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => events.push(event),
            Err(e) => {
                assert!(stream.next().await.is_none(), "an error is the last item");
                return (events, Some(e));
            }
        }
    }
    (events, None)
}

/// A short label per event, for order assertions (text deltas merged).
pub(crate) fn labels(events: &[AgentEvent]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for event in events {
        let label = match event {
            AgentEvent::ModelSwitched { step, from, to } => format!("{step}:switch {from}->{to}"),
            AgentEvent::TextDelta { step, .. } => format!("{step}:text"),
            AgentEvent::ToolCall { step, call } => format!("{step}:call {}", call.name),
            AgentEvent::ToolResult { step, name, .. } => format!("{step}:result {name}"),
            AgentEvent::Done(_) => "done".to_owned(),
            other => format!("{other:?}"),
        };
        if out.last() != Some(&label) || !label.ends_with(":text") {
            out.push(label);
        }
    }
    out
}
