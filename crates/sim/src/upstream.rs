//! The simulated upstream: an HTTP server speaking the OpenAI and Anthropic APIs whose behaviour comes from
//! the requested model name's last `-`-separated word (see [`Fault`]).
//!
//! Routes: `POST /v1/chat/completions` (OpenAI, `Authorization: Bearer KEY`), `POST /v1/messages`
//! (Anthropic, `x-api-key: KEY`, `anthropic-version` header and `max_tokens` required), `GET /_calls`
//! (per-model call counts as a JSON object) and `DELETE /_calls` (resets them).
//!
//! Answers are deterministic. When the request offers tools and its last user message contains the word
//! `tool` (or `tool_choice` forces a tool), the answer calls the first (or the forced) tool with arguments
//! made from its schema, streamed in fragments. When the last message is a tool result, the answer is
//! `The tool returned: <result>`. Otherwise it is a short greeting naming the model. Usage counts words.

mod anthropic;
mod body;
mod conversation;
mod fault;
mod openai;
mod wire;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use fault::Fault;

use anthropic::Anthropic;
use body::{End, Timed};
use conversation::Answer;
use openai::OpenAi;
use wire::{Failure, Wire};

/// The API key the simulated upstream expects unless configured otherwise.
pub const DEFAULT_API_KEY: &str = "sim-key";

/// The text of an `errtext` answer.
pub const ERROR_TEXT: &str = "Exception: the simulated upstream failed while answering.";

/// How the simulated upstream behaves beyond what the model names choose.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// The key callers must send; `None` accepts any key or none.
    pub api_key: Option<String>,
    /// Wait between content chunks of a stream (default none).
    pub chunk_delay: Duration,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self { api_key: Some(DEFAULT_API_KEY.to_owned()), chunk_delay: Duration::ZERO }
    }
}

struct Shared {
    config: UpstreamConfig,
    calls: Mutex<HashMap<String, u64>>,
    next_id: AtomicU64,
    shutdown: watch::Sender<bool>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn new(config: UpstreamConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            calls: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            shutdown: watch::channel(false).0,
        })
    }

    /// Counts a call for `model` and returns its number (from 1).
    fn count(&self, model: &str) -> u64 {
        let mut calls = lock(&self.calls);
        if let Some(n) = calls.get_mut(model) {
            *n += 1;
            return *n;
        }
        calls.insert(model.to_owned(), 1);
        1
    }

    fn snapshot(&self) -> BTreeMap<String, u64> {
        lock(&self.calls).iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Resolves once the server is shutting down.
    fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown.subscribe();
        async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai_handler))
        .route("/v1/messages", post(anthropic_handler))
        .route("/_calls", get(calls_handler).delete(reset_handler))
        .fallback(not_found_handler)
        .layer(DefaultBodyLimit::max(32 << 20))
        .with_state(shared)
}

/// Serves the simulated upstream on `listener` until the process ends.
pub async fn serve_upstream(listener: TcpListener, config: UpstreamConfig) -> io::Result<()> {
    serve_upstream_until(listener, config, std::future::pending()).await
}

/// Serves the simulated upstream on `listener` until `signal` resolves; hung and stalled answers then end.
pub async fn serve_upstream_until(
    listener: TcpListener,
    config: UpstreamConfig,
    signal: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let shared = Shared::new(config);
    let stop = shared.shutdown.clone();
    serve(listener, shared, async move {
        signal.await;
        stop.send_replace(true);
    })
    .await
}

async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    signal: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let app = router(shared);
    axum::serve(listener, app).with_graceful_shutdown(signal).await
}

/// A simulated upstream running in the background on a free 127.0.0.1 port, for tests.
///
/// Dropping it (or [`Upstream::shutdown`]) stops it: new connections are refused, and hung or stalled
/// answers end.
#[derive(Debug)]
pub struct Upstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Upstream {
    /// Starts one on 127.0.0.1 with a port the OS picks.
    pub async fn start(config: UpstreamConfig) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Shared::new(config);
        let stopped = shared.stopped();
        let task = tokio::spawn(serve(listener, Arc::clone(&shared), stopped));
        Ok(Self { addr, shared, task: Some(task) })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The base URL an OpenAI SDK expects: `http://127.0.0.1:PORT/v1`.
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The base URL an Anthropic SDK expects: `http://127.0.0.1:PORT`.
    pub fn anthropic_base_url(&self) -> String {
        self.url()
    }

    /// Calls seen for this model name (requests that passed the key and field checks).
    pub fn calls(&self, model: &str) -> u64 {
        lock(&self.shared.calls).get(model).copied().unwrap_or(0)
    }

    /// Calls seen per model name.
    pub fn all_calls(&self) -> BTreeMap<String, u64> {
        self.shared.snapshot()
    }

    /// Forgets the call counts (and so restarts `flakyN` sequences).
    pub fn reset_calls(&self) {
        lock(&self.shared.calls).clear();
    }

    /// Stops it and waits until the server is down.
    pub async fn shutdown(mut self) -> io::Result<()> {
        self.shared.shutdown.send_replace(true);
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}

async fn openai_handler(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    handle::<OpenAi>(&shared, &headers, &body).await
}

async fn anthropic_handler(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    handle::<Anthropic>(&shared, &headers, &body).await
}

async fn calls_handler(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.snapshot()).into_response()
}

async fn not_found_handler(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let message = format!(
        "Unknown request URL: {method} {}. The simulated upstream serves POST /v1/chat/completions and POST /v1/messages.",
        uri.path()
    );
    let body = serde_json::json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": "unknown_url"}});
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

async fn reset_handler(State(shared): State<Arc<Shared>>) -> StatusCode {
    lock(&shared.calls).clear();
    StatusCode::NO_CONTENT
}

/// A body that is not JSON, for `badjson` without streaming.
const BAD_JSON: &[u8] = b"{\"id\": \"sim\", \"object\": \"chat.completion\", \"choices\": [{\"message\": <html>oops";

async fn handle<W: Wire>(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    if let Some(key) = &shared.config.api_key
        && let Err(failure) = W::check_key(headers, key)
    {
        return fail::<W>(&failure, id);
    }
    let request: Value = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(e) => {
            let failure = Failure::bad_request(format!("The request body is not valid JSON: {e}"), None);
            return fail::<W>(&failure, id);
        }
    };
    let parsed = match W::read(&request, headers) {
        Ok(parsed) => parsed,
        Err(failure) => return fail::<W>(&failure, id),
    };
    let model = parsed.model;
    let calls = shared.count(model);
    let fault = Fault::of_model(model);

    let mut first_delay = Duration::ZERO;
    let mut text = None;
    match fault {
        Fault::Status(status) => return fail::<W>(&Failure::Status(status), id),
        Fault::ContextLength => return fail::<W>(&Failure::ContextLength, id),
        Fault::Flaky(n) if calls <= n => return fail::<W>(&Failure::Status(503), id),
        Fault::Hang => {
            shared.stopped().await;
            return fail::<W>(&Failure::Status(503), id);
        }
        Fault::Slow(delay) => tokio::time::sleep(delay).await,
        Fault::Ttfb(delay) if parsed.stream => first_delay = delay,
        Fault::Ttfb(delay) => tokio::time::sleep(delay).await,
        Fault::SseError if parsed.stream => {
            return sse::<W>(shared, vec![(W::stream_error_event(), true)], End::Close, id);
        }
        Fault::SseError => return json::<W>(StatusCode::OK, &W::stream_error_body(), id),
        Fault::BadJson if parsed.stream => return sse::<W>(shared, vec![(W::bad_json_event(), true)], End::Close, id),
        Fault::BadJson => return raw::<W>(StatusCode::OK, "application/json", Body::from(BAD_JSON), id),
        Fault::ErrText => text = Some(ERROR_TEXT.to_owned()),
        Fault::Empty => text = Some(String::new()),
        Fault::Ok | Fault::Flaky(_) | Fault::Break(_) | Fault::Stall(_) => {}
    }
    let mut answer = match text {
        Some(text) => Answer::Text(text),
        None => parsed.conversation.answer(model),
    };
    let cut = match fault {
        Fault::Break(n) => Some((n, End::Abort)),
        Fault::Stall(n) => Some((n, End::Stall)),
        _ => None,
    };
    if let (Some((n, _)), Answer::Text(text)) = (cut, &mut answer) {
        // Enough words that the cut falls inside the content.
        while text.split_inclusive(' ').count() <= n {
            text.push_str(" more");
        }
    }
    let input_tokens = parsed.conversation.input_tokens;

    if !parsed.stream {
        let body = W::complete(id, model, &answer, input_tokens);
        return match cut {
            None => raw::<W>(StatusCode::OK, "application/json", Body::from(body), id),
            Some((_, end)) => {
                let bytes = Bytes::from(body);
                let frames = match end {
                    End::Abort => vec![(bytes.slice(..bytes.len() / 2), true)],
                    _ => Vec::new(),
                };
                let timed = Timed { frames, first_delay: Duration::ZERO, chunk_delay: Duration::ZERO, end };
                raw::<W>(StatusCode::OK, "application/json", timed.into_body(shared.shutdown.subscribe()), id)
            }
        };
    }

    let frames = W::stream(id, model, &answer, input_tokens, parsed.include_usage);
    let mut pieces: Vec<(Bytes, bool)> = frames.head.into_iter().map(|b| (b, false)).collect();
    let end = match cut {
        Some((n, end)) => {
            pieces.extend(frames.content.into_iter().take(n).map(|b| (b, true)));
            end
        }
        None => {
            pieces.extend(frames.content.into_iter().map(|b| (b, true)));
            pieces.extend(frames.tail.into_iter().map(|b| (b, false)));
            End::Close
        }
    };
    let timed = Timed { frames: pieces, first_delay, chunk_delay: shared.config.chunk_delay, end };
    raw::<W>(StatusCode::OK, "text/event-stream", timed.into_body(shared.shutdown.subscribe()), id)
}

fn sse<W: Wire>(shared: &Shared, frames: Vec<(Bytes, bool)>, end: End, id: u64) -> Response {
    let timed = Timed { frames, first_delay: Duration::ZERO, chunk_delay: Duration::ZERO, end };
    raw::<W>(StatusCode::OK, "text/event-stream", timed.into_body(shared.shutdown.subscribe()), id)
}

fn fail<W: Wire>(failure: &Failure, id: u64) -> Response {
    let status = StatusCode::from_u16(failure.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json::<W>(status, &W::error_body(failure), id);
    if status == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

fn json<W: Wire>(status: StatusCode, body: &Value, id: u64) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    raw::<W>(status, "application/json", Body::from(bytes), id)
}

fn raw<W: Wire>(status: StatusCode, content_type: &'static str, body: Body, id: u64) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if content_type == "text/event-stream" {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    headers.insert(W::REQUEST_ID_HEADER, HeaderValue::from(id));
    response
}
