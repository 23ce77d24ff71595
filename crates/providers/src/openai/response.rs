//! OpenAI response ↔ neutral [`ChatResponse`]: `encode_response` for the gateway, `from_wire` for the client.

use std::borrow::Cow;

use switchyard::{ChatResponse, Error, FinishReason, Message, Part, Role, ToolCall, Usage};

use super::wire::{ChatCompletion, Choice, FunctionCall, ResponseMessage, WireToolCall, WireUsage};
use crate::ids::{new_id, unix_now};
use crate::json_out;

/// The OpenAI name of a finish reason (a vendor-specific one becomes `stop`).
pub fn finish_reason_str(reason: &FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop | FinishReason::Other(_) => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
    }
}

/// Reads an OpenAI finish reason.
pub fn parse_finish_reason(reason: &str) -> FinishReason {
    match reason {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// Usage in OpenAI's shape.
pub fn wire_usage(usage: Usage) -> WireUsage {
    WireUsage {
        prompt_tokens: usage.input_tokens,
        completion_tokens: usage.output_tokens,
        total_tokens: usage.input_tokens + usage.output_tokens,
    }
}

/// The OpenAI body for a neutral response, naming `model` (the name the caller asked for). It borrows from
/// `response`: writing it copies each string once, into the output.
pub fn encode_response<'a>(response: &'a ChatResponse, model: &'a str) -> ChatCompletion<'a> {
    let text = text_of(&response.message);
    let calls: Vec<WireToolCall> = response
        .message
        .tool_calls()
        .map(|c| WireToolCall {
            id: c.id.clone(),
            kind: "function".into(),
            function: FunctionCall { name: c.name.clone(), arguments: c.arguments.clone() },
        })
        .collect();
    ChatCompletion {
        id: if response.id.is_empty() { Cow::Owned(new_id("chatcmpl-")) } else { Cow::Borrowed(&response.id) },
        object: Cow::Borrowed("chat.completion"),
        created: unix_now(),
        model: Cow::Borrowed(model),
        choices: vec![Choice {
            index: 0,
            message: ResponseMessage {
                role: Cow::Borrowed("assistant"),
                content: if text.is_empty() && !calls.is_empty() { None } else { Some(text) },
                tool_calls: if calls.is_empty() { None } else { Some(calls) },
                refusal: None,
            },
            finish_reason: Some(Cow::Borrowed(finish_reason_str(&response.finish_reason))),
            logprobs: None,
        }],
        usage: Some(wire_usage(response.usage)),
    }
}

/// Writes the OpenAI body for a neutral response into `out`: the bytes of [`encode_response`]'s serde output,
/// written by hand for an answer without tool calls (nearly all), through the wire type for the rest.
pub fn write_response(response: &ChatResponse, model: &str, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    if response.message.tool_calls().next().is_some() {
        return serde_json::to_writer(out, &encode_response(response, model));
    }
    out.extend_from_slice(b"{\"id\":");
    if response.id.is_empty() {
        json_out::push_str(out, &new_id("chatcmpl-"));
    } else {
        json_out::push_str(out, &response.id);
    }
    out.extend_from_slice(b",\"object\":\"chat.completion\",\"created\":");
    json_out::push_u64(out, unix_now());
    out.extend_from_slice(b",\"model\":");
    json_out::push_str(out, model);
    out.extend_from_slice(b",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    json_out::push_str(out, &text_of(&response.message));
    out.extend_from_slice(b"},\"finish_reason\":");
    json_out::push_str(out, finish_reason_str(&response.finish_reason));
    out.extend_from_slice(b",\"logprobs\":null}],");
    push_usage(out, response.usage);
    out.push(b'}');
    Ok(())
}

/// Appends `"usage":{…}` for `usage`, as the wire type's serde output has it.
pub(crate) fn push_usage(out: &mut Vec<u8>, usage: Usage) {
    let usage = wire_usage(usage);
    out.extend_from_slice(b"\"usage\":{\"prompt_tokens\":");
    json_out::push_u64(out, usage.prompt_tokens);
    out.extend_from_slice(b",\"completion_tokens\":");
    json_out::push_u64(out, usage.completion_tokens);
    out.extend_from_slice(b",\"total_tokens\":");
    json_out::push_u64(out, usage.total_tokens);
    out.push(b'}');
}

/// The message's text parts joined; borrowed when there is one (the usual answer), so it is not copied.
fn text_of(message: &Message) -> Cow<'_, str> {
    let mut texts = message.content.iter().filter_map(|p| match p {
        Part::Text { text } => Some(text.as_str()),
        _ => None,
    });
    match (texts.next(), texts.next()) {
        (None, _) => Cow::Borrowed(""),
        (Some(only), None) => Cow::Borrowed(only),
        (Some(_), Some(_)) => Cow::Owned(message.text()),
    }
}

/// Reads an upstream OpenAI answer. A refusal or content-filter stop with no content is ContentFiltered.
pub fn from_wire(wire: ChatCompletion<'_>) -> Result<ChatResponse, Error> {
    let Some(choice) = wire.choices.into_iter().next() else {
        return Err(Error::invalid_response("the response has no choices"));
    };
    let mut content = Vec::new();
    if let Some(text) = choice.message.content.filter(|t| !t.is_empty()) {
        content.push(Part::Text { text: text.into_owned() });
    }
    for call in choice.message.tool_calls.unwrap_or_default() {
        content.push(Part::ToolCall(ToolCall {
            id: call.id,
            name: call.function.name,
            arguments: call.function.arguments,
        }));
    }
    let finish_reason = match choice.finish_reason.as_deref() {
        Some(reason) => parse_finish_reason(reason),
        None => return Err(Error::invalid_response("the response's choice has no finish_reason")),
    };
    if content.is_empty() && (finish_reason == FinishReason::ContentFilter || choice.message.refusal.is_some()) {
        let message = choice
            .message
            .refusal
            .map_or_else(|| "the provider's content filter stopped the answer".into(), Cow::into_owned);
        return Err(Error::content_filtered(message));
    }
    let usage = wire.usage.unwrap_or_default();
    Ok(ChatResponse {
        id: wire.id.into_owned(),
        model: wire.model.into_owned(),
        message: Message { role: Role::Assistant, content },
        finish_reason,
        usage: Usage { input_tokens: usage.prompt_tokens, output_tokens: usage.completion_tokens },
        served_by: None,
        attempts: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    //! The hand-written answer against the wire type's serde output: the bytes must not change.

    use switchyard::{ChatResponse, FinishReason, Message, Part, Role, Usage};

    use super::{encode_response, write_response};

    /// Both writings of `response`, taken within the same clock second (`created` is the clock's).
    fn both(response: &ChatResponse) -> (String, String) {
        loop {
            let mut ours = Vec::new();
            write_response(response, "m\"odel", &mut ours).unwrap();
            let theirs = serde_json::to_vec(&encode_response(response, "m\"odel")).unwrap();
            let created = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).unwrap()["created"].clone();
            if created(&ours) == created(&theirs) {
                return (String::from_utf8(ours).unwrap(), String::from_utf8(theirs).unwrap());
            }
        }
    }

    #[test]
    fn an_answer_without_tool_calls_is_written_as_the_wire_types_bytes() {
        let mut response = ChatResponse::text("m", "Hel\"lo\n\u{1} ✓");
        response.id = "chatcmpl-\\1".into();
        response.finish_reason = FinishReason::Length;
        response.usage = Usage { input_tokens: 3, output_tokens: 9 };
        let (ours, theirs) = both(&response);
        assert_eq!(ours, theirs);
        response.message = Message { role: Role::Assistant, content: Vec::new() };
        let (ours, theirs) = both(&response);
        assert_eq!(ours, theirs);
        response.message.content = vec![Part::Text { text: "a".into() }, Part::Text { text: "b".into() }];
        let (ours, theirs) = both(&response);
        assert_eq!(ours, theirs);
    }
}
