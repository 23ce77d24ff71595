//! A configured provider: one pooled HTTP client and its credentials, shared by every model built from it.

use std::fmt;
use std::sync::Arc;

use switchyard::SharedModel;

use crate::anthropic::AnthropicClient;
use crate::build_error::ProviderError;
use crate::config::{ProviderConfig, ProviderKind, Timeouts};
use crate::http::{Auth, HttpClient};
use crate::openai::OpenAiClient;

/// One provider (e.g. `[providers.deepseek]`): build it once, then a model per target with [`Provider::model`].
#[derive(Clone)]
pub struct Provider {
    kind: ProviderKind,
    name: String,
    max_tokens: u32,
    http: HttpClient,
}

impl Provider {
    /// Builds the provider's HTTP client (connection pool, key, headers, connect timeout).
    pub fn new(config: &ProviderConfig) -> Result<Self, ProviderError> {
        let http = match config.kind {
            ProviderKind::OpenAi => HttpClient::new(config, "/chat/completions", Auth::Bearer, &[])?,
            ProviderKind::Anthropic => HttpClient::new(
                config,
                "/v1/messages",
                Auth::XApiKey,
                &[("anthropic-version", crate::anthropic::ANTHROPIC_VERSION)],
            )?,
        };
        Ok(Self { kind: config.kind, name: config.name.clone(), max_tokens: config.max_tokens, http })
    }

    /// The wire API.
    pub fn kind(&self) -> ProviderKind {
        self.kind
    }

    /// The provider's name in the config.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A model on this provider sharing its connection pool. `timeouts` apply to this model's calls; the
    /// connect timeout is the provider's (it belongs to the pool).
    pub fn model(&self, model: impl Into<String>, timeouts: Timeouts) -> SharedModel {
        let http = self.http.with_timeouts(timeouts);
        match self.kind {
            ProviderKind::OpenAi => Arc::new(OpenAiClient::from_parts(self.name.clone(), model.into(), http)),
            ProviderKind::Anthropic => {
                Arc::new(AnthropicClient::from_parts(self.name.clone(), model.into(), self.max_tokens, http))
            }
        }
    }
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("url", &self.http.shown_url())
            .finish_non_exhaustive()
    }
}
