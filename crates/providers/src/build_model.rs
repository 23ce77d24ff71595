//! `build_model`: a provider config becomes a shared [`ChatModel`](switchyard::ChatModel).

use std::sync::Arc;

use switchyard::SharedModel;

use crate::anthropic::AnthropicClient;
use crate::build_error::ProviderError;
use crate::config::{ProviderConfig, ProviderKind};
use crate::openai::OpenAiClient;

/// Builds the client for `config.kind`, with one pooled HTTP client for this provider.
pub fn build_model(config: ProviderConfig) -> Result<SharedModel, ProviderError> {
    Ok(match config.kind {
        ProviderKind::OpenAi => Arc::new(OpenAiClient::new(config)?),
        ProviderKind::Anthropic => Arc::new(AnthropicClient::new(config)?),
    })
}
