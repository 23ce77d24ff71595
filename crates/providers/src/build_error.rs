//! Why a provider could not be built from its config.

/// A provider config that cannot be turned into a client. Each message names the provider and the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// `base_url` is not an absolute http(s) URL.
    #[error("provider `{provider}`: base_url `{url}` is not an absolute http(s) URL; e.g. `{example}`")]
    InvalidBaseUrl {
        /// Provider name.
        provider: String,
        /// The URL as configured.
        url: String,
        /// The vendor's default, as an example.
        example: &'static str,
    },
    /// A configured header name or value is not valid HTTP.
    #[error("provider `{provider}`: header `{name}` is not a valid HTTP header name and value")]
    InvalidHeader {
        /// Provider name.
        provider: String,
        /// The header name.
        name: String,
    },
    /// The API key cannot be sent in a header (the key itself is never shown).
    #[error("provider `{provider}`: api_key contains characters that cannot be sent in an HTTP header")]
    InvalidApiKey {
        /// Provider name.
        provider: String,
    },
    /// The HTTP client could not be built.
    #[error("provider `{provider}`: could not build the HTTP client: {reason}")]
    Client {
        /// Provider name.
        provider: String,
        /// Why.
        reason: String,
    },
}
