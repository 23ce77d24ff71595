//! What a provider needs to know: its API kind, endpoint, key, model, headers and timeouts.

use std::fmt;
use std::time::Duration;

/// Which wire API a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// OpenAI chat completions and every OpenAI-compatible server (config `"openai"`).
    OpenAi,
    /// The Anthropic Messages API (config `"anthropic"`).
    Anthropic,
}

impl ProviderKind {
    /// The name used in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
        }
    }

    /// The vendor SDK's default base URL.
    pub fn default_base_url(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "https://api.openai.com/v1",
            ProviderKind::Anthropic => "https://api.anthropic.com",
        }
    }

    /// Parses the config name (`"openai"` or `"anthropic"`).
    pub fn from_config(name: &str) -> Option<Self> {
        match name {
            "openai" => Some(ProviderKind::OpenAi),
            "anthropic" => Some(ProviderKind::Anthropic),
            _ => None,
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A secret API key. `Debug` and `Display` print `[redacted]`, so it cannot leak through logs or errors.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself, for the one place that puts it in a request header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for ApiKey {
    fn from(key: String) -> Self {
        Self(key)
    }
}

impl From<&str> for ApiKey {
    fn from(key: &str) -> Self {
        Self(key.to_owned())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The time limits only the HTTP client can see; `None` means no limit for that phase. The limits of a
/// whole attempt, until its first content chunk and in total, belong to the engine
/// ([`ModelFallback::first_chunk_timeout`](switchyard::ModelFallback::first_chunk_timeout) and
/// [`total_timeout`](switchyard::ModelFallback::total_timeout)), which also shrinks them to the request's deadline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening the TCP/TLS connection.
    pub connect: Option<Duration>,
    /// Silence between two reads of a stream once content has started.
    pub idle: Option<Duration>,
}

/// Everything needed to build one provider's model. `Debug` shows header names only (values may be secrets).
#[derive(Clone)]
pub struct ProviderConfig {
    /// The wire API.
    pub kind: ProviderKind,
    /// The provider's name in the config (used in logs and errors).
    pub name: String,
    /// Base URL per the vendor SDK's convention (OpenAI: includes `/v1`; Anthropic: without it); empty: the default.
    pub base_url: String,
    /// The provider's own key; `None` sends no credentials (local servers).
    pub api_key: Option<ApiKey>,
    /// The model name sent upstream.
    pub model: String,
    /// `max_tokens` for Anthropic requests that set none.
    pub max_tokens: u32,
    /// Extra headers sent with every request.
    pub headers: Vec<(String, String)>,
    /// Time limits.
    pub timeouts: Timeouts,
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("ProviderConfig")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("base_url", &crate::redact_url(&self.base_url))
            .field("api_key", &self.api_key)
            .field("model", &self.model)
            .field("max_tokens", &self.max_tokens)
            .field("headers", &header_names)
            .field("timeouts", &self.timeouts)
            .finish()
    }
}

/// `max_tokens` sent to Anthropic when neither the request nor the config sets one.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

impl ProviderConfig {
    /// A config with the kind's default base URL, no key, no headers, no timeouts and `max_tokens` 4096.
    pub fn new(kind: ProviderKind, name: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
            base_url: kind.default_base_url().to_owned(),
            api_key: None,
            model: model.into(),
            max_tokens: DEFAULT_MAX_TOKENS,
            headers: Vec::new(),
            timeouts: Timeouts::default(),
        }
    }
}
