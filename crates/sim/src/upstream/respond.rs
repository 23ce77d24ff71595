//! One request's answer: checks, the fault its model name chooses, and the response in the vendor's shape.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;

use super::body::{End, Timed};
use super::continuation::{self, NO_PREFILL, Partial};
use super::conversation::Answer;
use super::wire::{Failure, Wire};
use super::{ERROR_TEXT, Fault, Shared};

/// A body that is not JSON, for `badjson` without streaming.
const BAD_JSON: &[u8] = b"{\"id\": \"sim\", \"object\": \"chat.completion\", \"choices\": [{\"message\": <html>oops";

/// Header naming the client's session for `flakyN` sequences.
pub const SESSION_HEADER: &str = "x-switchyard-sim-session";

/// The session a call counts in: the `x-switchyard-sim-session` header, else the key sent.
fn session<'a>(headers: &'a HeaderMap, key: Option<&'a str>) -> &'a str {
    headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()).or(key).unwrap_or("")
}

pub(super) async fn handle<W: Wire>(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    if let Some(key) = &shared.config.api_key {
        match W::sent_key(headers) {
            None => return fail::<W>(&Failure::MissingKey, id),
            Some(sent) if sent != key => return fail::<W>(&Failure::WrongKey, id),
            Some(_) => {}
        }
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
    shared.count(model);
    let fault = Fault::of_model(model);
    let partial = Partial::of(&request);

    let mut first_delay = Duration::ZERO;
    let mut chunk_delay = shared.config.chunk_delay;
    let mut text = None;
    match fault {
        Fault::Status(status) => return fail::<W>(&Failure::Status(status), id),
        Fault::NoPrefill if matches!(partial, Some(Partial::Prefill(_))) => {
            return fail::<W>(&Failure::bad_request(NO_PREFILL, None), id);
        }
        Fault::ContextLength => return fail::<W>(&Failure::ContextLength, id),
        Fault::ContentFilter => {
            return match W::refusal(id, model, parsed.stream) {
                Err(failure) => fail::<W>(&failure, id),
                Ok(body) if parsed.stream => raw::<W>(StatusCode::OK, "text/event-stream", Body::from(body), id),
                Ok(body) => raw::<W>(StatusCode::OK, "application/json", Body::from(body), id),
            };
        }
        Fault::Flaky(n) if shared.count_in_session(session(headers, W::sent_key(headers)), model) <= n => {
            return fail::<W>(&Failure::Status(503), id);
        }
        Fault::Hang => {
            shared.stopped().await;
            return fail::<W>(&Failure::Status(503), id);
        }
        Fault::Slow(delay) => tokio::time::sleep(delay).await,
        Fault::Ttfb(delay) if parsed.stream => first_delay = delay,
        Fault::Ttfb(delay) => tokio::time::sleep(delay).await,
        Fault::Pace(delay) => chunk_delay = delay,
        Fault::SseError if parsed.stream => {
            return sse::<W>(shared, vec![(W::stream_error_event(), true)], End::Close, id);
        }
        Fault::SseError => return json::<W>(StatusCode::OK, &W::stream_error_body(), id),
        Fault::BadJson if parsed.stream => return sse::<W>(shared, vec![(W::bad_json_event(), true)], End::Close, id),
        Fault::BadJson => return raw::<W>(StatusCode::OK, "application/json", Body::from(BAD_JSON), id),
        Fault::ErrText => text = Some(ERROR_TEXT.to_owned()),
        Fault::Empty => text = Some(String::new()),
        Fault::Ok
        | Fault::Flaky(_)
        | Fault::Break(_)
        | Fault::Stall(_)
        | Fault::BadChunk(_)
        | Fault::NoPrefill
        | Fault::Restart
        | Fault::RestartDiff => {}
    }
    let mut answer = match text {
        Some(text) => Answer::Text(text),
        None => {
            let normal = parsed.conversation.answer(model);
            partial.as_ref().and_then(|p| continuation::answer(p, fault, model, &normal)).unwrap_or(normal)
        }
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

    let mut frames = W::stream(id, model, &answer, input_tokens, parsed.stream_options);
    if let Fault::BadChunk(n) = fault {
        // After the first content chunk: the stream is under way when they come.
        let at = frames.content.len().min(1);
        frames.content.splice(at..at, std::iter::repeat_n(W::malformed_event(), n));
    }
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
    let timed = Timed { frames: pieces, first_delay, chunk_delay, end };
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
