//! Model interceptors in the loop: order, streaming, and the engine's fallback and retry.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use serde_json::json;
use switchyard::{
    ChatRequest, ChatResponse, ChatStream, Error, FallbackManager, ModelFallback,
    interceptors::{ModelFallbackInterceptor, ModelInterceptor, ModelRetryInterceptor, Next},
};
use switchyard_agent::{AgentEvent, ReactAgent};
use switchyard_sim::{Behavior, SimModel};

struct Tag {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl ModelInterceptor for Tag {
    fn name(&self) -> &str {
        self.name
    }

    async fn intercept(&self, mut request: ChatRequest, next: Next<'_>) -> Result<ChatResponse, Error> {
        self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(format!("complete {}", self.name));
        request.system = Some(format!("{}+{}", request.system.unwrap_or_default(), self.name));
        next.complete(request).await
    }

    async fn intercept_stream(&self, mut request: ChatRequest, next: Next<'_>) -> Result<ChatStream, Error> {
        self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(format!("stream {}", self.name));
        request.system = Some(format!("{}+{}", request.system.unwrap_or_default(), self.name));
        next.stream(request).await
    }
}

#[tokio::test]
async fn model_interceptors_wrap_every_call_in_both_modes_first_registered_outermost() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let script = || [asks(vec![call("1", "clock", json!({}))]), reply("It is four.")];
    let model = SimModel::new("m").script(script());
    let agent = ReactAgent::builder()
        .model(shared(&model))
        .system_prompt("sys")
        .tools([clock()])
        .interceptors([
            Arc::new(Tag { name: "a", log: log.clone() }) as Arc<dyn ModelInterceptor>,
            Arc::new(Tag { name: "b", log: log.clone() }),
        ])
        .build()
        .unwrap();
    assert_eq!(agent.interceptor_names(), ["a", "b"]);

    agent.invoke("time?").await.unwrap();
    assert_eq!(*log.lock().unwrap(), ["complete a", "complete b", "complete a", "complete b"]);
    assert!(model.requests().iter().all(|r| r.system.as_deref() == Some("sys+a+b")));

    log.lock().unwrap().clear();
    let model = SimModel::new("m").script(script());
    let agent = ReactAgent::builder()
        .model(shared(&model))
        .system_prompt("sys")
        .tools([clock()])
        .interceptor(Arc::new(Tag { name: "a", log: log.clone() }))
        .interceptor(Arc::new(Tag { name: "b", log: log.clone() }))
        .build()
        .unwrap();
    let (_, error) = collect(&agent, "time?").await;
    assert!(error.is_none());
    assert_eq!(*log.lock().unwrap(), ["stream a", "stream b", "stream a", "stream b"]);
    assert!(model.requests().iter().all(|r| r.system.as_deref() == Some("sys+a+b")));
}

fn unavailable() -> Error {
    Error::Overloaded { status: 529, message: "overloaded".into() }
}

/// Primary: step 1 asks for the calculator, then fails from step 2 on. Backup: takes over.
fn primary_and_backup() -> (SimModel, SimModel) {
    let primary = SimModel::new("primary")
        .script([asks(vec![call("1", "calculator", json!({"op": "add", "a": 2, "b": 3}))])])
        .then_default(Behavior::Fail(unavailable()));
    let backup = SimModel::new("backup").script([
        asks(vec![call("2", "calculator", json!({"op": "mul", "a": 5, "b": 4}))]),
        reply("The answer is 20."),
    ]);
    (primary, backup)
}

#[tokio::test]
async fn fallback_interceptor_takes_over_mid_loop_and_the_stream_shows_the_switch() {
    let (primary, backup) = primary_and_backup();
    let fallback = ModelFallbackInterceptor::builder().add_fallback_model(shared(&backup)).build().unwrap();
    let agent = ReactAgent::builder()
        .model(shared(&primary))
        .system_prompt("You compute.")
        .tools([calculator(Arc::default())])
        .interceptors([Arc::new(fallback) as Arc<dyn ModelInterceptor>])
        .build()
        .unwrap();

    let (events, error) = collect(&agent, "(2+3)*4?").await;

    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        labels(&events),
        [
            "1:call calculator",
            "1:result calculator",
            "2:switch primary->fallback 1",
            "2:call calculator",
            "2:result calculator",
            "3:text",
            "done"
        ]
    );
    let AgentEvent::Done(out) = events.last().unwrap() else { panic!() };
    assert_eq!(out.text, "The answer is 20.");
    let served: Vec<_> = out.steps.iter().map(|s| s.served_by.as_deref()).collect();
    assert_eq!(served, [Some("primary"), Some("fallback 1"), Some("fallback 1")]);
    assert_eq!(out.steps[1].attempts.len(), 2, "the failed primary attempt is on record");
    // The backup got the whole context: system prompt, tools and the primary's tool round.
    let first = &backup.requests()[0];
    assert_eq!(first.system.as_deref(), Some("You compute."));
    assert_eq!(first.tools.len(), 1);
    assert_eq!(first.messages.len(), 3);
    assert_eq!(primary.calls(), 3, "each step tries the primary first");
}

#[tokio::test]
async fn a_fallback_manager_as_the_model_switches_targets_mid_loop() {
    // A fresh primary and backup per run: the primary's script is used up by one run.
    let agent_over_a_manager = || {
        let (primary, backup) = primary_and_backup();
        let manager = FallbackManager::builder()
            .target(ModelFallback::new("sim", "primary"), shared(&primary))
            .target(ModelFallback::new("sim", "backup").with_priority(1), shared(&backup))
            .build()
            .unwrap();
        ReactAgent::builder().model(Arc::new(manager)).tools([calculator(Arc::default())]).build().unwrap()
    };
    let agent = agent_over_a_manager();

    let (events, error) = collect(&agent, "(2+3)*4?").await;
    assert!(error.is_none(), "{error:?}");
    assert!(labels(&events).contains(&"2:switch sim/primary->sim/backup".to_owned()), "{:?}", labels(&events));

    let agent = agent_over_a_manager();
    let out = agent.invoke("(2+3)*4?").await.unwrap();
    assert_eq!(out.text, "The answer is 20.");
    let served: Vec<_> = out.steps.iter().map(|s| s.served_by.as_deref()).collect();
    assert_eq!(served, [Some("sim/primary"), Some("sim/backup"), Some("sim/backup")]);
}

#[tokio::test(start_paused = true)]
async fn retry_inside_fallback_retries_the_primary_first_then_falls_back() {
    // Step 2: the primary fails once in its stream (before any chunk) and succeeds on retry.
    // Step 3: the primary fails for good; the backup answers.
    let primary = SimModel::new("primary")
        .script([
            asks(vec![call("1", "clock", json!({}))]),
            Behavior::FailInStream(unavailable()),
            asks(vec![call("2", "clock", json!({}))]),
        ])
        .then_default(Behavior::Fail(unavailable()));
    let backup = SimModel::replying("backup", "It is four.");
    let retry =
        ModelRetryInterceptor::builder().max_attempts(2).initial_delay(Duration::from_millis(100)).build().unwrap();
    let fallback = ModelFallbackInterceptor::builder().add_fallback_model(shared(&backup)).build().unwrap();
    let agent = ReactAgent::builder()
        .model(shared(&primary))
        .tools([clock()])
        .interceptors([Arc::new(fallback) as Arc<dyn ModelInterceptor>, Arc::new(retry)])
        .build()
        .unwrap();

    let (events, error) = collect(&agent, "time?").await;

    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        labels(&events),
        [
            "1:call clock",
            "1:result clock",
            "2:call clock",
            "2:result clock",
            "3:switch primary->fallback 1",
            "3:text",
            "done"
        ]
    );
    // 1 + (1 failed + 1 retried) + 2 failed attempts at step 3.
    assert_eq!(primary.calls(), 5);
    assert_eq!(backup.calls(), 1);
}
