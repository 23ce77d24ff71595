//! `GET /admin/events`: Server-Sent Events, `event: request` per finished request (the row without bodies)
//! and `event: target` per enable or breaker change, one per route listing the target.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use http::HeaderValue;
use serde::Serialize;
use tokio::sync::broadcast::{Receiver, error::RecvError};

use crate::state::AppState;
use crate::target_events::TargetEvent;

/// Comment frames keep idle proxies from closing the stream.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// The items of one broadcast receiver; a lagging subscriber skips what it missed.
fn received<T: Clone + Send + 'static>(rx: Receiver<T>) -> BoxStream<'static, T> {
    stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(item) => return Some((item, rx)),
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    })
    .boxed()
}

fn frame(event: &str, data: &impl Serialize) -> Bytes {
    let json = serde_json::to_string(data).unwrap_or_else(|_| "null".to_owned());
    Bytes::from(format!("event: {event}\ndata: {json}\n\n"))
}

/// `GET /admin/events`.
pub async fn events(State(state): State<Arc<AppState>>) -> Response {
    let requests = received(state.log.subscribe()).map(|row| frame("request", &*row));
    let admin = received(state.target_events.subscribe()).map(|event| frame("target", &event));
    let routes = state.clone();
    let breakers = received(state.health.subscribe()).flat_map(move |change| {
        let events: Vec<Bytes> = routes
            .current()
            .routes
            .values()
            .filter_map(|route| TargetEvent::of(route, &change.target, change.at))
            .map(|mut event| {
                // The change itself, even if the breaker moved on since.
                event.breaker = change.state.as_str();
                frame("target", &event)
            })
            .collect();
        stream::iter(events)
    });
    let ticks = stream::unfold(tokio::time::interval(KEEPALIVE), |mut interval| async move {
        interval.tick().await;
        Some((Bytes::from_static(b": keep-alive\n\n"), interval))
    });
    let frames = stream::select(stream::select(requests, admin), stream::select(breakers, ticks))
        .map(Ok::<_, std::convert::Infallible>);
    let mut response = Response::new(Body::from_stream(frames));
    let h = response.headers_mut();
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
