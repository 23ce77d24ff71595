//! Per-request planning: which targets cannot serve this request (it needs tools they lack, or it
//! will not fit their context window), so they are skipped before any call.

use crate::skip::SkipReason;
use crate::types::{ChatRequest, Part};

/// A rough, cheap token count: about four characters per token over everything the model reads,
/// plus `max_tokens` (providers refuse a prompt whose answer cannot fit either). It errs low for
/// code and non-Latin text, so a target it lets through may still answer ContextLength, which then
/// falls back to a larger window; it never refuses a request that clearly fits.
pub(crate) fn estimate_tokens(request: &ChatRequest) -> u64 {
    estimate_prompt_tokens(request) + u64::from(request.options.max_tokens.unwrap_or(0))
}

/// The prompt part of [`estimate_tokens`]: about four characters per token over what the model reads.
pub(crate) fn estimate_prompt_tokens(request: &ChatRequest) -> u64 {
    let mut chars = request.system.as_deref().map_or(0, str::len);
    for message in &request.messages {
        for part in &message.content {
            chars += match part {
                Part::Text { text } => text.chars().count(),
                Part::Image { .. } => 0,
                Part::ToolCall(call) => call.name.len() + call.arguments.chars().count(),
                Part::ToolResult(result) => result.content.chars().count(),
            };
        }
    }
    for tool in &request.tools {
        chars += tool.name.len() + tool.description.as_deref().map_or(0, str::len) + tool.parameters.to_string().len();
    }
    (chars as u64).div_ceil(4)
}

/// Whether the request needs a model that takes tools: it offers tools or carries a tool round.
pub(crate) fn needs_tools(request: &ChatRequest) -> bool {
    !request.tools.is_empty()
        || request
            .messages
            .iter()
            .flat_map(|m| &m.content)
            .any(|p| matches!(p, Part::ToolCall(_) | Part::ToolResult(_)))
}

/// Why a target with these declared limits cannot serve the request, if it cannot.
pub(crate) fn unfit(
    request: &ChatRequest,
    estimate: u64,
    context_window: Option<u64>,
    supports_tools: Option<bool>,
) -> Option<SkipReason> {
    if supports_tools == Some(false) && needs_tools(request) {
        return Some(SkipReason::NoTools { offered: request.tools.len() });
    }
    match context_window {
        Some(window) if estimate > window => Some(SkipReason::WindowTooSmall { needed: estimate, window }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_characters_a_token_plus_max_tokens() {
        let mut r = ChatRequest::user("x".repeat(400)).with_system("y".repeat(40));
        assert_eq!(estimate_tokens(&r), 110);
        r.options.max_tokens = Some(1000);
        assert_eq!(estimate_tokens(&r), 1110);
        assert_eq!(unfit(&r, 1110, Some(1110), None), None);
        assert_eq!(unfit(&r, 1110, Some(1109), None), Some(SkipReason::WindowTooSmall { needed: 1110, window: 1109 }));
        assert_eq!(unfit(&r, 1110, None, Some(false)), None);
    }
}
