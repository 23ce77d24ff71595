//! The Anthropic client: `POST {base_url}/v1/messages` with `x-api-key` and `anthropic-version`.

use std::borrow::Cow;
use std::fmt;

use async_trait::async_trait;
use serde::Deserialize;
use switchyard::{ChatModel, ChatRequest, ChatResponse, ChatStream, Error, model::Fit};
use tracing::debug;

use super::error::parse_error;
use super::request::to_wire;
use super::response::from_wire;
use super::stream::StreamDecoder;
use super::wire::MessagesResponse;
use crate::build_error::ProviderError;
use crate::chunk_stream::{answer_chunks, chunk_stream, is_json};
use crate::config::ProviderConfig;
use crate::http::{Auth, HttpClient};
use crate::transport::Response;

/// The `anthropic-version` header every request carries.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Whether a 2xx body is the vendor's error object (`"type": "error"`); the rest is skipped, not built,
/// so the answer is parsed once, straight into its wire type.
fn is_error_object(body: &[u8]) -> serde_json::Result<bool> {
    #[derive(Deserialize)]
    struct TypeProbe<'a> {
        #[serde(rename = "type", default, borrow)]
        kind: Option<Cow<'a, str>>,
    }
    serde_json::from_slice::<TypeProbe<'_>>(body).map(|probe| probe.kind.as_deref() == Some("error"))
}

/// The fields of a Messages request that `count_tokens` takes.
const COUNTED: &[&str] = &["model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers"];

/// A [`ChatModel`] for the Anthropic Messages API.
#[derive(Clone)]
pub struct AnthropicClient {
    name: String,
    model: String,
    max_tokens: u32,
    http: HttpClient,
}

impl AnthropicClient {
    /// Builds the client (one connection pool) from its config.
    pub fn new(config: ProviderConfig) -> Result<Self, ProviderError> {
        let http =
            HttpClient::new(&config, "/v1/messages", Auth::XApiKey, &[("anthropic-version", ANTHROPIC_VERSION)])?;
        Ok(Self { name: config.name, model: config.model, max_tokens: config.max_tokens, http })
    }

    /// A client over an existing pool.
    pub(crate) fn from_parts(name: String, model: String, max_tokens: u32, http: HttpClient) -> Self {
        Self { name, model, max_tokens, http }
    }

    /// A 2xx body: the answer, or the vendor's error object (classified like an in-stream error).
    async fn read_answer(&self, response: Response) -> Result<ChatResponse, Error> {
        let body = self.http.read_body(response).await?;
        let wire: MessagesResponse = self.http.parse_answer(&body, is_error_object, parse_error)?;
        from_wire(wire)
    }

    fn body(&self, request: &ChatRequest, stream: bool) -> Result<Vec<u8>, Error> {
        let wire = to_wire(request, &self.model, self.max_tokens, stream)?;
        serde_json::to_vec(&wire).map_err(|e| Error::invalid_request(format!("cannot encode the request: {e}"), None))
    }
}

impl fmt::Debug for AnthropicClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnthropicClient")
            .field("name", &self.name)
            .field("model", &self.model)
            .field("max_tokens", &self.max_tokens)
            .field("url", &self.http.shown_url())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl ChatModel for AnthropicClient {
    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, Error> {
        let body = self.body(&request, false)?;
        debug!(provider = %self.name, model = %self.model, "messages");
        let response = self.http.send_accepted(body, parse_error).await?;
        self.read_answer(response).await
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, Error> {
        let body = self.body(&request, true)?;
        debug!(provider = %self.name, model = %self.model, "streaming messages");
        let response = self.http.send_accepted(body, parse_error).await?;
        if is_json(&response) {
            // The server ignored `stream: true` (or put an error object in a 200): read it whole.
            let answer = self.read_answer(response).await?;
            return Ok(ChatStream::from_items(answer_chunks(answer)));
        }
        Ok(chunk_stream(response, self.http.clone(), StreamDecoder::new()))
    }

    fn exhausted_until(&self) -> Option<tokio::time::Instant> {
        self.http.exhausted_until()
    }

    fn fit(&self, request: &ChatRequest, _stream: bool) -> Fit {
        crate::fields::fit(request, crate::config::ProviderKind::Anthropic)
    }

    /// `POST {base_url}/v1/messages/count_tokens` with the request's prompt, tools and thinking.
    async fn count_tokens(&self, request: &ChatRequest) -> Result<Option<u64>, Error> {
        #[derive(Deserialize)]
        struct Count {
            input_tokens: u64,
        }
        let wire = serde_json::to_value(to_wire(request, &self.model, self.max_tokens, false)?)
            .map_err(|e| Error::invalid_request(format!("cannot encode the request: {e}"), None))?;
        // The endpoint takes the prompt's fields only (it refuses `max_tokens` and sampling options).
        let mut body = serde_json::Map::new();
        for key in COUNTED {
            if let Some(value) = wire.get(key).filter(|v| !v.is_null()) {
                body.insert((*key).to_owned(), value.clone());
            }
        }
        let body = serde_json::to_vec(&body)
            .map_err(|e| Error::invalid_request(format!("cannot encode the request: {e}"), None))?;
        let Some(http) = self.http.sibling("/count_tokens") else { return Ok(None) };
        debug!(provider = %self.name, model = %self.model, "count_tokens");
        let response = http.send_accepted(body, parse_error).await?;
        let bytes = http.read_body(response).await?;
        let count: Count = http.parse_answer(&bytes, is_error_object, parse_error)?;
        Ok(Some(count.input_tokens))
    }
}
