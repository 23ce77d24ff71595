//! The common Messages API request (turns of plain text, a text system prompt, the usual sampling and streaming
//! options, any other top-level field kept as it is) read by the strict reader of `json_scan` into the very
//! wire value serde would make, without serde's buffering of every value of a struct with a flattened field.
//! Anything else (content blocks, system blocks, tools, `tool_choice`, duplicate or escaped keys, numbers of
//! another type, malformed JSON) is "not mine" (`None`): the serde path reads it as before, errors included.

use super::wire::{MessagesRequest, SystemPrompt, WireContent, WireMessage, WireRole};
use crate::json_scan::{Reader, Seen, keys, mentions_tool_keys};

// The keys of a request, in the order the Anthropic SDKs write them (by name).
keys!(Top, TOP_KEYS {
    MaxTokens = "max_tokens",
    Messages = "messages",
    Model = "model",
    StopSequences = "stop_sequences",
    Stream = "stream",
    System = "system",
    Temperature = "temperature",
    ToolChoice = "tool_choice",
    Tools = "tools",
    TopP = "top_p",
});
keys!(MessageKey, MESSAGE_KEYS { Role = "role", Content = "content" });

/// Reads `body` if it is a request this reader takes exactly as serde reads [`MessagesRequest`].
pub(crate) fn scan(body: &[u8]) -> Option<MessagesRequest> {
    // Tool definitions are left to serde, and come after the messages: known before reading those.
    if mentions_tool_keys(body) {
        return None;
    }
    let mut r = Reader::new(crate::utf8::text(body)?);
    let mut seen = Seen::default();
    let mut request = MessagesRequest::default();
    let mut messages = None;
    r.object(TOP_KEYS, |r, key| {
        match key {
            Some(Top::MaxTokens) => {
                seen.once(0)?;
                request.max_tokens = r.opt_u32()?;
            }
            Some(Top::Messages) => {
                seen.once(1)?;
                messages = Some(r.list(message)?);
            }
            Some(Top::Model) => {
                seen.once(2)?;
                request.model = r.string()?.into_owned();
            }
            Some(Top::StopSequences) => {
                seen.once(3)?;
                request.stop_sequences = r.opt_strings()?;
            }
            Some(Top::Stream) => {
                seen.once(4)?;
                request.stream = r.opt_bool()?;
            }
            Some(Top::System) => {
                seen.once(5)?;
                request.system = r.opt_string()?.map(|text| SystemPrompt::Text(text.into_owned()));
            }
            Some(Top::Temperature) => {
                seen.once(6)?;
                request.temperature = r.opt_f64()?;
            }
            Some(Top::TopP) => {
                seen.once(7)?;
                request.top_p = r.opt_f64()?;
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

/// One element of `messages`: a turn whose content is a string.
fn message(r: &mut Reader<'_>) -> Option<WireMessage> {
    let mut seen = Seen::default();
    let (mut role, mut content) = (None, None);
    r.object(MESSAGE_KEYS, |r, key| {
        match key {
            Some(MessageKey::Role) => {
                seen.once(0)?;
                role = Some(match &*r.string()? {
                    "user" => WireRole::User,
                    "assistant" => WireRole::Assistant,
                    _ => return None,
                });
            }
            Some(MessageKey::Content) => {
                seen.once(1)?;
                content = Some(WireContent::Text(r.string()?.into_owned()));
            }
            None => r.skip(1)?,
        }
        Some(())
    })?;
    Some(WireMessage { role: role?, content: content? })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests the reader takes; each must read as serde reads it.
    const TAKEN: &[&str] = &[
        r#"{"model":"anthropic-ok","max_tokens":64,"messages":[{"role":"user","content":"Say hello."}]}"#,
        r#"{"max_tokens":1024,"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"}],"model":"claude-sonnet-4-5","stream":true,"system":"Be brief.","temperature":0.5,"top_p":1}"#,
        r#" { "messages" : [ { "role" : "user" , "content" : "a\tb \u00e9 \ud83d\ude00" , "id" : 3 } ] } "#,
        r#"{"messages":[{"role":"user","content":"which \"tools\"?"}]}"#,
        r#"{"messages":[],"metadata":{"user_id":"u-1"},"top_k":5,"thinking":{"type":"disabled"},"stop_sequences":["\n\nHuman:"]}"#,
        r#"{"messages":[],"max_tokens":null,"system":null,"stream":null,"temperature":null,"top_p":null,"stop_sequences":null}"#,
        r#"{"messages":[],"stop_sequences":[],"temperature":-0.0,"max_tokens":4294967295}"#,
    ];

    /// Requests left to serde: shapes this reader does not read, and serde's errors.
    const LEFT: &[&str] = &[
        // Content blocks, system blocks, tools, a tool choice.
        r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}"#,
        r#"{"messages":[],"system":[{"type":"text","text":"x"}]}"#,
        r#"{"messages":[],"tools":[]}"#,
        r#"{"messages":[],"tool_choice":{"type":"auto"}}"#,
        // An escaped key and a repeated field of the others.
        r#"{"mod\u0065l":"m","messages":[]}"#,
        r#"{"messages":[],"top_k":1,"top_k":2}"#,
        // Serde's errors: no messages, no content, duplicate keys, wrong types, overflow, unknown role.
        r#"{"model":"m"}"#,
        r#"{"messages":[{"role":"user"}]}"#,
        r#"{"messages":[{"role":"user","content":null}]}"#,
        r#"{"messages":[{"role":"system","content":"x"}]}"#,
        r#"{"messages":[{"role":"user","content":"x","content":"y"}]}"#,
        r#"{"messages":[],"model":"a","model":"b"}"#,
        r#"{"messages":[],"max_tokens":4294967296}"#,
        r#"{"messages":[],"max_tokens":"64"}"#,
        r#"{"messages":[],"stream":1}"#,
        r#"{"messages":[],"stop_sequences":"x"}"#,
        r#"{"messages":[],"temperature":true}"#,
        // Malformed JSON.
        r#"{"messages":[],}"#,
        r#"{"messages":[]}]"#,
        "",
    ];

    #[test]
    fn common_requests_read_as_serde_reads_them() {
        for body in TAKEN {
            let ours = scan(body.as_bytes()).unwrap_or_else(|| panic!("not taken: {body}"));
            let theirs: MessagesRequest = serde_json::from_str(body).unwrap();
            assert_eq!(ours, theirs, "{body}");
        }
    }

    #[test]
    fn anything_else_is_left_to_serde() {
        for body in LEFT {
            assert_eq!(scan(body.as_bytes()), None, "{body}");
            match serde_json::from_str::<MessagesRequest>(body) {
                Err(_) => {}
                // What serde reads and the quick reader leaves: the shapes above, an escaped key, a repeated
                // field of the others.
                Ok(_) => assert!(
                    ["\"type\"", "tools", "\\u0065", "\"top_k\":2"].iter().any(|shape| body.contains(shape)),
                    "{body}"
                ),
            }
        }
    }
}
