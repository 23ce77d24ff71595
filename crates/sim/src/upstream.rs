//! The simulated upstream: an HTTP server speaking the OpenAI and Anthropic APIs whose behaviour comes from
//! the requested model name's last `-`-separated word (see [`Fault`]).
//!
//! Routes: `POST /v1/chat/completions` (OpenAI, `Authorization: Bearer KEY`), `POST /v1/messages`
//! (Anthropic, `x-api-key: KEY`, `anthropic-version` header and `max_tokens` required), `GET /_calls`
//! (per-model call counts as a JSON object) and `DELETE /_calls` (resets them).
//!
//! Chat answers carry the vendor's rate-limit headers; a request with `x-switchyard-sim-exhausted-ms: N`
//! is told its requests are used up for N ms (see [`EXHAUSTED_HEADER`]).
//!
//! Answers are deterministic. When the request offers tools and its last user message contains the word
//! `tool` (or `tool_choice` forces a tool), the answer calls, one per turn, each tool the question asks for
//! (it names the tool, shares a word with its description, or holds the numbers its arguments take), else the
//! first (or the forced) tool, with arguments read from the question (numbers, an operator such as `*`) or
//! made from the schema, streamed in fragments. Once every such tool has answered, the answer quotes the
//! results: `The tool returned: <result>` (`The tools returned: <a>; <b>` for several). Otherwise it is a
//! short greeting naming the model. Usage counts words. A request whose last message is an assistant message
//! (a prefill, as a gateway sends to continue a broken stream) is continued: the answer is the rest of that
//! greeting after as many words as the prefill has.

mod anthropic;
mod body;
mod continuation;
mod conversation;
mod count_tokens;
mod fault;
mod openai;
mod quota;
mod respond;
mod wire;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use fault::{FAULT_WORDS, Fault};
pub use quota::EXHAUSTED_HEADER;
pub use respond::SESSION_HEADER;

use anthropic::Anthropic;
use openai::OpenAi;
use respond::handle;

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
    /// `flakyN` sequences, per session (the `x-switchyard-sim-session` header, else the key sent) and model, so
    /// two clients of one upstream do not eat each other's failures.
    sequences: Mutex<HashMap<(String, String), u64>>,
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
            sequences: Mutex::new(HashMap::new()),
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

    /// Counts a call for `model` in `session` and returns its number there (from 1).
    fn count_in_session(&self, session: &str, model: &str) -> u64 {
        let mut sequences = lock(&self.sequences);
        let n = sequences.entry((session.to_owned(), model.to_owned())).or_insert(0);
        *n += 1;
        *n
    }

    /// Forgets every count (and so restarts `flakyN` sequences).
    fn reset(&self) {
        lock(&self.calls).clear();
        lock(&self.sequences).clear();
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
        .route("/v1/messages/count_tokens", post(count_tokens_handler))
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
        self.shared.reset();
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
    let mut response = handle::<OpenAi>(&shared, &headers, &body).await;
    quota::add(quota::Style::OpenAi, &headers, &mut response);
    response
}

async fn anthropic_handler(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let mut response = handle::<Anthropic>(&shared, &headers, &body).await;
    quota::add(quota::Style::Anthropic, &headers, &mut response);
    response
}

async fn count_tokens_handler(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    count_tokens::handle(&shared, &headers, &body)
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
    shared.reset();
    StatusCode::NO_CONTENT
}
