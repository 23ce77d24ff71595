//! A neutral [`ChatResponse`] as a Responses API `response` object.

use switchyard::{ChatResponse, FinishReason, Part, Usage};

use super::wire::{
    Echo, IncompleteDetails, InputTokensDetails, OutputItem, OutputText, OutputTokensDetails, ResponseObject,
    ResponseUsage, Status,
};
use crate::ids::{new_id, unix_now};

/// The `response` object for a whole answer, naming `model` and repeating `echo`.
pub fn encode_response(response: &ChatResponse, model: &str, echo: &Echo) -> ResponseObject {
    let mut output = Vec::new();
    let mut text = String::new();
    for part in &response.message.content {
        match part {
            Part::Text { text: t } => text.push_str(t),
            Part::ToolCall(call) => output.push(OutputItem::FunctionCall {
                id: new_id("fc_"),
                call_id: call.id.clone(),
                name: call.name.clone(),
                arguments: call.arguments.clone(),
                status: Status::Completed,
            }),
            Part::Image { .. } | Part::ToolResult(_) => {}
        }
    }
    // The message comes first, as a model writes its text before its calls.
    if !text.is_empty() || output.is_empty() {
        let message = OutputItem::Message {
            id: new_id("msg_"),
            role: "assistant",
            status: Status::Completed,
            content: vec![OutputText::new(text)],
        };
        output.insert(0, message);
    }
    let mut object = response_object(new_id("resp_"), model, echo);
    object.output = output;
    object.usage = Some(usage(response.usage));
    finish(&mut object, &response.finish_reason);
    object
}

/// An empty `in_progress` response.
pub(crate) fn response_object(id: String, model: &str, echo: &Echo) -> ResponseObject {
    ResponseObject {
        id,
        object: "response",
        created_at: unix_now(),
        status: Status::InProgress,
        error: None,
        incomplete_details: None,
        model: model.to_owned(),
        output: Vec::new(),
        usage: None,
        previous_response_id: None,
        store: false,
        echo: echo.clone(),
    }
}

/// Sets the status a finish reason means: a token limit or a content filter leave the response incomplete.
pub(crate) fn finish(object: &mut ResponseObject, reason: &FinishReason) {
    let incomplete = match reason {
        FinishReason::Length => Some("max_output_tokens"),
        FinishReason::ContentFilter => Some("content_filter"),
        FinishReason::Stop | FinishReason::ToolCalls | FinishReason::Other(_) => None,
    };
    object.status = if incomplete.is_some() { Status::Incomplete } else { Status::Completed };
    object.incomplete_details = incomplete.map(|reason| IncompleteDetails { reason });
}

/// Usage in the Responses shape.
pub(crate) fn usage(usage: Usage) -> ResponseUsage {
    ResponseUsage {
        input_tokens: usage.input_tokens,
        input_tokens_details: InputTokensDetails::default(),
        output_tokens: usage.output_tokens,
        output_tokens_details: OutputTokensDetails::default(),
        total_tokens: usage.input_tokens + usage.output_tokens,
    }
}
