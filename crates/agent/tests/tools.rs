//! Tool calls: validation, unknown tools, retry, error conversion and the tool interceptor chain.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use serde::Deserialize;
use serde_json::json;
use switchyard::{Part, ToolResult};
use switchyard_agent::{
    AgentError, ReactAgent, SharedTool, ToolCallRequest, ToolCallResponse, ToolError, ToolErrorInterceptor,
    ToolInterceptor, ToolNext, ToolRetryInterceptor, ToolTimeoutInterceptor, fn_tool,
};
use switchyard_sim::SimModel;

/// The tool results the model received in its `n`th request (0-based).
fn results_seen(model: &SimModel, n: usize) -> Vec<ToolResult> {
    model.requests()[n]
        .messages
        .iter()
        .flat_map(|m| &m.content)
        .filter_map(|p| match p {
            Part::ToolResult(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn an_unknown_tool_answers_tool_not_available() {
    let model = SimModel::new("m").script([asks(vec![call("x", "weather", json!({"city": "Bern"}))]), reply("ok")]);
    let agent = ReactAgent::builder().model(shared(&model)).tools([clock()]).build().unwrap();

    let out = agent.invoke("weather?").await.unwrap();

    assert_eq!(out.text, "ok");
    let seen = results_seen(&model, 1);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].content, "Tool not available: weather");
    assert!(seen[0].is_error);
}

#[tokio::test]
async fn schema_invalid_arguments_reach_the_model_not_the_tool() {
    let calls = Arc::new(AtomicUsize::new(0));
    let model = SimModel::new("m").script([
        asks(vec![call("1", "calculator", json!({"op": "pow", "a": "two", "extra": 1}))]),
        asks(vec![switchyard::ToolCall {
            id: "2".into(),
            name: "calculator".into(),
            arguments: "{\"op\": \"add\", ".into(),
        }]),
        asks(vec![call("3", "calculator", json!({"op": "add", "a": 2, "b": 2}))]),
        reply("4"),
    ]);
    let agent = ReactAgent::builder().model(shared(&model)).tools([calculator(calls.clone())]).build().unwrap();

    let out = agent.invoke("2+2").await.unwrap();

    assert_eq!(out.text, "4");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "only the valid call ran");
    let seen = results_seen(&model, 3);
    let bad = &seen[0];
    assert!(bad.is_error);
    for expected in [
        "Invalid arguments for tool `calculator`",
        "missing required property `b`",
        "`/a`: expected number, got string \"two\"",
        "`/op`: expected one of [\"add\", \"sub\", \"mul\", \"div\"]",
        "unknown property `extra`",
    ] {
        assert!(bad.content.contains(expected), "{expected:?} not in {:?}", bad.content);
    }
    assert!(seen[1].is_error && seen[1].content.contains("not valid JSON"), "{:?}", seen[1]);
    assert_eq!((seen[2].content.as_str(), seen[2].is_error), ("4.0", false));
}

#[derive(Deserialize)]
struct Strict {
    #[allow(dead_code)]
    n: u8,
}

#[tokio::test]
async fn arguments_the_schema_allows_but_serde_refuses_become_a_result() {
    // The schema is looser than the Rust type; the tool's deserialization still guards it.
    let tool = fn_tool("small", "", json!({"type": "object"}), |_: Strict| async { Ok::<_, ToolError>("fine") });
    let model = SimModel::new("m").script([asks(vec![call("1", "small", json!({"n": 300}))]), reply("done")]);
    let agent = ReactAgent::builder().model(shared(&model)).tools([tool]).build().unwrap();

    agent.invoke("go").await.unwrap();

    let seen = results_seen(&model, 1);
    assert!(seen[0].is_error && seen[0].content.starts_with("Invalid arguments for tool `small`"), "{:?}", seen[0]);
}

/// A tool failing `failures` times with a retryable error, then answering.
fn flaky(failures: usize, calls: Arc<AtomicUsize>) -> SharedTool {
    fn_tool("flaky", "fails at first", json!({"type": "object"}), move |_: NoArgs| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        async move { if n < failures { Err(ToolError::failed(format!("backend busy ({n})"))) } else { Ok("ready") } }
    })
}

#[tokio::test(start_paused = true)]
async fn tool_retry_calls_again_with_backoff() {
    let calls = Arc::new(AtomicUsize::new(0));
    let model = SimModel::new("m").script([asks(vec![call("1", "flaky", json!({}))]), reply("done")]);
    let retry = ToolRetryInterceptor::builder()
        .max_attempts(3)
        .initial_delay(Duration::from_secs(1))
        .multiplier(2.0)
        .build()
        .unwrap();
    let agent = ReactAgent::builder()
        .model(shared(&model))
        .tools([flaky(2, calls.clone())])
        .tool_interceptors([Arc::new(retry) as Arc<dyn ToolInterceptor>])
        .build()
        .unwrap();

    let started = tokio::time::Instant::now();
    agent.invoke("go").await.unwrap();

    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(started.elapsed(), Duration::from_secs(3), "waits 1 s, then 2 s");
    let seen = results_seen(&model, 1);
    assert_eq!((seen[0].content.as_str(), seen[0].is_error), ("ready", false));
}

#[tokio::test(start_paused = true)]
async fn exhausted_retries_become_a_readable_error_with_tool_error_outside() {
    let calls = Arc::new(AtomicUsize::new(0));
    let model = SimModel::new("m").script([asks(vec![call("1", "flaky", json!({}))]), reply("I could not reach it.")]);
    let agent = ReactAgent::builder()
        .model(shared(&model))
        .tools([flaky(10, calls.clone())])
        .tool_interceptors([
            Arc::new(ToolErrorInterceptor::new()) as Arc<dyn ToolInterceptor>,
            Arc::new(ToolRetryInterceptor::builder().max_attempts(2).build().unwrap()),
        ])
        .build()
        .unwrap();

    let out = agent.invoke("go").await.unwrap();

    assert_eq!(out.text, "I could not reach it.");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let seen = results_seen(&model, 1);
    assert!(seen[0].is_error);
    assert_eq!(seen[0].content, "Error: tool `flaky` failed: backend busy (1)");
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_are_not_retried_and_without_tool_error_they_end_the_run() {
    let calls = Arc::new(AtomicUsize::new(0));
    let model = SimModel::new("m").script([asks(vec![call("1", "calculator", json!({"op": "div", "a": 1, "b": 0}))])]);
    let agent = ReactAgent::builder()
        .model(shared(&model))
        .tools([calculator(calls.clone())])
        .tool_interceptors([Arc::new(ToolRetryInterceptor::default()) as Arc<dyn ToolInterceptor>])
        .build()
        .unwrap();

    let err = agent.invoke("1/0").await.unwrap_err();

    assert_eq!(calls.load(Ordering::SeqCst), 1, "a permanent error is not retried");
    assert!(matches!(&err, AgentError::Tool { step: 1, name, .. } if name == "calculator"), "{err:?}");
    assert!(err.to_string().contains("division by zero") && err.to_string().contains("ToolErrorInterceptor"));
    assert_eq!(model.calls(), 1);
}

#[tokio::test]
async fn tool_error_lets_the_model_read_the_failure() {
    let model = SimModel::new("m").script([
        asks(vec![call("1", "calculator", json!({"op": "div", "a": 1, "b": 0}))]),
        reply("Division by zero is undefined."),
    ]);
    let agent = ReactAgent::builder()
        .model(shared(&model))
        .tools([calculator(Arc::default())])
        .tool_interceptors([Arc::new(ToolErrorInterceptor::with_formatter(|req: &ToolCallRequest, e: &ToolError| {
            format!("{} said: {e}", req.name)
        })) as Arc<dyn ToolInterceptor>])
        .build()
        .unwrap();

    let out = agent.invoke("1/0").await.unwrap();

    assert_eq!(out.text, "Division by zero is undefined.");
    let seen = results_seen(&model, 1);
    assert_eq!((seen[0].content.as_str(), seen[0].is_error), ("calculator said: division by zero", true));
}

struct Tag {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl ToolInterceptor for Tag {
    fn name(&self) -> &str {
        self.name
    }

    async fn intercept(&self, request: ToolCallRequest, next: ToolNext<'_>) -> Result<ToolCallResponse, ToolError> {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(format!("enter {} {}", self.name, request.name));
        let mut response = next.call(request).await?;
        response.content.push_str(&format!(" <{}", self.name));
        self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(format!("leave {}", self.name));
        Ok(response)
    }
}

#[tokio::test]
async fn tool_interceptors_wrap_every_call_first_registered_outermost() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let model = SimModel::new("m").script([
        asks(vec![call("1", "clock", json!({}))]),
        asks(vec![call("2", "nope", json!({}))]),
        reply("done"),
    ]);
    let agent = ReactAgent::builder()
        .model(shared(&model))
        .tools([clock()])
        .tool_interceptor(Arc::new(Tag { name: "outer", log: log.clone() }))
        .tool_interceptor(Arc::new(Tag { name: "inner", log: log.clone() }))
        .build()
        .unwrap();

    let (_, error) = collect(&agent, "time?").await;

    assert!(error.is_none());
    assert_eq!(
        *log.lock().unwrap(),
        [
            "enter outer clock",
            "enter inner clock",
            "leave inner",
            "leave outer",
            "enter outer nope",
            "enter inner nope",
            "leave inner",
            "leave outer"
        ]
    );
    assert_eq!(results_seen(&model, 1)[0].content, "2026-11-22T04:00:00Z <inner <outer");
    assert_eq!(results_seen(&model, 2)[1].content, "Tool not available: nope <inner <outer");
}

#[tokio::test(start_paused = true)]
async fn a_hung_tool_times_out_and_the_model_can_call_it_again() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    // The first call hangs; the second answers.
    let tool = fn_tool("slow", "hangs at first", json!({"type": "object"}), move |_: NoArgs| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                futures::future::pending::<()>().await;
            }
            Ok::<_, ToolError>("answered")
        }
    });
    let model = SimModel::new("m").script([
        asks(vec![call("1", "slow", json!({}))]),
        asks(vec![call("2", "slow", json!({}))]),
        reply("done"),
    ]);
    let agent = ReactAgent::builder()
        .model(shared(&model))
        .tools([tool])
        .tool_interceptors([
            Arc::new(ToolErrorInterceptor::new()) as Arc<dyn ToolInterceptor>,
            Arc::new(ToolTimeoutInterceptor::new(Duration::from_secs(5))),
        ])
        .build()
        .unwrap();

    let started = tokio::time::Instant::now();
    agent.invoke("go").await.unwrap();

    assert_eq!(started.elapsed(), Duration::from_secs(5));
    let seen = results_seen(&model, 2);
    assert_eq!(seen[0].content, "Error: tool `slow` failed: tool `slow` did not finish within 5000ms");
    assert!(seen[0].is_error);
    assert_eq!((seen[1].content.as_str(), seen[1].is_error), ("answered", false));
}

#[test]
fn tool_retry_settings_out_of_range_are_refused_like_the_model_retry() {
    let err = ToolRetryInterceptor::builder().max_attempts(0).build().err().unwrap();
    assert!(err.to_string().contains("`max_attempts`"), "{err}");
    let err = ToolRetryInterceptor::builder().multiplier(0.5).build().err().unwrap();
    assert!(err.to_string().contains("`multiplier`"), "{err}");
}
