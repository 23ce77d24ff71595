//! Request fields decided per target before the call (SPEC-2 section 14): a target that cannot honour a
//! field is skipped with the reason, dropped fields are named on the attempt, `strict_fields` skips instead of
//! dropping, and a refusal after calls carries the attempts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use common::server_error;
use serde_json::json;
use switchyard::{
    ChatModel, ChatRequest, ChatResponse, ChatStream, Error, ErrorKind, FallbackManager, ModelFallback,
    attempt::{AttemptOutcome, SkipReason},
    model::{Fit, Unfit},
};
use switchyard_sim::SimModel;

/// A simulated model whose API cannot honour `n > 1` and drops `seed`, as a provider would say.
struct Picky(SimModel);

#[async_trait]
impl ChatModel for Picky {
    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, Error> {
        self.0.complete(request).await
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, Error> {
        self.0.stream(request).await
    }

    fn fit(&self, request: &ChatRequest, _stream: bool) -> Fit {
        let fields = &request.extra.fields;
        let unfit = fields
            .get("n")
            .filter(|n| n.as_u64() > Some(1))
            .map(|_| Unfit::Cannot { field: "n".into(), detail: "one answer per request".into() });
        let dropped = fields.keys().filter(|k| *k == "seed").cloned().collect();
        Fit { dropped, unfit }
    }
}

fn with(field: &str, value: serde_json::Value) -> ChatRequest {
    let mut request = ChatRequest::user("hi");
    request.extra.fields.insert(field.into(), value);
    request
}

fn manager(first: Arc<dyn ChatModel>, second: Arc<dyn ChatModel>, strict: bool) -> FallbackManager {
    FallbackManager::builder()
        .target(ModelFallback::new("sim", "first"), first)
        .target(ModelFallback::new("sim", "second").with_priority(1), second)
        .strict_fields(strict)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_target_that_cannot_honour_a_field_is_skipped_with_the_reason_and_the_next_serves() {
    let picky = SimModel::replying("first", "from first");
    let able = SimModel::replying("second", "from second");
    let m = manager(Arc::new(Picky(picky.clone())), Arc::new(able.clone()), false);
    for stream in [false, true] {
        let attempts = if stream {
            let s = m.stream(with("n", json!(2))).await.unwrap();
            assert_eq!(s.served_by.as_deref(), Some("sim/second"));
            s.attempts
        } else {
            let r = m.complete(with("n", json!(2))).await.unwrap();
            assert_eq!(r.served_by.as_deref(), Some("sim/second"));
            r.attempts
        };
        match &attempts[0].outcome {
            AttemptOutcome::Skipped { reason } => assert_eq!(reason.field(), Some("n"), "{reason}"),
            other => panic!("expected a skip, got {other:?}"),
        }
    }
    assert_eq!(picky.calls(), 0);
    // n = 1 is fine for both.
    let r = m.complete(with("n", json!(1))).await.unwrap();
    assert_eq!(r.served_by.as_deref(), Some("sim/first"));
}

#[tokio::test]
async fn when_no_target_can_honour_a_field_the_request_is_an_invalid_request_naming_it_with_the_attempts() {
    let a = SimModel::replying("first", "a");
    let b = SimModel::replying("second", "b");
    let m = manager(Arc::new(Picky(a.clone())), Arc::new(Picky(b.clone())), false);
    let err = m.complete(with("n", json!(3))).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    match &err {
        Error::InvalidRequest { status: 400, param: Some(p), attempts, .. } => {
            assert_eq!(p, "n");
            assert_eq!(attempts.len(), 2);
            assert!(attempts.iter().all(|a| !a.was_called()));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(a.calls() + b.calls(), 0);
}

#[tokio::test]
async fn a_dropped_field_is_named_on_the_serving_attempt_and_strict_fields_skips_instead() {
    let picky = SimModel::replying("first", "from first");
    let able = SimModel::replying("second", "from second");
    let lenient = manager(Arc::new(Picky(picky.clone())), Arc::new(able.clone()), false);
    let r = lenient.complete(with("seed", json!(7))).await.unwrap();
    assert_eq!(r.served_by.as_deref(), Some("sim/first"));
    assert_eq!(r.attempts.last().unwrap().dropped, vec!["seed".to_owned()]);

    let strict = manager(Arc::new(Picky(picky.clone())), Arc::new(able.clone()), true);
    let s = strict.stream(with("seed", json!(7))).await.unwrap();
    assert_eq!(s.served_by.as_deref(), Some("sim/second"));
    match &s.attempts[0].outcome {
        AttemptOutcome::Skipped { reason } => {
            assert_eq!(reason, &SkipReason::Field(Unfit::WouldDrop { field: "seed".into() }));
        }
        other => panic!("expected a skip, got {other:?}"),
    }
    assert!(s.attempts.last().unwrap().dropped.is_empty());
}

#[tokio::test]
async fn an_upstream_invalid_request_after_a_failed_call_carries_every_attempt() {
    let down = SimModel::failing("first", server_error());
    let refuses = SimModel::failing("second", Error::invalid_request("bad temperature", Some("temperature")));
    let m = manager(Arc::new(down), Arc::new(refuses), false);
    let err = m.complete(ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    let called: Vec<&str> = err.attempts().iter().filter(|a| a.was_called()).map(|a| a.target.as_str()).collect();
    assert_eq!(called, ["sim/first", "sim/second"]);
}

/// A model wrapped in an interceptor chain keeps its fit: the planner skips the chain as it would the model.
#[tokio::test]
async fn an_interceptor_chain_has_the_fit_of_the_model_it_wraps() {
    let picky: Arc<dyn ChatModel> = Arc::new(Picky(SimModel::replying("first", "from first")));
    let chain: Arc<dyn ChatModel> = Arc::new(switchyard::interceptors::InterceptorChain::new(picky));
    let fit = chain.fit(&with("n", json!(2)), false);
    assert!(matches!(fit.unfit, Some(Unfit::Cannot { ref field, .. }) if field == "n"), "{fit:?}");
    assert_eq!(chain.fit(&with("seed", json!(7)), false).dropped, ["seed"]);
}
