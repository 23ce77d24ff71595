//! The common OpenAI answer (a text or a refusal, no tool calls) read by the strict reader of `json_scan` into
//! the very wire value serde would make, for less than half of serde's work. Anything else (tool calls, log
//! probabilities, an `error` key, duplicate or escaped keys, numbers of another type, malformed JSON) is "not
//! mine" (`None`): the serde path reads it as before, errors included.

use std::borrow::Cow;

use super::wire::{ChatCompletion, Choice, ResponseMessage, WireUsage};
use crate::json_scan::{Reader, Seen, keys};

// The keys of an answer, its choice, message and usage, in the order OpenAI writes them (a key that comes
// only in an error goes last).
keys!(Top, TOP_KEYS {
    Id = "id",
    Object = "object",
    Created = "created",
    Model = "model",
    Choices = "choices",
    Usage = "usage",
    Error = "error",
});
keys!(ChoiceKey, CHOICE_KEYS {
    Index = "index",
    Message = "message",
    Logprobs = "logprobs",
    FinishReason = "finish_reason",
});
keys!(MessageKey, MESSAGE_KEYS { Role = "role", Content = "content", Refusal = "refusal", ToolCalls = "tool_calls" });
keys!(pub(super) UsageKey, USAGE_KEYS {
    Prompt = "prompt_tokens",
    Completion = "completion_tokens",
    Total = "total_tokens",
});

/// Reads `body` if it is an answer this reader takes exactly as serde reads [`ChatCompletion`].
pub(crate) fn scan(body: &[u8]) -> Option<ChatCompletion<'_>> {
    let mut r = Reader::new(crate::utf8::text(body)?);
    let mut seen = Seen::default();
    let (mut id, mut object, mut model) = (Cow::Borrowed(""), Cow::Borrowed(""), Cow::Borrowed(""));
    let (mut created, mut choices, mut usage) = (0, None, None);
    r.object(TOP_KEYS, |r, key| {
        match key {
            Some(Top::Id) => {
                seen.once(0)?;
                id = r.string()?;
            }
            Some(Top::Object) => {
                seen.once(1)?;
                object = r.string()?;
            }
            Some(Top::Created) => {
                seen.once(2)?;
                created = r.u64()?;
            }
            Some(Top::Model) => {
                seen.once(3)?;
                model = r.string()?;
            }
            Some(Top::Choices) => {
                seen.once(4)?;
                let mut list = Vec::with_capacity(1);
                r.array(|r| {
                    list.push(choice(r)?);
                    Some(())
                })?;
                choices = Some(list);
            }
            Some(Top::Usage) => {
                seen.once(5)?;
                usage = if r.null() { None } else { Some(wire_usage(r)?) };
            }
            // An error object in a 200: the serde path's error check reads it.
            Some(Top::Error) => return None,
            None => r.skip(0)?,
        }
        Some(())
    })?;
    if !r.at_end() {
        return None;
    }
    Some(ChatCompletion { id, object, created, model, choices: choices?, usage })
}

/// One element of `choices`.
fn choice<'a>(r: &mut Reader<'a>) -> Option<Choice<'a>> {
    let mut seen = Seen::default();
    let (mut index, mut message, mut finish_reason) = (0, None, None);
    r.object(CHOICE_KEYS, |r, key| {
        match key {
            Some(ChoiceKey::Index) => {
                seen.once(0)?;
                index = u32::try_from(r.u64()?).ok()?;
            }
            Some(ChoiceKey::Message) => {
                seen.once(1)?;
                message = Some(response_message(r)?);
            }
            Some(ChoiceKey::FinishReason) => {
                seen.once(2)?;
                finish_reason = r.opt_string()?;
            }
            // Log probabilities keep the serde path: `null` is the only form read here.
            Some(ChoiceKey::Logprobs) => {
                seen.once(3)?;
                r.null().then_some(())?;
            }
            None => r.skip(1)?,
        }
        Some(())
    })?;
    Some(Choice { index, message: message?, finish_reason, logprobs: None })
}

/// A choice's `message`.
fn response_message<'a>(r: &mut Reader<'a>) -> Option<ResponseMessage<'a>> {
    let mut seen = Seen::default();
    let mut message =
        ResponseMessage { role: Cow::Borrowed("assistant"), content: None, tool_calls: None, refusal: None };
    r.object(MESSAGE_KEYS, |r, key| {
        match key {
            Some(MessageKey::Role) => {
                seen.once(0)?;
                message.role = r.string()?;
            }
            Some(MessageKey::Content) => {
                seen.once(1)?;
                message.content = r.opt_string()?;
            }
            Some(MessageKey::Refusal) => {
                seen.once(2)?;
                message.refusal = r.opt_string()?;
            }
            // Tool calls keep the serde path: `null` is the only form read here.
            Some(MessageKey::ToolCalls) => {
                seen.once(3)?;
                r.null().then_some(())?;
            }
            None => r.skip(2)?,
        }
        Some(())
    })?;
    Some(message)
}

/// The `usage` object.
fn wire_usage(r: &mut Reader<'_>) -> Option<WireUsage> {
    let mut seen = Seen::default();
    let mut usage = WireUsage::default();
    r.object(USAGE_KEYS, |r, key| {
        match key {
            Some(UsageKey::Prompt) => {
                seen.once(0)?;
                usage.prompt_tokens = r.u64()?;
            }
            Some(UsageKey::Completion) => {
                seen.once(1)?;
                usage.completion_tokens = r.u64()?;
            }
            Some(UsageKey::Total) => {
                seen.once(2)?;
                usage.total_tokens = r.u64()?;
            }
            None => r.skip(1)?,
        }
        Some(())
    })?;
    Some(usage)
}

#[cfg(test)]
mod tests {
    //! The quick reading against serde's, on answers written out: what it takes it must read as serde does;
    //! what it leaves, serde must refuse or read with a field the quick reader does not handle.

    use super::scan;
    use crate::openai::wire::ChatCompletion;

    const TAKEN: &[&str] = &[
        // The simulated upstream's answer, as OpenAI writes it.
        r#"{"id":"chatcmpl-sim1","object":"chat.completion","created":1796246943,"model":"bench-ok","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! This is bench-ok.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":9,"total_tokens":10},"system_fingerprint":null}"#,
        // OpenAI's current extras: annotations, service tier, token details.
        r#"{"id":"chatcmpl-B","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"Hi","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"accepted_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_1"}"#,
        // Escapes, surrogate pairs and raw unicode in the text; blanks everywhere JSON allows them.
        " {\n \"choices\" : [ { \"message\" : { \"content\" : \"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00 é 😀\" } , \"finish_reason\" : \"length\" } ] } \n",
        // A refusal, no content; another key order; no usage, usage null.
        r#"{"model":"m","choices":[{"finish_reason":"content_filter","message":{"refusal":"no","content":null,"role":"assistant"},"index":0}],"id":"x"}"#,
        r#"{"choices":[{"message":{"content":"t","tool_calls":null}}],"usage":null}"#,
        // Two choices (n > 1), an empty choice list, an empty usage, numbers at their limits.
        r#"{"choices":[{"index":0,"message":{"content":"a"},"finish_reason":"stop"},{"index":1,"message":{"content":"b"},"finish_reason":"stop"}]}"#,
        r#"{"choices":[],"usage":{}}"#,
        r#"{"created":18446744073709551615,"choices":[{"index":4294967295,"message":{}}],"usage":{"prompt_tokens":0}}"#,
        // Unknown values of every kind are skipped, nested ones too; "error": inside a string is no error key.
        r#"{"x":[1,-2.5e+3,true,false,null,{"y":{"z":["\u0041"]}}],"choices":[{"message":{"content":"\"error\": none"},"extra":{}}]}"#,
    ];

    const LEFT: &[&str] = &[
        // Tool calls and log probabilities: serde reads them.
        r#"{"choices":[{"message":{"content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}"#,
        r#"{"choices":[{"message":{"content":"a"},"logprobs":{"content":[]},"finish_reason":"stop"}]}"#,
        // An error object, a null one included.
        r#"{"error":{"message":"quota","type":"insufficient_quota"}}"#,
        r#"{"error":null,"choices":[]}"#,
        // Serde's errors: no choices, no message, duplicate keys, wrong types, overflow, a lone surrogate.
        r#"{"id":"a"}"#,
        r#"{"choices":[{"finish_reason":"stop"}]}"#,
        r#"{"id":"a","id":"b","choices":[]}"#,
        r#"{"choices":[{"message":{"content":"a","content":"b"}}]}"#,
        r#"{"choices":[],"usage":{"prompt_tokens":1,"prompt_tokens":2}}"#,
        r#"{"id":null,"choices":[]}"#,
        r#"{"choices":[{"message":{"role":null}}]}"#,
        r#"{"created":-1,"choices":[]}"#,
        r#"{"created":1.5,"choices":[]}"#,
        r#"{"created":18446744073709551616,"choices":[]}"#,
        r#"{"choices":[{"index":4294967296,"message":{}}]}"#,
        r#"{"choices":[],"usage":{"total_tokens":"3"}}"#,
        r#"{"choices":[{"message":{"content":"\ud800"}}]}"#,
        // Malformed JSON: a trailing comma, a raw control character, text after the object, not an object.
        r#"{"choices":[],}"#,
        "{\"choices\":[{\"message\":{\"content\":\"a\u{1}b\"}}]}",
        r#"{"choices":[]} x"#,
        r#"[]"#,
        "",
        // An escaped key: serde reads it as its text; the quick reader does not unescape keys.
        r#"{"choic\u0065s":[]}"#,
    ];

    #[test]
    fn common_answers_read_as_serde_reads_them() {
        for body in TAKEN {
            let ours = scan(body.as_bytes()).unwrap_or_else(|| panic!("not taken: {body}"));
            let theirs: ChatCompletion<'_> = serde_json::from_str(body).unwrap();
            assert_eq!(ours, theirs, "{body}");
        }
    }

    #[test]
    fn anything_else_is_left_to_serde() {
        for body in LEFT {
            assert_eq!(scan(body.as_bytes()), None, "{body}");
            match serde_json::from_str::<ChatCompletion<'_>>(body) {
                Err(_) => {}
                // What serde reads and the quick reader leaves: tool calls, log probabilities, an escaped key,
                // a null error key.
                Ok(_) => assert!(
                    body.contains("tool_calls")
                        || body.contains("logprobs")
                        || body.contains('\\')
                        || body.contains("error"),
                    "{body}"
                ),
            }
        }
    }

    #[test]
    fn a_body_that_is_not_utf8_is_left_to_serde() {
        assert_eq!(scan(b"{\"choices\":[{\"message\":{\"content\":\"\xff\"}}]}"), None);
    }
}
