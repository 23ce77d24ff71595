//! The OpenAI-compatible client: `POST {base_url}/chat/completions`, whole or streamed.

use std::fmt;

use async_trait::async_trait;
use serde::Deserialize;
use serde::de::IgnoredAny;
use switchyard::{ChatModel, ChatRequest, ChatResponse, ChatStream, Error, model::Fit};
use tracing::debug;

use super::error::parse_error;
use super::request::to_wire;
use super::request_out;
use super::response::from_wire;
use super::stream::StreamDecoder;
use super::wire::ChatCompletion;
use crate::build_error::ProviderError;
use crate::chunk_stream::{answer_chunks, chunk_stream, is_json};
use crate::config::ProviderConfig;
use crate::http::{Auth, HttpClient};
use crate::transport::Response;

/// Whether a 2xx body is the vendor's error object (a non-null `error`); the rest is skipped, not built,
/// so the answer is parsed once, straight into its wire type.
fn is_error_object(body: &[u8]) -> serde_json::Result<bool> {
    #[derive(Deserialize)]
    struct ErrorProbe {
        #[serde(default)]
        error: Option<IgnoredAny>,
    }
    serde_json::from_slice::<ErrorProbe>(body).map(|probe| probe.error.is_some())
}

/// A [`ChatModel`] for OpenAI and every OpenAI-compatible API (DeepSeek, vLLM, Ollama, OpenRouter, Groq…).
#[derive(Clone)]
pub struct OpenAiClient {
    name: String,
    model: String,
    http: HttpClient,
}

impl OpenAiClient {
    /// Builds the client (one connection pool) from its config.
    pub fn new(config: ProviderConfig) -> Result<Self, ProviderError> {
        let http = HttpClient::new(&config, "/chat/completions", Auth::Bearer, &[])?;
        Ok(Self { name: config.name, model: config.model, http })
    }

    /// A client over an existing pool.
    pub(crate) fn from_parts(name: String, model: String, http: HttpClient) -> Self {
        Self { name, model, http }
    }

    /// A 2xx body: the answer, or the vendor's error object (classified like an in-stream error).
    async fn read_answer(&self, response: Response) -> Result<ChatResponse, Error> {
        let body = self.http.read_body(response).await?;
        // The common answer by the quick reader; whatever it leaves, serde reads (error objects included).
        let wire: ChatCompletion<'_> = match super::answer_scan::scan(&body) {
            Some(wire) => wire,
            None => self.http.parse_answer(&body, is_error_object, parse_error)?,
        };
        from_wire(wire)
    }

    fn body(&self, request: &ChatRequest, stream: bool) -> Result<Vec<u8>, Error> {
        if let Some(body) = request_out::write(request, &self.model, stream)? {
            return Ok(body);
        }
        let wire = to_wire(request, &self.model, stream)?;
        serde_json::to_vec(&wire).map_err(|e| Error::invalid_request(format!("cannot encode the request: {e}"), None))
    }
}

impl fmt::Debug for OpenAiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiClient")
            .field("name", &self.name)
            .field("model", &self.model)
            .field("url", &self.http.shown_url())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl ChatModel for OpenAiClient {
    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, Error> {
        let body = self.body(&request, false)?;
        debug!(provider = %self.name, model = %self.model, "chat completion");
        let response = self.http.send_accepted(body, parse_error).await?;
        self.read_answer(response).await
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, Error> {
        let body = self.body(&request, true)?;
        debug!(provider = %self.name, model = %self.model, "streaming chat completion");
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
        crate::fields::fit(request, crate::config::ProviderKind::OpenAi)
    }
}
