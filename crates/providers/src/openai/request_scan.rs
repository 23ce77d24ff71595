//! The common chat-completions request (text messages, the usual sampling and streaming options, any other
//! top-level field kept as it is) read by the strict reader of `json_scan` into the very wire value serde
//! would make. serde's derive buffers every value of a struct with a flattened field (`extra`) before it reads
//! it: reading the bench's request this way took 1.8k instructions off a proxied answer (67.3k). Anything else
//! (tools, `tool_choice`, content parts, tool calls, duplicate or escaped keys, numbers of another
//! type, malformed JSON) is "not mine" (`None`): the serde path reads it as before, errors included.

use super::wire::{ChatCompletionRequest, MessageContent, RequestMessage, Stop, StreamOptions, WireRole};
use crate::json_scan::{Reader, Seen, keys, mentions_tool_keys};

// The keys of a request, in the order the OpenAI SDKs write them (messages and model, then the options by
// name).
keys!(Top, TOP_KEYS {
    Messages = "messages",
    Model = "model",
    MaxCompletionTokens = "max_completion_tokens",
    MaxTokens = "max_tokens",
    ParallelToolCalls = "parallel_tool_calls",
    Stop = "stop",
    Stream = "stream",
    StreamOptions = "stream_options",
    Temperature = "temperature",
    ToolChoice = "tool_choice",
    Tools = "tools",
    TopP = "top_p",
});
keys!(MessageKey, MESSAGE_KEYS {
    Role = "role",
    Content = "content",
    ToolCallId = "tool_call_id",
    ToolCalls = "tool_calls",
});
keys!(OptionsKey, OPTIONS_KEYS { IncludeUsage = "include_usage" });

/// Reads `body` if it is a request this reader takes exactly as serde reads [`ChatCompletionRequest`].
pub(crate) fn scan(body: &[u8]) -> Option<ChatCompletionRequest> {
    // Tool definitions are left to serde, and come after the messages: known before reading those.
    if mentions_tool_keys(body) {
        return None;
    }
    let mut r = Reader::new(crate::utf8::text(body)?);
    let mut seen = Seen::default();
    let mut request = ChatCompletionRequest::default();
    let mut messages = None;
    r.object(TOP_KEYS, |r, key| {
        match key {
            Some(Top::Messages) => {
                seen.once(0)?;
                messages = Some(r.list(message)?);
            }
            Some(Top::Model) => {
                seen.once(1)?;
                request.model = r.string()?.into_owned();
            }
            Some(Top::MaxCompletionTokens) => {
                seen.once(2)?;
                request.max_completion_tokens = r.opt_u32()?;
            }
            Some(Top::MaxTokens) => {
                seen.once(3)?;
                request.max_tokens = r.opt_u32()?;
            }
            Some(Top::ParallelToolCalls) => {
                seen.once(4)?;
                request.parallel_tool_calls = r.opt_bool()?;
            }
            Some(Top::Stream) => {
                seen.once(5)?;
                request.stream = r.opt_bool()?;
            }
            Some(Top::StreamOptions) => {
                seen.once(6)?;
                request.stream_options = if r.null() { None } else { Some(stream_options(r)?) };
            }
            Some(Top::Temperature) => {
                seen.once(7)?;
                request.temperature = r.opt_f64()?;
            }
            Some(Top::TopP) => {
                seen.once(8)?;
                request.top_p = r.opt_f64()?;
            }
            Some(Top::Stop) => {
                seen.once(9)?;
                request.stop = if r.peek_string() {
                    Some(Stop::One(r.string()?.into_owned()))
                } else {
                    r.opt_strings()?.map(Stop::Many)
                };
            }
            // Never met unescaped (see `mentions_tool_keys` above); an escaped key is not mine either.
            Some(Top::ToolChoice | Top::Tools) => return None,
            None => r.extra_member(&mut request.extra)?,
        }
        Some(())
    })?;
    if !r.at_end() {
        return None;
    }
    request.messages = messages?;
    Some(request)
}

/// One element of `messages`: a text (or `null`) content, no tool calls.
fn message(r: &mut Reader<'_>) -> Option<RequestMessage> {
    let mut seen = Seen::default();
    let (mut role, mut content, mut tool_call_id) = (None, None, None);
    r.object(MESSAGE_KEYS, |r, key| {
        match key {
            Some(MessageKey::Role) => {
                seen.once(0)?;
                role = Some(match &*r.string()? {
                    "system" => WireRole::System,
                    "developer" => WireRole::Developer,
                    "user" => WireRole::User,
                    "assistant" => WireRole::Assistant,
                    "tool" => WireRole::Tool,
                    _ => return None,
                });
            }
            Some(MessageKey::Content) => {
                seen.once(1)?;
                content = r.opt_string()?.map(|text| MessageContent::Text(text.into_owned()));
            }
            Some(MessageKey::ToolCallId) => {
                seen.once(2)?;
                tool_call_id = r.opt_string()?.map(|id| id.into_owned());
            }
            // Tool calls keep the serde path: `null` is the only form read here.
            Some(MessageKey::ToolCalls) => {
                seen.once(3)?;
                r.null().then_some(())?;
            }
            None => r.skip(1)?,
        }
        Some(())
    })?;
    Some(RequestMessage { role: role?, content, tool_calls: None, tool_call_id })
}

fn stream_options(r: &mut Reader<'_>) -> Option<StreamOptions> {
    let mut seen = Seen::default();
    let mut options = StreamOptions::default();
    r.object(OPTIONS_KEYS, |r, key| {
        match key {
            Some(OptionsKey::IncludeUsage) => {
                seen.once(0)?;
                options.include_usage = r.bool()?;
            }
            None => r.skip(1)?,
        }
        Some(())
    })?;
    Some(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests the reader takes; each must read as serde reads it.
    const TAKEN: &[&str] = &[
        r#"{"model":"bench-ok","messages":[{"role":"user","content":"Say hello to the benchmark, please."}],"max_tokens":64}"#,
        r#"{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"temperature":0.7}"#,
        r#" { "model" : "m" , "messages" : [ { "role" : "user" , "content" : "a\nb \u00e9 \ud83d\ude00" } ] } "#,
        r#"{"messages":[{"role":"developer","content":"x"},{"role":"assistant","content":null},{"role":"tool","content":"42","tool_call_id":"call_1"}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"x","name":"ann","tool_calls":null}],"user":"u-1","n":1,"seed":7,"metadata":{"a":[1,2.5,null,true]},"logit_bias":{}}"#,
        r#"{"model":"m","messages":[],"temperature":1,"top_p":-0.0,"max_completion_tokens":4294967295,"parallel_tool_calls":false}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":null,"top_p":null,"max_tokens":null,"stream":null,"stream_options":null}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":false,"other":[{}]}}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":1e-3,"top_p":0.30000000000000004,"frequency_penalty":-1.5e2}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream_options":{}}"#,
        r#"{"messages":[{"role":"user","content":""}]}"#,
        r#"{"messages":[{"role":"user","content":"list the \"tools\" and the \"tool_choice\""}]}"#,
        r#"{"messages":[],"stop":"\n"}"#,
        r#"{"messages":[],"stop":["a","b\u0000"]}"#,
        r#"{"messages":[],"stop":[]}"#,
        r#"{"messages":[],"stop":null}"#,
    ];

    /// Requests left to serde: shapes this reader does not read, and serde's errors.
    const LEFT: &[&str] = &[
        // Tools, a tool choice, content parts, tool calls.
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"auto"}"#,
        // A string that is exactly a tool key's name is taken for the key (serde reads it).
        r#"{"model":"m","messages":[{"role":"user","content":"tools"}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}"#,
        r#"{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","function":{"name":"f"}}]}]}"#,
        // An escaped key (serde reads it as its text) and a repeated field of the others (serde keeps the last).
        r#"{"mod\u0065l":"m","messages":[]}"#,
        r#"{"model":"m","messages":[],"user":"a","user":"b"}"#,
        // Serde's errors: no messages, duplicate keys, wrong types, overflow, unknown role, a lone surrogate.
        r#"{"model":"m"}"#,
        r#"{"model":"m","model":"n","messages":[]}"#,
        r#"{"messages":[{"role":"user","role":"user","content":"x"}]}"#,
        r#"{"messages":[{"content":"x"}]}"#,
        r#"{"messages":[{"role":"robot","content":"x"}]}"#,
        r#"{"messages":[{"role":"user","content":1}]}"#,
        r#"{"model":null,"messages":[]}"#,
        r#"{"messages":[],"max_tokens":4294967296}"#,
        r#"{"messages":[],"max_tokens":-1}"#,
        r#"{"messages":[],"max_tokens":1.0}"#,
        r#"{"messages":[],"temperature":"0.7"}"#,
        r#"{"messages":[],"temperature":1e400}"#,
        r#"{"messages":[],"stream":"yes"}"#,
        r#"{"messages":[],"stop":[1]}"#,
        r#"{"messages":[],"stop":{}}"#,
        r#"{"messages":[],"stream_options":{"include_usage":null}}"#,
        r#"{"messages":[],"stream_options":{"include_usage":true,"include_usage":true}}"#,
        r#"{"messages":[{"role":"user","content":"\ud800"}]}"#,
        // Malformed JSON: a trailing comma, a raw control character, text after the object, not an object.
        r#"{"messages":[],}"#,
        "{\"messages\":[{\"role\":\"user\",\"content\":\"a\u{1}b\"}]}",
        r#"{"messages":[]} x"#,
        r#"[]"#,
        "",
    ];

    #[test]
    fn common_requests_read_as_serde_reads_them() {
        for body in TAKEN {
            let ours = scan(body.as_bytes()).unwrap_or_else(|| panic!("not taken: {body}"));
            let theirs: ChatCompletionRequest = serde_json::from_str(body).unwrap();
            assert_eq!(ours, theirs, "{body}");
        }
    }

    #[test]
    fn other_fields_are_kept_with_their_values() {
        let body = r#"{"model":"m","messages":[],"user":"u-1","n":2,"metadata":{"k":[1.5,null]}}"#;
        let ours = scan(body.as_bytes()).unwrap();
        let expected = serde_json::json!({"user": "u-1", "n": 2, "metadata": {"k": [1.5, null]}});
        assert_eq!(serde_json::Value::Object(ours.extra), expected);
    }

    #[test]
    fn anything_else_is_left_to_serde() {
        for body in LEFT {
            assert_eq!(scan(body.as_bytes()), None, "{body}");
            match serde_json::from_str::<ChatCompletionRequest>(body) {
                Err(_) => {}
                // What serde reads and the quick reader leaves: the shapes above, an escaped key, a repeated
                // field of the others.
                Ok(_) => assert!(
                    ["tools", "tool_choice", "\"type\"", "tool_calls", "\\u0065", "\"user\":\"b\""]
                        .iter()
                        .any(|shape| body.contains(shape)),
                    "{body}"
                ),
            }
        }
    }

    #[test]
    fn a_body_that_is_not_utf8_is_left_to_serde() {
        assert_eq!(scan(b"{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}"), None);
    }
}
