//! The ReAct loop: multi-step tool use, streaming events, concurrency, limits and configuration.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use serde::Deserialize;
use serde_json::json;
use switchyard::{Error, ErrorKind, Part, Role, Usage};
use switchyard_agent::{AgentError, AgentEvent, ReactAgent, ToolError, fn_tool};
use switchyard_sim::{Behavior, SimModel};

fn script() -> Vec<Behavior> {
    vec![
        asks(vec![call("c1", "calculator", json!({"op": "add", "a": 2, "b": 3}))]),
        asks(vec![call("c2", "calculator", json!({"op": "mul", "a": 5, "b": 4}))]),
        reply("The answer is 20."),
    ]
}

#[tokio::test]
async fn invoke_runs_tools_until_the_final_answer() {
    let model = SimModel::new("m").script(script());
    let calls = Arc::new(AtomicUsize::new(0));
    let agent = ReactAgent::builder()
        .model(shared(&model))
        .system_prompt("You compute.")
        .tools([calculator(calls.clone()), clock()])
        .build()
        .unwrap();

    let out = agent.invoke("What is (2+3)*4?").await.unwrap();

    assert_eq!(out.text, "The answer is 20.");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(model.calls(), 3);
    let roles: Vec<Role> = out.messages.iter().map(|m| m.role).collect();
    use Role::*;
    assert_eq!(roles, [User, Assistant, Tool, Assistant, Tool, Assistant]);
    // Each model call saw the results of the previous one, with system prompt and tools.
    let requests = model.requests();
    assert_eq!(requests[1].messages.last().unwrap().content, vec![tool_result("c1", "5.0")]);
    assert_eq!(requests[2].messages.last().unwrap().content, vec![tool_result("c2", "20.0")]);
    for request in &requests {
        assert_eq!(request.system.as_deref(), Some("You compute."));
        let names: Vec<_> = request.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["calculator", "clock"]);
    }
    // Usage is the sum over the steps.
    assert_eq!(out.steps.len(), 3);
    let sum = out.steps.iter().fold(Usage::default(), |acc, s| acc + s.usage);
    assert_eq!(out.usage, sum);
    assert!(out.usage.input_tokens > 0 && out.usage.output_tokens > 0);
    assert_eq!(out.steps[0].tool_calls, ["calculator"]);
    assert!(out.steps[2].tool_calls.is_empty());
}

fn tool_result(id: &str, content: &str) -> Part {
    Part::ToolResult(switchyard::ToolResult { tool_call_id: id.into(), content: content.into(), is_error: false })
}

#[tokio::test]
async fn stream_yields_calls_results_text_and_done_in_order() {
    let model = SimModel::new("m").script(script());
    let agent = ReactAgent::builder().model(shared(&model)).tools([calculator(Arc::default())]).build().unwrap();

    let (events, error) = collect(&agent, "What is (2+3)*4?").await;

    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        labels(&events),
        ["1:call calculator", "1:result calculator", "2:call calculator", "2:result calculator", "3:text", "done"]
    );
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::TextDelta { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "The answer is 20.");
    assert!(events.iter().filter(|e| matches!(e, AgentEvent::TextDelta { .. })).count() > 1, "text arrives in pieces");
    let AgentEvent::Done(out) = events.last().unwrap() else { panic!() };
    assert_eq!(out.text, text);
    assert_eq!(out.usage, out.steps.iter().fold(Usage::default(), |acc, s| acc + s.usage));
    // The streamed tool-call fragments were assembled before the tool ran.
    let AgentEvent::ToolResult { result, .. } = &events[1] else { panic!() };
    assert_eq!(result.content, "5.0");
}

#[derive(Deserialize)]
struct Wait {
    id: u32,
}

#[tokio::test(start_paused = true)]
async fn several_calls_of_one_step_run_concurrently_and_answer_in_call_order() {
    // Each call waits for the other at a barrier: run one after the other, they would never finish.
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let tool = fn_tool("meet", "waits for its partner", json!({"type": "object"}), move |args: Wait| {
        let barrier = barrier.clone();
        async move {
            barrier.wait().await;
            // The first call finishes last.
            tokio::time::sleep(Duration::from_millis(if args.id == 1 { 20 } else { 10 })).await;
            Ok::<_, ToolError>(format!("met {}", args.id))
        }
    });
    let model = SimModel::new("m")
        .script([asks(vec![call("a", "meet", json!({"id": 1})), call("b", "meet", json!({"id": 2}))]), reply("done")]);
    let agent = ReactAgent::builder().model(shared(&model)).tools([tool]).build().unwrap();

    let (events, error) =
        tokio::time::timeout(Duration::from_secs(5), collect(&agent, "go")).await.expect("the tools ran concurrently");

    assert!(error.is_none(), "{error:?}");
    let finished: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::ToolResult { result, .. } => Some(result.tool_call_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(finished, ["b", "a"], "results are reported as they finish");
    let sent = &model.requests()[1].messages;
    let ids: Vec<&str> = sent
        .iter()
        .filter(|m| m.role == Role::Tool)
        .flat_map(|m| &m.content)
        .filter_map(|p| match p {
            Part::ToolResult(r) => Some(r.tool_call_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(ids, ["a", "b"], "the model gets results in the order of its calls");
}

#[tokio::test]
async fn the_iteration_limit_is_a_clear_error() {
    let model =
        SimModel::new("m").then_default(asks(vec![call("c", "calculator", json!({"op": "add", "a": 1, "b": 1}))]));
    let calls = Arc::new(AtomicUsize::new(0));
    let agent = ReactAgent::builder()
        .model(shared(&model))
        .tools([calculator(calls.clone())])
        .max_iterations(3)
        .build()
        .unwrap();

    let err = agent.invoke("loop forever").await.unwrap_err();

    assert_eq!(err, AgentError::MaxIterations { limit: 3 });
    let message = err.to_string();
    assert!(message.contains("3 iterations") && message.contains("max_iterations"), "{message}");
    assert_eq!(model.calls(), 3, "one model call per iteration");
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the last step's calls are not run: no model would read them");

    let (events, error) = collect(&agent, "loop forever").await;
    assert_eq!(error, Some(AgentError::MaxIterations { limit: 3 }));
    assert!(!events.iter().any(|e| matches!(e, AgentEvent::Done(_))));
}

#[tokio::test]
async fn a_model_failure_names_the_step() {
    let model = SimModel::new("m").script([
        asks(vec![call("c", "clock", json!({}))]),
        Behavior::Fail(Error::Auth { status: 401, message: "bad key".into() }),
    ]);
    let agent = ReactAgent::builder().model(shared(&model)).tools([clock()]).build().unwrap();

    let err = agent.invoke("time?").await.unwrap_err();
    assert!(matches!(err, AgentError::Model { step: 2, .. }), "{err:?}");
    assert_eq!(err.model_error().unwrap().kind(), ErrorKind::Auth);

    let model = SimModel::new("m").script([
        asks(vec![call("c", "clock", json!({}))]),
        Behavior::BreakAfter { chunks: 2, error: Error::server(502, "bad gateway") },
    ]);
    let agent = ReactAgent::builder().model(shared(&model)).tools([clock()]).build().unwrap();
    let (events, error) = collect(&agent, "time?").await;
    assert!(matches!(&error, Some(AgentError::Model { step: 2, source }) if source.kind() == ErrorKind::Server));
    assert!(events.iter().any(|e| matches!(e, AgentEvent::TextDelta { step: 2, .. })), "committed text came first");
}

#[tokio::test]
async fn a_conversation_can_be_continued() {
    let model = SimModel::new("m").then_default(Behavior::Echo);
    let agent = ReactAgent::builder().model(shared(&model)).build().unwrap();
    let history = vec![
        switchyard::Message::user("hi"),
        switchyard::Message::assistant("hello"),
        switchyard::Message::user("again"),
    ];
    let out = agent.invoke(history.clone()).await.unwrap();
    assert_eq!(out.text, "echo: again");
    assert_eq!(&out.messages[..3], &history[..]);
    assert!(model.last_request().unwrap().tools.is_empty());
}

#[test]
fn the_builder_says_what_is_wrong() {
    let err = ReactAgent::builder().build().unwrap_err();
    assert!(err.to_string().contains(".model("), "{err}");

    let model = shared(&SimModel::new("m"));
    let err = ReactAgent::builder().model(model.clone()).max_iterations(0).build().unwrap_err();
    assert!(err.to_string().contains("max_iterations"), "{err}");

    let err = ReactAgent::builder().model(model.clone()).tools([clock(), clock()]).build().unwrap_err();
    assert!(err.to_string().contains("two tools are named `clock`"), "{err}");

    let bad = fn_tool("bad", "", json!({"type": "string"}), |_: NoArgs| async { Ok::<_, ToolError>("") });
    let err = ReactAgent::builder().model(model.clone()).tools([bad]).build().unwrap_err();
    assert!(err.to_string().contains("tool `bad`") && err.to_string().contains("\"type\": \"object\""), "{err}");

    let spaced = fn_tool("has space", "", json!({"type": "object"}), |_: NoArgs| async { Ok::<_, ToolError>("") });
    let err = ReactAgent::builder().model(model).tools([spaced]).build().unwrap_err();
    assert!(err.to_string().contains("`has space` is not allowed"), "{err}");
}

struct SetOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn dropping_the_stream_cancels_the_running_tools() {
    let started = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (s, d) = (started.clone(), dropped.clone());
    let tool = fn_tool("hang", "never answers", json!({"type": "object"}), move |_: NoArgs| {
        let guard = SetOnDrop(d.clone());
        s.fetch_add(1, Ordering::SeqCst);
        async move {
            let _guard = guard;
            futures::future::pending::<Result<String, ToolError>>().await
        }
    });
    let model = SimModel::new("m").script([asks(vec![call("1", "hang", json!({}))])]);
    let agent = ReactAgent::builder().model(shared(&model)).tools([tool]).build().unwrap();

    let mut stream = Box::pin(agent.stream("go"));
    let mut seen = Vec::new();
    while let Ok(Some(item)) =
        tokio::time::timeout(Duration::from_secs(60), futures::StreamExt::next(&mut stream)).await
    {
        seen.push(item.unwrap());
    }
    assert_eq!(labels(&seen), ["1:call hang"]);
    assert_eq!(started.load(Ordering::SeqCst), 1);
    assert!(!dropped.load(Ordering::SeqCst));

    drop(stream);
    assert!(dropped.load(Ordering::SeqCst), "the tool's future was dropped with the stream");
}

#[tokio::test]
async fn a_shared_agent_streams_from_a_spawned_task() {
    let model = SimModel::new("m").script(script());
    let agent =
        Arc::new(ReactAgent::builder().model(shared(&model)).tools([calculator(Arc::default())]).build().unwrap());

    let task = tokio::spawn(futures::StreamExt::collect::<Vec<_>>(agent.clone().stream_owned("What is (2+3)*4?")));
    let events: Vec<AgentEvent> = task.await.unwrap().into_iter().collect::<Result<_, _>>().unwrap();

    let Some(AgentEvent::Done(out)) = events.last() else { panic!("{events:?}") };
    assert_eq!(out.text, "The answer is 20.");
    assert_eq!(events.iter().filter(|e| matches!(e, AgentEvent::ToolResult { .. })).count(), 2);
}
