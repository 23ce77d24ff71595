//! Switchyard's providers: clients for OpenAI-compatible APIs and the Anthropic Messages API, each a
//! [`switchyard::ChatModel`], plus the wire types and codecs the gateway uses to speak both APIs (and the
//! OpenAI Responses API, which it serves over either kind of target).
//!
//! Everything vendor-specific lives here: wire formats ([`openai::wire`], [`anthropic::wire`]), translation
//! to and from the engine's neutral types, SSE parsing ([`sse`]), and mapping of status codes and vendor
//! error bodies to the engine's error kinds. Each provider sends its own configured key; nothing from the
//! caller's request headers is ever forwarded.
//!
//! ```no_run
//! use switchyard::{ChatModel, ChatRequest};
//! use switchyard_providers::{ApiKey, ProviderConfig, ProviderKind, build_model};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = ProviderConfig::new(ProviderKind::Anthropic, "anthropic", "claude-sonnet-4-5");
//! config.api_key = Some(ApiKey::new(std::env::var("ANTHROPIC_API_KEY")?));
//! let model = build_model(config)?;
//! let answer = model.complete(ChatRequest::user("Hello")).await?;
//! println!("{}", answer.message.text());
//! # Ok(())
//! # }
//! ```

pub mod anthropic;
mod borrowed;
mod build_error;
mod build_model;
mod chunk_stream;
mod classify;
mod config;
mod event_decoder;
pub mod fields;
mod h1_body;
mod h1_conn;
mod h1_head;
mod header_names;
mod http;
pub mod http1;
mod ids;
mod joined_body;
mod json_error;
mod json_in;
mod json_out;
mod json_scan;
pub mod openai;
mod plain_client;
mod pool;
mod provider;
mod proxy_connector;
mod quota;
pub mod responses;
mod shown_url;
pub mod sse;
mod transport;
mod utf8;

pub use anthropic::AnthropicClient;
pub use build_error::ProviderError;
pub use build_model::build_model;
pub use config::{ApiKey, DEFAULT_MAX_TOKENS, ProviderConfig, ProviderKind, Timeouts};
pub use event_decoder::{Decoded, EventDecoder};
pub use joined_body::JoinedBody;
pub use json_scan::plain_run;
pub use openai::OpenAiClient;
pub use plain_client::{PlainBody, PlainClient, PlainClientError};
pub use provider::Provider;
pub use shown_url::redact_url;
