//! `POST /v1/chat/completions` and `POST /v1/messages` (and, through [`admit`], `POST /v1/responses`): decode,
//! pick the route, run its engine, answer in the caller's API (JSON or SSE) with the `x-switchyard-*` headers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, StatusCode};
use switchyard::{ChatModel, attempt::Attempt};
use switchyard_providers::JoinedBody;

use crate::auth::Caller;
use crate::client_keys::{ClientKey, LimitHeaders};
use crate::codec::{self, StreamEncoder};
use crate::conn::DrainDeadline;
use crate::error::{Api, ApiError};
use crate::metrics::InFlight;
use crate::request_log::Recording;
use crate::state::{AppState, Route, Snapshot};
use crate::{keepalive, request_id, server, sse};

/// The path of OpenAI's chat completions.
pub const CHAT_COMPLETIONS: &str = "/v1/chat/completions";
/// The path of Anthropic's messages.
pub const MESSAGES: &str = "/v1/messages";

/// The API of the chat endpoint `method` and `target` (a path, with or without its query) name, when they name
/// one: the connection calls [`admit`] for these itself, as the router would (the router's lookup, boxed service
/// and layers of futures were 2.4k instructions of a call under bench/instructions).
pub(crate) fn endpoint(method: &http::Method, target: &str) -> Option<Api> {
    if method != http::Method::POST {
        return None;
    }
    let is = |path: &str| target.strip_prefix(path).is_some_and(|rest| rest.is_empty() || rest.starts_with('?'));
    if is(CHAT_COMPLETIONS) {
        Some(Api::OpenAi)
    } else if is(MESSAGES) {
        Some(Api::Anthropic)
    } else {
        None
    }
}

/// The request headers the chat handler reads ([`admit`], [`serve`]: the client's key in either header, the
/// request id, the body's type, the caller's deadline) and `Expect`, read with the head. A chat request's head
/// keeps only these (see [`reads_header`]); a header read on this path must be listed here. Names as text, as
/// they are compared (a test holds them to the names the readers use).
static READ_HEADERS: [&str; 6] =
    ["authorization", "x-api-key", "x-request-id", "content-type", "x-switchyard-deadline-ms", "expect"];

/// Whether the chat handler reads a request header of this name ([`READ_HEADERS`]). The others a client sends
/// (an SDK's user agent, platform and retry headers, the host, the framing headers, read as the head is) are
/// not put into the request's header map, which nothing read them from (bench/instructions: a whole answer
/// with the OpenAI Python SDK's sixteen headers, `BENCH_SDK_HEADERS=1`, 62.3k -> 55.5k instructions).
pub(crate) fn reads_header(name: &[u8]) -> bool {
    READ_HEADERS.iter().any(|read| name.eq_ignore_ascii_case(read.as_bytes()))
}

/// `POST /v1/chat/completions`.
pub async fn chat_completions(State(state): State<Arc<AppState>>, request: Request) -> Response {
    admit(Api::OpenAi, state, request).await
}

/// `POST /v1/messages`.
pub async fn messages(State(state): State<Arc<AppState>>, request: Request) -> Response {
    admit(Api::Anthropic, state, request).await
}

/// Takes or makes the request id, checks the client key, serves, and echoes the id on the answer.
pub(crate) async fn admit(api: Api, state: Arc<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let request_id = request_id::take_or_make(&parts.headers);
    // The running config, loaded once: the request finishes on it whatever reloads happen meanwhile.
    let running = state.current();
    let mut response = match running.auth.check_client(&parts.headers) {
        Ok(caller) => serve(api, &state, &running, caller, request_id.clone(), &parts, body).await,
        Err(_) => server::client_refused(&state, api, &request_id, parts.uri.path()),
    };
    request_id::stamp(&mut response, &request_id);
    response
}

/// The caller's `x-switchyard-deadline-ms`, when sent; it can shorten the route's deadline, never extend it.
fn caller_deadline(headers: &HeaderMap) -> Result<Option<Duration>, String> {
    let Some(value) = headers.get(crate::headers::DEADLINE_MS) else { return Ok(None) };
    let ms: u64 = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|ms| *ms > 0)
        .ok_or_else(|| "x-switchyard-deadline-ms: expected a whole number of milliseconds above 0".to_owned())?;
    Ok(Some(Duration::from_millis(ms)))
}

async fn serve(
    api: Api,
    state: &AppState,
    running: &Snapshot,
    caller: Caller,
    request_id: String,
    parts: &http::request::Parts,
    body: Body,
) -> Response {
    let started = Instant::now();
    let headers = &parts.headers;
    let drain = parts.extensions.get::<DrainDeadline>().cloned();
    let reject = |e: ApiError| {
        state.metrics.rejected(e.status.as_u16());
        tracing::info!(request_id = %request_id, status = e.status.as_u16(), "refused: {}", e.message);
        e.with_request_id(&request_id).into_response()
    };
    if let Err(e) = json_content_type(headers) {
        return reject(e.api(api));
    }
    let bytes = match read_body(body, state.max_body).await {
        Ok(bytes) => bytes,
        Err(e) => return reject(e.api(api)),
    };
    let mut decoded = match codec::decode(api, &bytes) {
        Ok(d) => d,
        Err(e) => return reject(ApiError::from_engine(api, &e)),
    };
    let caller_deadline = match caller_deadline(headers) {
        Ok(d) => d,
        Err(message) => return reject(ApiError::new(api, StatusCode::BAD_REQUEST, message)),
    };
    let model = decoded.request.model.clone();
    if model.is_empty() {
        let mut e = ApiError::new(
            api,
            StatusCode::BAD_REQUEST,
            "model: missing; name a route or a target id (provider/model); GET /v1/models lists them",
        );
        e.param = Some("model".to_owned());
        return reject(e);
    }
    let Some(route) = running.resolve(&model).cloned() else {
        let known: Vec<&str> = running.routes.keys().map(String::as_str).collect();
        return reject(ApiError::new(
            api,
            StatusCode::NOT_FOUND,
            format!(
                "unknown model {:?}: name a route ({}) or a target id (provider/model); GET /v1/models lists them",
                truncated(&model),
                known.join(", ")
            ),
        ));
    };
    // The route's own deadline is the engine's (it keeps the sooner of the two).
    decoded.request.deadline = caller_deadline.map(|d| tokio::time::Instant::now() + d);
    let key = caller.as_deref().map(ClientKey::shared_name);
    let mut recording = state.log.start(&request_id, &route, api, decoded.stream, started, key);
    if let Some(r) = &mut recording {
        r.request_body(&bytes);
    }
    // Not needed any more: without this the raw body would live until the answer commits.
    drop(bytes);
    let mut limits = LimitHeaders::default();
    if let Some(key) = &caller {
        match key.admit(&route.name, || decoded.request.estimate_tokens()) {
            Ok(admitted) => {
                if let (Some(r), Some(ticket)) = (&mut recording, admitted.ticket) {
                    r.hold(ticket);
                }
                limits = admitted.headers;
            }
            Err(refusal) => {
                let (error, headers) = refusal.api_error(api);
                if let Some(r) = recording {
                    r.refused(error.status.as_u16(), refusal.kind(), error.message.clone());
                }
                let mut response = reject(error);
                headers.stamp(&mut response);
                return response;
            }
        }
    }
    let call = Call { api, route, request_id, model, started, drain, recording };
    let mut response = match (decoded.stream, call.route.keepalive) {
        (true, Some(interval)) => call.keepalive(decoded, interval),
        (true, None) => call.stream(decoded).await,
        (false, _) => call.complete(decoded).await,
    };
    limits.stamp(&mut response);
    response
}

/// A caller's text as echoed in an answer and the log: at most 100 characters, then `…`.
fn truncated(text: &str) -> String {
    match text.char_indices().nth(100) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// One request on its way through a route.
struct Call {
    api: Api,
    route: Arc<Route>,
    request_id: String,
    model: String,
    started: Instant,
    /// The server's drain deadline, which ends a stream still open then.
    drain: Option<DrainDeadline>,
    /// The request's log row in the making (None when storage and event subscribers are off).
    recording: Option<Recording>,
}

impl Call {
    /// Counts the request as in flight until the returned guard ends it.
    fn begin(&self) -> InFlight {
        self.route.metrics.started()
    }

    /// A streamed answer: headers once the first content chunk arrived, then SSE.
    async fn stream(mut self, decoded: codec::Decoded) -> Response {
        let in_flight = self.begin();
        match self.route.manager.stream(decoded.request).await {
            Ok(stream) => {
                let target = stream.served_by.clone().unwrap_or_default();
                self.route.metrics.first_chunk(&target, self.started.elapsed());
                log_answer(&self.request_id, &self.route.name, &target, &stream.attempts, true);
                let mut recording = self.recording.take();
                if let Some(r) = &mut recording {
                    r.served(&target, &stream.attempts);
                    r.committed();
                }
                // The answer's head first, while the stream's attempts are at hand; its body once made.
                let mut response = sse_response();
                switchyard_headers(response.headers_mut(), &target, &stream.attempts);
                let model = self.served_model(&target);
                let encoder = StreamEncoder::new(self.api, &self.request_id, model, &decoded.shape);
                let frames = sse::body(
                    stream,
                    encoder,
                    in_flight,
                    &self.route,
                    target,
                    self.started,
                    self.request_id,
                    self.drain,
                    recording,
                );
                // Boxed once, by the body.
                *response.body_mut() = Body::from_stream(frames);
                response
            }
            Err(e) => self.failed(in_flight, &e),
        }
    }

    /// A streamed answer on a keep-alive route: headers at once, comments until the first chunk.
    fn keepalive(mut self, decoded: codec::Decoded, interval: Duration) -> Response {
        let in_flight = self.begin();
        let encoder = StreamEncoder::new(self.api, &self.request_id, &self.model, &decoded.shape);
        let frames = keepalive::body(
            self.route,
            decoded.request,
            encoder,
            in_flight,
            keepalive::Timing { interval, started: self.started },
            self.request_id,
            self.drain,
            self.recording.take(),
        );
        let mut response = sse_response();
        *response.body_mut() = Body::from_stream(frames);
        response
    }

    /// A whole answer as JSON.
    async fn complete(mut self, decoded: codec::Decoded) -> Response {
        let in_flight = self.begin();
        let response = match self.route.manager.complete(decoded.request).await {
            Ok(response) => response,
            Err(e) => return self.failed(in_flight, &e),
        };
        let target = response.served_by.clone().unwrap_or_default();
        self.route.metrics.served(&target, response.usage, self.started.elapsed());
        in_flight.finish(200);
        log_answer(&self.request_id, &self.route.name, &target, &response.attempts, false);
        let recording = self.recording.take();
        match codec::encode_response(self.api, &response, self.served_model(&target), &decoded.shape) {
            Ok(json) => {
                if let Some(mut r) = recording {
                    r.served(&target, &response.attempts);
                    r.response_body(json.as_ref());
                    r.success(response.usage);
                }
                let mut out = Response::new(Body::from(json));
                let h = out.headers_mut();
                h.reserve(ANSWER_HEADERS);
                h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                switchyard_headers(h, &target, &response.attempts);
                out
            }
            Err(e) => {
                let message = format!("cannot encode: {e}");
                if let Some(r) = recording {
                    r.failed(
                        500,
                        &switchyard::Error::invalid_response(message.clone()),
                        message.clone(),
                        response.usage,
                    );
                }
                ApiError::new(self.api, StatusCode::INTERNAL_SERVER_ERROR, message)
                    .with_request_id(&self.request_id)
                    .into_response()
            }
        }
    }

    /// The `model` an answer from `target` names: the target's upstream model (the route name stays in the
    /// request only).
    fn served_model<'a>(&'a self, target: &str) -> &'a str {
        self.route.model_of(target).unwrap_or(&self.model)
    }

    /// The engine's error as a response; the metrics count it.
    fn failed(&mut self, in_flight: InFlight, e: &switchyard::Error) -> Response {
        let error = ApiError::from_engine(self.api, e).with_request_id(&self.request_id);
        in_flight.finish(error.status.as_u16());
        let status = error.status.as_u16();
        if let Some(r) = self.recording.take() {
            r.failed(status, e, error.message.clone(), switchyard::Usage::default());
        }
        tracing::warn!(request_id = %self.request_id, route = %self.route.name, status, "request failed: {e}");
        error.into_response()
    }
}

/// Room made in an answer's map: `content-type` (and `cache-control` on a stream), the four `x-switchyard-*`,
/// `x-request-id`, the connection layer's `connection: close`, and some to spare (the `x-ratelimit-*` and the
/// writer's framing fields are written into the head apart). Growing the map on the way (a reallocation and a
/// rehash) cost more than the inserts.
const ANSWER_HEADERS: usize = 12;

/// An event stream's answer head, its body still empty: the caller adds its `x-switchyard-*` fields to the same
/// map (one map, made once with room for them) and then the body.
fn sse_response() -> Response {
    let mut response = Response::new(Body::empty());
    let h = response.headers_mut();
    h.reserve(ANSWER_HEADERS);
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn log_answer(request_id: &str, route: &str, target: &str, attempts: &[Attempt], stream: bool) {
    let calls = attempts.iter().filter(|a| a.was_called()).count();
    if calls > 1 {
        tracing::info!(request_id, route, target_id = target, calls, stream, "answered after {calls} calls");
    } else {
        tracing::debug!(request_id, route, target_id = target, stream, "answered");
    }
}

/// `x-switchyard-target`, `x-switchyard-attempts` (calls made; skips not counted) and
/// `x-switchyard-fallback` (the answer came from a target other than the first one called).
fn switchyard_headers(h: &mut HeaderMap, target: &str, attempts: &[Attempt]) {
    let (calls, fallback) = calls_and_fallback(target, attempts);
    if let Ok(v) = HeaderValue::from_str(target) {
        h.insert(crate::headers::TARGET, v);
    }
    h.insert(crate::headers::ATTEMPTS, crate::headers::count(calls));
    h.insert(crate::headers::FALLBACK, HeaderValue::from_static(if fallback { "true" } else { "false" }));
    // The serving attempt names the fields its target dropped (SPEC-2 section 14).
    let served = attempts.iter().rev().find(|a| a.target == target && !a.dropped.is_empty());
    if let Some(value) = served.and_then(|a| HeaderValue::from_str(&a.dropped.join(",")).ok()) {
        h.insert(crate::headers::DROPPED, value);
    }
}

/// The calls made (skips not counted), and whether `target` is another than the first one called; the
/// headers of a committed answer and the keep-alive stream's comment both say these.
pub(crate) fn calls_and_fallback(target: &str, attempts: &[Attempt]) -> (usize, bool) {
    let mut called = attempts.iter().filter(|a| a.was_called());
    let first = called.next().map(|a| a.target.as_str());
    let calls = usize::from(first.is_some()) + called.count();
    (calls, first.is_some_and(|f| f != target))
}

/// Why a body could not be read.
pub(crate) enum BodyError {
    TooLarge(usize),
    Broken(String),
    NotJson(String),
}

/// A body sent as another type than JSON is refused before it is read (no `Content-Type` is taken as JSON).
fn json_content_type(headers: &HeaderMap) -> Result<(), BodyError> {
    let Some(value) = headers.get(http::header::CONTENT_TYPE) else { return Ok(()) };
    let text = value.to_str().unwrap_or("");
    let mime = text.split(';').next().unwrap_or("").trim().as_bytes();
    let json_suffix = mime.len() >= 5 && mime[mime.len() - 5..].eq_ignore_ascii_case(b"+json");
    if mime.eq_ignore_ascii_case(b"application/json") || json_suffix {
        Ok(())
    } else {
        Err(BodyError::NotJson(text.chars().take(100).collect()))
    }
}

impl BodyError {
    pub(crate) fn api(self, api: Api) -> ApiError {
        match self {
            BodyError::TooLarge(max) => ApiError::new(
                api,
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body is larger than the limit of {max} bytes (server.max_body)"),
            ),
            BodyError::NotJson(sent) => ApiError::new(
                api,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Type {sent:?} is not supported: send the body as JSON with Content-Type: application/json"
                ),
            ),
            BodyError::Broken(e) => {
                ApiError::new(api, StatusCode::BAD_REQUEST, format!("cannot read the request body: {e}"))
            }
        }
    }
}

pub(crate) async fn read_body(body: Body, max: usize) -> Result<bytes::Bytes, BodyError> {
    let mut stream = body.into_data_stream();
    let mut joined = JoinedBody::default();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BodyError::Broken(e.to_string()))?;
        if joined.len() + chunk.len() > max {
            return Err(BodyError::TooLarge(max));
        }
        joined.push(chunk);
    }
    Ok(joined.into_bytes())
}

#[cfg(test)]
mod tests {
    use http::{Method, header};

    use super::{Api, READ_HEADERS, endpoint};

    #[test]
    fn the_headers_kept_are_the_names_the_handler_reads_by() {
        let read = [
            header::AUTHORIZATION,
            crate::headers::API_KEY,
            crate::headers::REQUEST_ID,
            header::CONTENT_TYPE,
            crate::headers::DEADLINE_MS,
            header::EXPECT,
        ];
        assert_eq!(READ_HEADERS.to_vec(), read.iter().map(|name| name.as_str()).collect::<Vec<_>>());
    }

    #[test]
    fn a_chat_endpoint_is_named_by_its_path_with_or_without_a_query() {
        let post = Method::POST;
        assert_eq!(endpoint(&post, "/v1/chat/completions"), Some(Api::OpenAi));
        assert_eq!(endpoint(&post, "/v1/chat/completions?x=1"), Some(Api::OpenAi));
        assert_eq!(endpoint(&post, "/v1/messages?beta=true"), Some(Api::Anthropic));
        for other in ["/v1/messages/count_tokens", "/v1/chat/completionsx", "/v1/chat", "/"] {
            assert_eq!(endpoint(&post, other), None, "{other}");
        }
        assert_eq!(endpoint(&Method::GET, "/v1/chat/completions"), None);
    }
}
