//! `after_commit = "continue"` against the simulated upstream, through both client APIs: each target is asked to
//! continue its own way (`continuation = "prefill" | "instruction" | "none"`), and only a continuation that
//! verifiably continues the delivered text is spliced; otherwise the caller gets the original typed error.

use serde_json::{Value, json};

use crate::common::{Harness, start};

/// What `an/claude-break4` delivers before its stream is cut.
const DELIVERED: &str = "Hello! This is claude-break4 ";
/// Its whole answer, had it not broken.
const WHOLE: &str = "Hello! This is claude-break4 answering from the simulated upstream.";

/// What the caller read from one streamed answer.
#[derive(Debug)]
struct Read {
    text: String,
    /// Ended with `[DONE]` / `message_stop`.
    finished: bool,
    /// The in-stream error event's `error` object.
    error: Option<Value>,
}

/// Streams one answer from `route` through the OpenAI and then the Anthropic API.
async fn both(h: &Harness, route: &str) -> [Read; 2] {
    let messages = json!([{ "role": "user", "content": "hello" }]);
    let r = h.stream("/v1/chat/completions", &json!({ "model": route, "stream": true, "messages": messages })).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let values: Vec<Value> = r.data().iter().filter_map(|d| serde_json::from_str(d).ok()).collect();
    let openai = Read {
        text: r.openai_text(),
        finished: r.data().iter().any(|d| d == "[DONE]"),
        error: values.iter().find_map(|v| v.get("error").cloned()),
    };
    let body = json!({ "model": route, "stream": true, "max_tokens": 100, "messages": messages });
    let r = h.stream("/v1/messages", &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let values: Vec<Value> = r.data().iter().filter_map(|d| serde_json::from_str(d).ok()).collect();
    let anthropic = Read {
        text: r.anthropic_text(),
        finished: r.events().iter().any(|e| e == "message_stop"),
        error: values.iter().find(|v| v["type"] == "error").map(|v| v["error"].clone()),
    };
    [openai, anthropic]
}

fn assert_whole(reads: &[Read; 2], whole: &str) {
    for read in reads {
        assert!(read.finished && read.error.is_none(), "{read:?}");
        assert_eq!(read.text, whole, "the full answer, exactly once");
    }
}

#[tokio::test]
async fn a_prefill_target_continues_with_only_the_rest_both_provider_kinds() {
    let h = start(
        r#"
[routes.anthropic]
after_commit = "continue"
targets = [{ provider = "an", model = "claude-break4" }, { provider = "an", model = "claude-ok" }]
[routes.openai]
after_commit = "continue"
targets = [{ provider = "an", model = "claude-break4" }, { provider = "oa", model = "gpt-ok", continuation = "prefill" }]
"#,
    )
    .await;
    // The simulated upstream continues a prefill from where it stopped: " answering from …".
    assert_whole(&both(&h, "anthropic").await, WHOLE);
    assert_whole(&both(&h, "openai").await, WHOLE);
    assert_eq!((h.upstream.calls("claude-ok"), h.upstream.calls("gpt-ok")), (2, 2));
}

#[tokio::test]
async fn an_instruction_target_that_restarts_with_the_same_text_is_deduplicated() {
    let h = start(
        r#"
[routes.cont]
after_commit = "continue"
targets = [{ provider = "an", model = "claude-break4" }, { provider = "oa", model = "gpt-restart" }]
"#,
    )
    .await;
    // gpt-restart (OpenAI kind: `instruction` by default) answers the whole answer again from its start.
    assert_whole(&both(&h, "cont").await, WHOLE);
    assert_eq!(h.upstream.calls("gpt-restart"), 2);
}

#[tokio::test]
async fn a_restart_with_different_text_is_never_spliced_and_the_caller_gets_the_original_error() {
    let h = start(
        r#"
[routes.cont]
after_commit = "continue"
targets = [{ provider = "an", model = "claude-break4" }, { provider = "oa", model = "gpt-restartdiff" }]
[routes.err]
targets = [{ provider = "an", model = "claude-break4" }, { provider = "oa", model = "gpt-restartdiff" }]
"#,
    )
    .await;
    let continued = both(&h, "cont").await;
    assert_eq!(h.upstream.calls("gpt-restartdiff"), 2, "asked, and not spliced");
    let plain = both(&h, "err").await;
    assert_eq!(h.upstream.calls("gpt-restartdiff"), 2, "without `continue` nobody is asked");
    for (read, original) in continued.iter().zip(&plain) {
        assert!(!read.finished, "{read:?}");
        assert_eq!(read.text, DELIVERED, "nothing of the different restart reached the caller");
        let (error, original) = (read.error.as_ref().unwrap(), original.error.as_ref().unwrap());
        assert_eq!(error["type"], original["type"], "the original break's typed error: {error} vs {original}");
        assert_eq!(error.get("code"), original.get("code"));
    }
}

#[tokio::test]
async fn a_target_that_refuses_a_prefill_is_skipped_and_its_400_never_reaches_the_caller() {
    let h = start(
        r#"
[routes.next]
after_commit = "continue"
targets = [
  { provider = "an", model = "claude-break4" },
  { provider = "an", model = "claude-noprefill" },
  { provider = "an", model = "claude-ok" },
]
[routes.alone]
after_commit = "continue"
targets = [{ provider = "an", model = "claude-break4", id = "alone" }, { provider = "an", model = "claude-noprefill" }]
[routes.err]
targets = [{ provider = "an", model = "claude-break4", id = "err" }]
[routes.instruction]
after_commit = "continue"
targets = [{ provider = "an", model = "claude-break3" }, { provider = "an", model = "claude-noprefill", continuation = "instruction" }]
"#,
    )
    .await;
    // (Separate ids keep each route's breaks off the others' breaker: health is shared per target id.)
    // Anthropic targets get a prefill by default: claude-noprefill answers it with a 400; claude-ok continues.
    assert_whole(&both(&h, "next").await, WHOLE);
    assert_eq!((h.upstream.calls("claude-noprefill"), h.upstream.calls("claude-ok")), (2, 2));

    // With no one after it, the caller sees the original break, never the refusal.
    let alone = both(&h, "alone").await;
    let plain = both(&h, "err").await;
    assert_eq!(h.upstream.calls("claude-noprefill"), 4);
    for (read, original) in alone.iter().zip(&plain) {
        assert!(!read.finished && read.text == DELIVERED, "{read:?}");
        let (error, original) = (read.error.as_ref().unwrap(), original.error.as_ref().unwrap());
        assert_eq!(error["type"], original["type"], "{error} vs {original}");
        assert!(!error.to_string().contains("prefill"), "{error}");
    }

    // Set to `instruction`, the same model is never sent a prefill: it answers (a restart of the same words
    // after "Hello! This is ", deduplicated).
    assert_whole(
        &both(&h, "instruction").await,
        "Hello! This is claude-noprefill answering from the simulated upstream.",
    );
}

#[tokio::test]
async fn a_none_target_is_never_asked_to_continue() {
    let h = start(
        r#"
[routes.cont]
after_commit = "continue"
targets = [
  { provider = "an", model = "claude-break4" },
  { provider = "an", model = "claude-spare-ok", continuation = "none" },
  { provider = "an", model = "claude-ok" },
]
[routes.plain]
targets = [{ provider = "an", model = "claude-503" }, { provider = "an", model = "claude-spare-ok", continuation = "none" }]
"#,
    )
    .await;
    assert_whole(&both(&h, "cont").await, WHOLE);
    assert_eq!((h.upstream.calls("claude-spare-ok"), h.upstream.calls("claude-ok")), (0, 2));
    // It still serves as an ordinary fallback.
    let [openai, anthropic] = both(&h, "plain").await;
    assert!(openai.finished && anthropic.finished);
    assert_eq!(h.upstream.calls("claude-spare-ok"), 2);
}
