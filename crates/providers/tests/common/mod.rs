//! Helpers shared by the provider tests: clients pointed at the simulated upstream, stream collection.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

pub mod child;
pub mod tls;

use futures::StreamExt;
use serde_json::json;
use switchyard::{ChatChunk, ChatModel, ChatRequest, Error, Message, SharedModel, ToolDefinition};
use switchyard_providers::{ApiKey, ProviderConfig, ProviderKind, Timeouts, build_model};
use switchyard_sim::{DEFAULT_API_KEY, Upstream, UpstreamConfig};

pub const KINDS: [ProviderKind; 2] = [ProviderKind::OpenAi, ProviderKind::Anthropic];

pub async fn upstream() -> Upstream {
    Upstream::start(UpstreamConfig::default()).await.unwrap()
}

pub fn config(upstream: &Upstream, kind: ProviderKind, model: &str) -> ProviderConfig {
    let mut config = ProviderConfig::new(kind, "sim", model);
    config.base_url = match kind {
        ProviderKind::OpenAi => upstream.openai_base_url(),
        ProviderKind::Anthropic => upstream.anthropic_base_url(),
    };
    config.api_key = Some(ApiKey::new(DEFAULT_API_KEY));
    config
}

pub fn client(upstream: &Upstream, kind: ProviderKind, model: &str) -> SharedModel {
    build_model(config(upstream, kind, model)).unwrap()
}

pub fn client_with(upstream: &Upstream, kind: ProviderKind, model: &str, timeouts: Timeouts) -> SharedModel {
    let mut config = config(upstream, kind, model);
    config.timeouts = timeouts;
    build_model(config).unwrap()
}

pub fn hello() -> ChatRequest {
    ChatRequest::user("Hello there").with_system("Be brief.")
}

pub fn tool_request() -> ChatRequest {
    let mut request = ChatRequest::user("Please use the tool for Paris");
    request.tools = vec![ToolDefinition {
        name: "get_weather".into(),
        description: Some("Weather for a city".into()),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    }];
    request
}

/// The chunks a stream yields, and the error that ended it, if any.
pub async fn drain(model: &dyn ChatModel, request: ChatRequest) -> (Vec<ChatChunk>, Option<Error>) {
    let mut stream = match model.stream(request).await {
        Ok(stream) => stream,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut chunks = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => chunks.push(chunk),
            Err(e) => return (chunks, Some(e)),
        }
    }
    (chunks, None)
}

pub fn text_of(chunks: &[ChatChunk]) -> String {
    chunks
        .iter()
        .filter_map(|c| match c {
            ChatChunk::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

pub fn content_count(chunks: &[ChatChunk]) -> usize {
    chunks.iter().filter(|c| c.is_content()).count()
}

/// The words of the text the chunks carry. The simulated upstream sends a word a chunk, but the reader joins
/// the texts that come in one read, so a count of chunks would depend on how the bytes were split.
pub fn words(chunks: &[ChatChunk]) -> usize {
    text_of(chunks).split_whitespace().count()
}

pub fn user(text: &str) -> Message {
    Message::user(text)
}
