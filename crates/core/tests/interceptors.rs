//! ModelFallbackInterceptor and ModelRetryInterceptor, alone and in a chain, for answers and streams.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{MS, SEC, Timed, auth_error, server_error, shared};
use futures::StreamExt;
use serde_json::json;
use switchyard::{
    ChatModel, ChatRequest, ConfigError, Error, ErrorKind, ToolDefinition,
    interceptors::{InterceptorChain, ModelFallbackInterceptor, ModelInterceptor, ModelRetryInterceptor},
    validate::ExceptionMarker,
};
use switchyard_sim::{Behavior, SimModel};

fn fallback_to(models: &[&SimModel]) -> Arc<dyn ModelInterceptor> {
    Arc::new(ModelFallbackInterceptor::builder().fallback_models(models.iter().map(|m| shared(m))).build().unwrap())
}

fn retry() -> Arc<dyn ModelInterceptor> {
    Arc::new(ModelRetryInterceptor::default())
}

#[test]
fn fallback_without_a_fallback_model_does_not_build() {
    let err = ModelFallbackInterceptor::builder().build().err().unwrap();
    assert_eq!(err, ConfigError::NoFallbackModels);
    assert_eq!(err.to_string(), "at least one fallback model must be specified");
    let built = ModelFallbackInterceptor::builder().add_fallback_model(shared(&SimModel::new("f"))).build().unwrap();
    assert_eq!(built.name(), "ModelFallback");
    assert_eq!(ModelRetryInterceptor::default().name(), "ModelRetry");
}

#[test]
fn retry_settings_out_of_range_are_refused() {
    let err = ModelRetryInterceptor::builder().max_attempts(0).build().err().unwrap();
    assert!(err.to_string().contains("`max_attempts`"), "{err}");
    let err = ModelRetryInterceptor::builder().multiplier(0.5).build().err().unwrap();
    assert!(err.to_string().contains("`multiplier`"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn order_matters_fallback_outside_retries_the_primary_first() {
    let primary = SimModel::failing("primary", server_error());
    let fallback = SimModel::replying("fallback", "from fallback");
    let chain = InterceptorChain::new(shared(&primary)).with(fallback_to(&[&fallback])).with(retry());
    assert_eq!(chain.names(), ["ModelFallback", "ModelRetry"]);
    let r = chain.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.message.text(), "from fallback");
    assert_eq!((primary.calls(), fallback.calls()), (3, 1));
}

#[tokio::test(start_paused = true)]
async fn order_matters_retry_outside_falls_back_at_once() {
    let primary = SimModel::failing("primary", server_error());
    let fallback = SimModel::replying("fallback", "from fallback");
    let chain = InterceptorChain::new(shared(&primary)).with(retry()).with(fallback_to(&[&fallback]));
    let start = tokio::time::Instant::now();
    let r = chain.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.message.text(), "from fallback");
    assert_eq!((primary.calls(), fallback.calls()), (1, 1));
    assert_eq!(start.elapsed(), std::time::Duration::ZERO);
}

#[tokio::test]
async fn fallback_calls_receive_the_original_request_and_keep_usage() {
    let primary = SimModel::failing("primary", server_error());
    let fallback = SimModel::replying("fallback", "three words here");
    let chain = InterceptorChain::new(shared(&primary)).with(fallback_to(&[&fallback]));
    let mut request = ChatRequest::user("what time is it?").with_system("You are terse.");
    request.tools = vec![ToolDefinition {
        name: "clock".into(),
        description: Some("current time".into()),
        parameters: json!({"type": "object", "properties": {}}),
    }];
    request.options.temperature = Some(0.2);
    let r = chain.complete(request.clone()).await.unwrap();
    assert_eq!(fallback.last_request().unwrap(), request);
    assert!(r.usage.output_tokens > 0, "{:?}", r.usage);
    assert_eq!(r.served_by.as_deref(), Some("fallback 1"));

    // Streams too.
    let stream = chain.stream(request.clone()).await.unwrap();
    let r = stream.collect_response().await.unwrap();
    assert_eq!(r.message.text(), "three words here");
    assert_eq!(fallback.last_request().unwrap(), request);
}

#[tokio::test]
async fn fallbacks_are_tried_once_each_in_order_and_all_failed_lists_them() {
    let primary = SimModel::failing("primary", server_error());
    let f1 = SimModel::failing("f1", auth_error());
    let f2 = SimModel::failing("f2", server_error());
    let chain = InterceptorChain::new(shared(&primary)).with(fallback_to(&[&f1, &f2]));
    let err = chain.complete(ChatRequest::user("hi")).await.unwrap_err();
    let ids: Vec<_> = err.attempts().iter().map(|a| a.target.as_str()).collect();
    assert_eq!(ids, ["primary", "fallback 1", "fallback 2"]);
    assert_eq!((primary.calls(), f1.calls(), f2.calls()), (1, 1, 1));
}

#[tokio::test]
async fn fallback_does_not_hide_the_callers_own_mistake() {
    let primary = SimModel::failing("primary", Error::invalid_request("bad tool schema", Some("tools")));
    let fallback = SimModel::new("fallback");
    let chain = InterceptorChain::new(shared(&primary)).with(fallback_to(&[&fallback]));
    let err = chain.complete(ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert_eq!(fallback.calls(), 0);
}

#[tokio::test]
async fn the_exception_marker_is_an_option_matched_at_the_start() {
    let primary = SimModel::replying("primary", "Exception: I/O error");
    let fallback = SimModel::replying("fallback", "recovered");
    let with_marker = ModelFallbackInterceptor::builder()
        .add_fallback_model(shared(&fallback))
        .validator(Arc::new(ExceptionMarker))
        .build()
        .unwrap();
    let chain = InterceptorChain::new(shared(&primary)).with(Arc::new(with_marker));
    assert_eq!(chain.complete(ChatRequest::user("hi")).await.unwrap().message.text(), "recovered");

    let discussing = SimModel::replying("primary", "A NullPointerException: happens when…");
    let chain = InterceptorChain::new(shared(&discussing)).with(fallback_to(&[&fallback]));
    let r = chain.complete(ChatRequest::user("hi")).await.unwrap();
    assert!(r.message.text().starts_with("A NullPointerException"));
}

#[tokio::test(start_paused = true)]
async fn retry_waits_one_then_two_seconds_by_default() {
    let model = SimModel::new("m")
        .script([Behavior::Fail(server_error()), Behavior::Fail(server_error())])
        .then_default(Behavior::Reply("third time".into()));
    let timed = Timed::new(&model);
    let chain = InterceptorChain::new(timed.clone()).with(retry());
    let r = chain.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.message.text(), "third time");
    assert_eq!(timed.offsets(), [std::time::Duration::ZERO, SEC, SEC * 3]);
}

#[tokio::test(start_paused = true)]
async fn retry_gives_up_after_max_attempts_listing_them() {
    let model = SimModel::failing("m", server_error());
    let chain = InterceptorChain::new(shared(&model)).with(retry());
    let err = chain.complete(ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(model.calls(), 3);
    assert_eq!(err.kind(), ErrorKind::Exhausted);
    assert_eq!(err.attempts().iter().map(|a| a.retry).collect::<Vec<_>>(), [0, 1, 2]);
}

#[tokio::test(start_paused = true)]
async fn retry_passes_a_non_retryable_error_through_unchanged() {
    let model = SimModel::failing("m", auth_error());
    let chain = InterceptorChain::new(shared(&model)).with(retry());
    let err = chain.complete(ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(err, auth_error());
    assert_eq!(model.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_custom_predicate_decides_what_is_retried() {
    let model = SimModel::new("m").script([Behavior::Fail(auth_error())]).then_default(Behavior::Reply("ok".into()));
    let interceptor = ModelRetryInterceptor::builder()
        .max_attempts(2)
        .initial_delay(MS * 300)
        .retry_if(|e| e.kind() == ErrorKind::Auth)
        .build()
        .unwrap();
    let timed = Timed::new(&model);
    let chain = InterceptorChain::new(timed.clone()).with(Arc::new(interceptor));
    assert_eq!(chain.complete(ChatRequest::user("hi")).await.unwrap().message.text(), "ok");
    assert_eq!(timed.offsets(), [std::time::Duration::ZERO, MS * 300]);
}

#[tokio::test(start_paused = true)]
async fn retry_streams_only_before_the_first_chunk() {
    let before = SimModel::new("m")
        .script([Behavior::FailInStream(server_error())])
        .then_default(Behavior::Reply("streamed fine".into()));
    let chain = InterceptorChain::new(shared(&before)).with(retry());
    let r = chain.stream(ChatRequest::user("hi")).await.unwrap().collect_response().await.unwrap();
    assert_eq!(r.message.text(), "streamed fine");
    assert_eq!(before.calls(), 2);

    let after = SimModel::new("m").then_default(Behavior::BreakAfter { chunks: 1, error: server_error() });
    let chain = InterceptorChain::new(shared(&after)).with(retry());
    let mut stream = chain.stream(ChatRequest::user("hi")).await.unwrap();
    let mut items = Vec::new();
    while let Some(item) = stream.next().await {
        items.push(item);
    }
    assert_eq!(after.calls(), 1);
    assert_eq!(items.last().unwrap().as_ref().unwrap_err().kind(), ErrorKind::Server);
}

#[tokio::test]
async fn stream_fallback_calls_the_primary_first() {
    // The Java seed's stream path skipped the primary; here the primary serves when it works.
    let primary = SimModel::replying("primary", "from primary");
    let fallback = SimModel::new("fallback");
    let chain = InterceptorChain::new(shared(&primary)).with(fallback_to(&[&fallback]));
    let r = chain.stream(ChatRequest::user("hi")).await.unwrap().collect_response().await.unwrap();
    assert_eq!(r.message.text(), "from primary");
    assert_eq!((primary.calls(), fallback.calls()), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn retry_does_not_wait_for_a_retry_after_longer_than_its_cap() {
    let limited = Error::RateLimited { message: "quota".into(), retry_after: Some(SEC * 3600) };
    let model = SimModel::failing("m", limited.clone());
    let chain = InterceptorChain::new(shared(&model)).with(retry());
    let start = tokio::time::Instant::now();
    let err = chain.complete(ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(err, limited);
    assert_eq!(model.calls(), 1);
    assert_eq!(start.elapsed(), std::time::Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn an_outer_interceptor_keeps_the_target_the_inner_one_chose_and_its_attempts() {
    let primary = SimModel::failing("primary", server_error());
    let fallback = SimModel::replying("fallback", "from fallback");
    let chain = InterceptorChain::new(shared(&primary)).with(retry()).with(fallback_to(&[&fallback]));
    let r = chain.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.served_by.as_deref(), Some("fallback 1"));
    let targets: Vec<_> = r.attempts.iter().map(|a| a.target.as_str()).collect();
    assert_eq!(targets, ["primary", "fallback 1"]);

    let s = chain.stream(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(s.served_by.as_deref(), Some("fallback 1"));
    let targets: Vec<_> = s.attempts.iter().map(|a| a.target.as_str()).collect();
    assert_eq!(targets, ["primary", "fallback 1"]);
}

#[tokio::test(start_paused = true)]
async fn an_interceptor_around_a_manager_reports_the_managers_target() {
    let a = SimModel::failing("a", server_error());
    let b = SimModel::replying("b", "from b");
    let manager = switchyard::FallbackManager::builder()
        .target(switchyard::ModelFallback::new("sim", "a"), shared(&a))
        .target(switchyard::ModelFallback::new("sim", "b"), shared(&b))
        .build()
        .unwrap();
    let chain = InterceptorChain::new(Arc::new(manager)).with(retry());
    let r = chain.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.served_by.as_deref(), Some("sim/b"));
    assert_eq!(r.attempts.iter().filter(|a| a.was_called()).count(), 2);
    let s = chain.stream(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(s.served_by.as_deref(), Some("sim/b"));
}

#[tokio::test(start_paused = true)]
async fn a_retry_interceptor_does_not_name_itself_as_the_target() {
    let primary = SimModel::new("primary").script([Behavior::Fail(server_error())]);
    let fallback = SimModel::replying("fallback", "from fallback");
    let chain = InterceptorChain::new(shared(&primary)).with(fallback_to(&[&fallback])).with(retry());
    let r = chain.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.served_by.as_deref(), Some("primary"));
    let alone = InterceptorChain::new(shared(&primary)).with(retry());
    assert_eq!(alone.complete(ChatRequest::user("hi")).await.unwrap().served_by, None);
}

#[tokio::test]
async fn fallback_models_can_be_named_and_served_by_names_them() {
    let down = SimModel::failing("down", server_error());
    let backup = SimModel::new("backup");
    let fallback =
        ModelFallbackInterceptor::builder().primary_id("claude").add_fallback_model_with_id("gpt", shared(&backup));
    let chain = InterceptorChain::new(shared(&down)).with(Arc::new(fallback.build().unwrap()));
    let answer = chain.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(answer.served_by.as_deref(), Some("gpt"));
    let ids: Vec<&str> = answer.attempts.iter().map(|a| a.target.as_str()).collect();
    assert_eq!(ids, ["claude", "gpt"]);

    let clash = ModelFallbackInterceptor::builder().primary_id("x").add_fallback_model_with_id("x", shared(&backup));
    assert_eq!(clash.build().err().unwrap(), ConfigError::DuplicateId { id: "x".to_owned() });
}

#[tokio::test]
async fn a_model_with_only_complete_streams_its_whole_answer() {
    struct Whole;
    #[switchyard::async_trait]
    impl ChatModel for Whole {
        async fn complete(&self, _: ChatRequest) -> Result<switchyard::ChatResponse, Error> {
            Ok(switchyard::ChatResponse::text("whole", "all at once"))
        }
    }
    let chunks: Vec<_> = Whole.stream(ChatRequest::user("hi")).await.unwrap().collect().await;
    let chunks: Vec<switchyard::ChatChunk> = chunks.into_iter().map(Result::unwrap).collect();
    assert_eq!(chunks.first(), Some(&switchyard::ChatChunk::text("all at once")));
    assert!(matches!(chunks.last(), Some(switchyard::ChatChunk::Finish { .. })));
}
