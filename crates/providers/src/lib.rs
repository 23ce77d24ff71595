//! Switchyard's providers: clients for OpenAI-compatible APIs and the Anthropic Messages API, each a
//! [`switchyard::ChatModel`], plus the wire types and codecs the gateway uses to speak both APIs.
//!
//! Everything vendor-specific lives here: wire formats, translation to and from the engine's neutral
//! types, SSE parsing, and mapping of status codes and vendor error bodies to the engine's error kinds.

pub mod anthropic;
mod build_error;
mod build_model;
mod chunk_stream;
mod classify;
mod config;
mod event_decoder;
mod http;
mod ids;
mod json_error;
pub mod openai;
mod provider;
pub mod sse;

pub use anthropic::AnthropicClient;
pub use build_error::ProviderError;
pub use build_model::build_model;
pub use config::{ApiKey, DEFAULT_MAX_TOKENS, ProviderConfig, ProviderKind, Timeouts};
pub use event_decoder::EventDecoder;
pub use openai::OpenAiClient;
pub use provider::Provider;
