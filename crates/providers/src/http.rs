//! The HTTP side shared by both clients: the pooled client, sending with time limits, status → error.

use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime};

use crate::build_error::ProviderError;
use crate::classify::{excerpt, parse_retry_after};
use crate::config::{ApiKey, ProviderConfig, Timeouts};
use crate::h1_head::KeptHeaders;
use crate::joined_body::JoinedBody;
use crate::quota::Quota;
use crate::transport::{PreparedHead, Response, SendError, Transport};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use http_body_util::BodyExt;
use memchr::memmem::Finder;
use switchyard::{Error, TimeoutPhase};

/// Bodies larger than this are refused rather than buffered (non-streamed answers and error bodies).
const MAX_BODY: usize = 32 * 1024 * 1024;

/// One provider's HTTP client: pooled connections, its own credentials, its time limits.
#[derive(Clone)]
pub(crate) struct HttpClient {
    // Shared by every model of the provider and every open stream: a clone is one reference count.
    shared: Arc<Shared>,
    timeouts: Timeouts,
    /// What the model's last answer said about its quota (one per model: clones for its streams share it).
    quota: Arc<Quota>,
}

/// What does not change per model: the pool, the endpoint and the credentials.
struct Shared {
    transport: Transport,
    /// The request head but its length, written once (the URL and every fixed header).
    head: PreparedHead,
    url: String,
    /// `url` without the credentials it may carry: what logs and error messages show.
    shown_url: String,
    /// The fixed headers, for a [`HttpClient::sibling`]'s head.
    headers: HeaderMap,
    key: Option<ApiKey>,
}

/// How the provider authenticates.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Auth {
    /// `Authorization: Bearer <key>` (OpenAI-compatible).
    Bearer,
    /// `x-api-key: <key>` (Anthropic).
    XApiKey,
}

impl HttpClient {
    /// Builds the client: `path` is appended to the base URL; `fixed` headers go with every request.
    pub(crate) fn new(
        config: &ProviderConfig,
        path: &str,
        auth: Auth,
        fixed: &[(&'static str, &'static str)],
    ) -> Result<Self, ProviderError> {
        // An empty base URL means the vendor SDK's default.
        let base = match config.base_url.trim() {
            "" => config.kind.default_base_url(),
            url => url,
        };
        // A fragment is never sent.
        let url = with_path(base.split_once('#').map_or(base, |(before, _)| before), path);
        let uri = match url.parse::<Uri>() {
            Ok(uri) if (base.starts_with("http://") || base.starts_with("https://")) && uri.host().is_some() => uri,
            _ => {
                return Err(ProviderError::InvalidBaseUrl {
                    provider: config.name.clone(),
                    url: crate::redact_url(&config.base_url),
                    example: config.kind.default_base_url(),
                });
            }
        };
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in fixed {
            headers.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        for (name, value) in &config.headers {
            let invalid = || ProviderError::InvalidHeader { provider: config.name.clone(), name: name.clone() };
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
            let mut value = HeaderValue::from_str(value).map_err(|_| invalid())?;
            // Configured headers may carry credentials (e.g. a gateway key): keep them out of Debug output.
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        if let Some(key) = &config.api_key {
            let (name, text) = match auth {
                Auth::Bearer => (http::header::AUTHORIZATION, format!("Bearer {}", key.expose())),
                Auth::XApiKey => (HeaderName::from_static("x-api-key"), key.expose().to_owned()),
            };
            let mut value = HeaderValue::from_str(&text)
                .map_err(|_| ProviderError::InvalidApiKey { provider: config.name.clone() })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let transport = Transport::new(&uri, config.timeouts.connect, KeptHeaders::ProvidersRead)
            .map_err(|reason| ProviderError::Client { provider: config.name.clone(), reason })?;
        let head = transport
            .prepare(Method::POST, &without_userinfo(uri), &headers)
            .map_err(|e| ProviderError::Client { provider: config.name.clone(), reason: e.source.to_string() })?;
        let shown_url = crate::redact_url(&url);
        if transport.is_proxied() {
            tracing::debug!(provider = %config.name, url = %shown_url, "sending through the proxy the environment names");
        }
        let shared = Shared { transport, head, url, shown_url, headers, key: config.api_key.clone() };
        Ok(Self { shared: Arc::new(shared), timeouts: config.timeouts, quota: Arc::default() })
    }

    /// The same pool, credentials and limits for a neighbouring endpoint: `suffix` appended to this one's URL
    /// (e.g. `/count_tokens` after `/v1/messages`).
    pub(crate) fn sibling(&self, suffix: &str) -> Option<Self> {
        let s = &self.shared;
        let url = with_path(&s.url, suffix);
        let uri = without_userinfo(url.parse::<Uri>().ok()?);
        let head = s.transport.prepare(Method::POST, &uri, &s.headers).ok()?;
        let shown_url = crate::redact_url(&url);
        let shared = Shared {
            transport: s.transport.clone(),
            head,
            url,
            shown_url,
            headers: s.headers.clone(),
            key: s.key.clone(),
        };
        // Another endpoint has its own rate limits: its headers must not mark the model exhausted or clear it.
        Some(Self { shared: Arc::new(shared), timeouts: self.timeouts, quota: Arc::default() })
    }

    /// The same pool and credentials with other per-call limits (the connect timeout stays the pool's).
    pub(crate) fn with_timeouts(&self, timeouts: Timeouts) -> Self {
        let mut http = self.clone();
        http.timeouts = Timeouts { connect: self.timeouts.connect, ..timeouts };
        // A model of its own: its own quota.
        http.quota = Arc::default();
        http
    }

    /// The full endpoint URL as logs may show it (credentials in it redacted).
    pub(crate) fn shown_url(&self) -> &str {
        &self.shared.shown_url
    }

    /// The configured time limits.
    pub(crate) fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Removes this provider's key from upstream text that is about to become an error message.
    pub(crate) fn redact(&self, text: &str) -> String {
        match &self.shared.key {
            Some(key) if !key.expose().is_empty() => text.replace(key.expose(), "[redacted]"),
            _ => text.to_owned(),
        }
    }

    /// The same error with this provider's key removed from its message (upstreams sometimes echo it).
    pub(crate) fn redact_error(&self, error: Error) -> Error {
        let Some(key) = self.shared.key.as_ref().map(ApiKey::expose).filter(|k| !k.is_empty()) else {
            return error;
        };
        if !error.to_string().contains(key) {
            return error;
        }
        let clean = |message: String| message.replace(key, "[redacted]");
        match error {
            Error::RateLimited { message, retry_after } => Error::RateLimited { message: clean(message), retry_after },
            Error::Overloaded { status, message } => Error::Overloaded { status, message: clean(message) },
            Error::Server { status, message } => Error::Server { status, message: clean(message) },
            Error::Connection { message } => Error::Connection { message: clean(message) },
            Error::InvalidResponse { message } => Error::InvalidResponse { message: clean(message) },
            Error::Auth { status, message } => Error::Auth { status, message: clean(message) },
            Error::NotFound { message } => Error::NotFound { message: clean(message) },
            Error::ContextLength { message } => Error::ContextLength { message: clean(message) },
            Error::ContentFiltered { message, attempts } => {
                Error::ContentFiltered { message: clean(message), attempts }
            }
            Error::InvalidRequest { status, message, param, attempts } => {
                Error::InvalidRequest { status, message: clean(message), param, attempts }
            }
            // Engine-level errors never carry upstream text.
            other => other,
        }
    }

    /// Sends `body` and waits for the response headers (the engine bounds the wait).
    pub(crate) async fn send(&self, body: Vec<u8>) -> Result<Response, Error> {
        let shared = &*self.shared;
        let response = shared.transport.send_prepared(&shared.head, &body).await.map_err(|e| self.send_error(&e))?;
        self.quota.observe(response.headers());
        Ok(response)
    }

    /// Until when the provider said this model's quota is used up.
    pub(crate) fn exhausted_until(&self) -> Option<tokio::time::Instant> {
        self.quota.exhausted_until()
    }

    /// Sends `body`; a non-2xx answer becomes the engine's error through the vendor's body parser.
    pub(crate) async fn send_accepted(
        &self,
        body: Vec<u8>,
        parse: fn(Option<u16>, &str, Option<Duration>) -> Error,
    ) -> Result<Response, Error> {
        let response = self.send(body).await?;
        if response.status().is_success() {
            return Ok(response);
        }
        let error = self.status_error(response, parse).await;
        tracing::debug!(url = %self.shared.shown_url, kind = %error.kind(), "upstream refused: {error}");
        Err(error)
    }

    /// Reads a whole body, up to a cap (the engine bounds the wait).
    pub(crate) async fn read_body(&self, response: Response) -> Result<Bytes, Error> {
        let mut body = JoinedBody::default();
        let mut stream = response.into_body();
        while let Some(frame) = stream.frame().await {
            let frame = frame.map_err(|e| self.transport_error(Stage::Body, &*e))?;
            // Trailers carry no content.
            let Ok(piece) = frame.into_data() else { continue };
            if body.len() + piece.len() > MAX_BODY {
                return Err(Error::invalid_response(format!("response body larger than {MAX_BODY} bytes")));
            }
            body.push(piece);
        }
        Ok(body.into_bytes())
    }

    /// A whole 2xx answer: the vendor's wire type, or the vendor's error object when `is_error` finds one
    /// (asked only when the body may hold one), parsed by `parse` like an in-stream error.
    pub(crate) fn parse_answer<'b, W: serde::Deserialize<'b>>(
        &self,
        body: &'b [u8],
        is_error: fn(&[u8]) -> serde_json::Result<bool>,
        parse: fn(Option<u16>, &str, Option<Duration>) -> Error,
    ) -> Result<W, Error> {
        if may_hold_error(body) && is_error(body).map_err(|e| not_json(body, &e))? {
            return Err(parse(None, &self.redact(&String::from_utf8_lossy(body)), None));
        }
        crate::json_in::from_body(body).map_err(|e| not_json(body, &e))
    }

    /// A non-2xx response → the engine's error, via the vendor's body parser.
    pub(crate) async fn status_error(
        &self,
        response: Response,
        parse: fn(Option<u16>, &str, Option<Duration>) -> Error,
    ) -> Error {
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let body = match self.read_body(response).await {
            Ok(body) => body,
            Err(e) => return e,
        };
        let text = self.redact(&String::from_utf8_lossy(&body));
        parse(Some(status), &text, retry_after)
    }

    /// A request that got no response → Timeout (connect) or Connection.
    fn send_error(&self, e: &SendError) -> Error {
        if e.connect_timeout
            && let Some(after) = self.timeouts.connect
        {
            return Error::Timeout { phase: TimeoutPhase::Connect, after };
        }
        self.transport_error(Stage::Send, &*e.source)
    }

    /// A transport failure → Connection, naming the URL, with its whole cause chain, never showing credentials.
    pub(crate) fn transport_error(&self, stage: Stage, e: &(dyn std::error::Error + 'static)) -> Error {
        let mut message = match stage {
            Stage::Send => format!("request to {} failed: ", self.shared.shown_url),
            Stage::Body => format!("the answer from {} broke off: ", self.shared.shown_url),
        };
        message.push_str(&e.to_string());
        let mut source = e.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Error::Connection { message: self.redact(&message) }
    }
}

/// `url` with `path` appended to its path: before a query it carries (Azure OpenAI's `?api-version=…`).
fn with_path(url: &str, path: &str) -> String {
    match url.split_once('?') {
        Some((before, query)) => format!("{}{path}?{query}", before.trim_end_matches('/')),
        None => format!("{}{path}", url.trim_end_matches('/')),
    }
}

/// `uri` as hyper gets it: without userinfo, which hyper never sends as credentials but would, through a proxy,
/// send in the absolute-form request line.
fn without_userinfo(uri: Uri) -> Uri {
    let host = match uri.authority().and_then(|a| a.as_str().rsplit_once('@')) {
        Some((_, host)) => host.parse::<http::uri::Authority>(),
        _ => return uri,
    };
    let mut parts = uri.clone().into_parts();
    match host {
        Ok(host) => parts.authority = Some(host),
        Err(_) => return uri,
    }
    Uri::from_parts(parts).unwrap_or(uri)
}

/// Where a transport failure happened.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stage {
    /// Connecting, or sending the request, or waiting for the response headers.
    Send,
    /// Reading the response body.
    Body,
}

/// `retry-after-ms` (OpenAI SDKs read it) or `Retry-After` (seconds or an HTTP date).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(ms) =
        headers.get("retry-after-ms").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, SystemTime::now())
}

/// Whether a 2xx body may hold the vendor's error object: it has `"error"` somewhere, or a `\u` escape (which
/// could spell it). Answers rarely have either, and then the probe parse, a third of reading one, is skipped.
fn may_hold_error(body: &[u8]) -> bool {
    // The searchers are built once: building them per answer cost more than the searches.
    static ERROR: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"error\""));
    static ESCAPE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\\u"));
    ERROR.find(body).is_some() || ESCAPE.find(body).is_some()
}

/// A 200 body that should be JSON but is not.
fn not_json(body: &[u8], e: &serde_json::Error) -> Error {
    Error::invalid_response(format!(
        "response body is not the expected JSON ({e}): {}",
        excerpt(&String::from_utf8_lossy(body))
    ))
}

#[cfg(test)]
mod tests {
    //! Whole-body limits on tokio's paused clock, over a synthetic body (no socket); the Host header.

    use std::time::Duration;

    use futures::StreamExt;
    use http_body_util::{BodyExt, StreamBody};
    use switchyard::ErrorKind;

    use super::{Auth, HttpClient, MAX_BODY};
    use crate::config::{ProviderConfig, ProviderKind};

    fn client() -> HttpClient {
        let config = ProviderConfig::new(ProviderKind::OpenAi, "t", "m");
        HttpClient::new(&config, "/chat/completions", Auth::Bearer, &[]).unwrap()
    }

    /// `pieces` pieces of `size` bytes, each after `gap_ms`.
    fn slow_body(pieces: usize, size: usize, gap_ms: u64) -> crate::transport::Response {
        let body = futures::stream::iter(0..pieces).then(move |_| async move {
            tokio::time::sleep(Duration::from_millis(gap_ms)).await;
            Ok::<_, crate::transport::BoxError>(http_body::Frame::data(bytes::Bytes::from(vec![b'x'; size])))
        });
        http::Response::new(StreamBody::new(body).boxed_unsync())
    }

    #[tokio::test]
    async fn a_body_larger_than_the_cap_is_refused_not_buffered() {
        let pieces = MAX_BODY / (1024 * 1024) + 2;
        let error = client().read_body(slow_body(pieces, 1024 * 1024, 0)).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidResponse);
    }
}
