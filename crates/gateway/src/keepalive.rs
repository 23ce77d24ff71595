//! Stream keep-alive (SPEC section 6, per route, off by default): for callers behind proxies that drop idle
//! connections, a streaming request gets its headers at once and SSE comments while the engine waits for a
//! first chunk. A failure before the first chunk then arrives as the API's in-stream error event, since the
//! status line is already sent; which target answered is told in an SSE comment instead of headers.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use switchyard::{ChatModel, ChatRequest};
use tokio::sync::mpsc;

use crate::codec::StreamEncoder;
use crate::conn::DrainDeadline;
use crate::metrics::InFlight;
use crate::request_log::Recording;
use crate::sse;
use crate::state::Route;

/// The comment sent every `interval` while waiting.
const COMMENT: &[u8] = b": keep-alive\n\n";

/// When the request started, and how often to send a comment while waiting.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// The keep-alive interval.
    pub interval: Duration,
    /// When the request started.
    pub started: Instant,
}

/// Runs the request in a task that feeds the body; dropping the body (the client went away) ends the task,
/// which drops the engine's call. At the server's drain `deadline` a stream still waiting ends with the
/// API's error event.
// Each argument is a separate fact of this one request; a struct holding them would only be unpacked here.
#[allow(clippy::too_many_arguments)]
pub fn body(
    route: Arc<Route>,
    request: ChatRequest,
    mut encoder: StreamEncoder,
    in_flight: InFlight,
    timing: Timing,
    request_id: String,
    deadline: Option<DrainDeadline>,
    recording: Option<Recording>,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let Timing { interval, started } = timing;
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let mut recording = recording;
    // The headers (200) go out at once.
    if let Some(r) = &mut recording {
        r.committed();
    }
    tokio::spawn(async move {
        let call = route.manager.stream(request);
        tokio::pin!(call);
        // The first tick is immediate: the caller sees bytes at once.
        let mut ticker = tokio::time::interval(interval);
        let result = loop {
            tokio::select! {
                result = &mut call => break result,
                _ = ticker.tick() => {
                    if tx.send(Bytes::from_static(COMMENT)).await.is_err() {
                        return;
                    }
                }
                () = tx.closed() => return,
                () = DrainDeadline::of(deadline.as_ref()) => break Err(crate::conn::shutting_down()),
            }
        };
        match result {
            Ok(stream) => {
                let target = stream.served_by.clone().unwrap_or_default();
                if let Some(model) = route.model_of(&target) {
                    encoder.set_model(model);
                }
                route.metrics.first_chunk(&target, started.elapsed());
                if let Some(r) = &mut recording {
                    r.served(&target, &stream.attempts);
                }
                let (calls, fallback) = crate::routes::chat::calls_and_fallback(&target, &stream.attempts);
                let note = format!(
                    ": x-switchyard-target={target} x-switchyard-attempts={calls} x-switchyard-fallback={fallback}\n\n"
                );
                if tx.send(Bytes::from(note)).await.is_err() {
                    return;
                }
                let frames =
                    sse::body(stream, encoder, in_flight, &route, target, started, request_id, deadline, recording);
                let mut frames = std::pin::pin!(frames);
                while let Some(Ok(frame)) = frames.next().await {
                    if tx.send(frame).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                let status = crate::error::status_of(&e).0.as_u16();
                tracing::warn!(request_id, route = %route.name, status, "request failed (keep-alive stream): {e}");
                in_flight.finish(status);
                if let Some(r) = recording {
                    let message = crate::client_error::for_client(&e).to_string();
                    r.failed(status, &e, message, switchyard::Usage::default());
                }
                let _ = tx.send(encoder.error(&e)).await;
            }
        }
    });
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|frame| (Ok(frame), rx)) })
}
