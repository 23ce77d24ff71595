//! One connection's task: its requests read and answered one after another, watched by the timeouts of its
//! phase and by the server's shutdown stage.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Poll, ready};
use std::time::Duration;

use http::{Method, Request, StatusCode, Version};
use tokio::net::TcpStream;

use super::activity::{Activity, Phase, Stage};
use super::body::RequestBody;
use super::limits::ConnectionLimits;
use super::request_head::{self, HeadError, RequestHead};
use super::response_writer::{self, Asked, WriteError};
use super::service::Gate;
use super::socket::Socket;
use crate::error::{Api, ApiError};
use crate::metrics::Metrics;
use crate::state::AppState;

/// How long a connection closed after an answer keeps reading (and discarding) what the client still sends,
/// so the answer reaches it instead of a reset.
const LINGER: Duration = Duration::from_secs(1);

/// Why a connection's task ended.
enum End {
    /// The requests were served until the client or keep-alive ended the connection.
    Done(Result<(), ConnError>),
    /// The timeout of this phase fired.
    TimedOut(Phase),
    /// The server is shutting down and nothing is in flight on this connection.
    Shutdown,
}

/// What broke a connection off.
#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("reading a request failed: {0}")]
    Read(#[from] std::io::Error),
    #[error("unusable request head ({0}); answered {status}", status = .0.status())]
    Head(#[from] HeadError),
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// Serves `tcp` until the client or a timeout or the shutdown ends it.
pub(crate) async fn run(tcp: TcpStream, router: axum::Router, state: Arc<AppState>, activity: Arc<Activity>) {
    let limits = state.connections;
    let gate = Gate::new(router, state.clone(), activity.clone());
    let socket = Arc::new(Socket::new(tcp, activity.clone()));
    let end = watch(std::pin::pin!(serve(&socket, &gate, &state.metrics)), &activity, &limits).await;
    match end {
        End::Done(Ok(())) => {}
        End::Done(Err(e)) => tracing::debug!("connection ended: {e}"),
        End::Shutdown => tracing::debug!("connection closed for shutdown: nothing in flight on it"),
        End::TimedOut(Phase::Body) => {
            tracing::info!(
                "request body not received within server.body_timeout ({:?}); answered 408",
                limits.body_timeout
            );
            let message =
                format!("the request body did not arrive within {:?} (server.body_timeout)", limits.body_timeout);
            refuse(&socket, &state.metrics, StatusCode::REQUEST_TIMEOUT, message).await;
        }
        End::TimedOut(phase) => tracing::debug!(?phase, "connection closed: its timeout passed"),
    }
}

/// Serves the connection's requests one after another until one ends it.
/// `metrics` counts the heads refused here; the requests served count themselves.
async fn serve(socket: &Arc<Socket>, gate: &Gate, metrics: &Metrics) -> Result<(), ConnError> {
    loop {
        let head = match next_head(socket).await {
            Ok(Some(head)) => head,
            Ok(None) => return Ok(()),
            Err(ConnError::Head(e)) => {
                refuse(socket, metrics, e.status(), e.message()).await;
                return Err(e.into());
            }
            Err(e) => return Err(e),
        };
        let asked = Asked {
            head: head.parts.method == Method::HEAD,
            keep_alive: head.keep_alive,
            chunked_ok: head.parts.version == Version::HTTP_11,
        };
        let body = RequestBody::new(socket.clone(), head.body, head.expect_continue);
        let answer = gate.call(Request::from_parts(head.parts, body), head.chat);
        // A client that goes away while its request is handled cancels the handling.
        let response = {
            let mut answer = std::pin::pin!(answer);
            std::future::poll_fn(|cx| match answer.as_mut().poll(cx) {
                Poll::Ready(response) => Poll::Ready(Some(response)),
                Poll::Pending => socket.poll_gone(cx).map(|()| None),
            })
            .await
        };
        let Some(response) = response else { return Err(WriteError::Gone.into()) };
        socket.release_if_empty();
        let asked = Asked { keep_alive: asked.keep_alive && socket.activity.stage() == Stage::Serving, ..asked };
        if !response_writer::write(socket, response, asked).await? {
            close_after_answer(socket).await;
            return Ok(());
        }
    }
}

/// Ends the sending side after a last answer, then reads off what the client still sends (the rest of a
/// body or head the answer came before) for up to [`LINGER`]: closing with unread bytes would reset the
/// connection and could destroy the answer before the client reads it.
async fn close_after_answer(socket: &Socket) {
    socket.shutdown_write().await;
    let _ = tokio::time::timeout(LINGER, socket.discard_until_closed()).await;
}

/// The next request's head; `None` when the client closes the connection between requests.
async fn next_head(socket: &Socket) -> Result<Option<RequestHead>, ConnError> {
    std::future::poll_fn(|cx| {
        let mut inbound = socket.inbound();
        loop {
            if !inbound.buf.is_empty()
                && let Some(head) = request_head::read(&mut inbound.buf)?
            {
                return Poll::Ready(Ok(Some(head)));
            }
            match ready!(socket.poll_fill(cx, &mut inbound)) {
                // A head cut short by the close is dropped with the connection, unanswered.
                Ok(0) => return Poll::Ready(Ok(None)),
                Ok(_) => {}
                Err(e) => return Poll::Ready(Err(e.into())),
            }
        }
    })
    .await
}

/// Polls the connection, and ends it when its phase's timeout passes or when the server shuts down while
/// nothing is in flight on it. While an answer is in flight a shutdown only ends the connection after it.
async fn watch(
    mut conn: Pin<&mut impl Future<Output = Result<(), ConnError>>>,
    activity: &Activity,
    limits: &ConnectionLimits,
) -> End {
    let timer = tokio::time::sleep(limits.header_timeout);
    tokio::pin!(timer);
    let mut armed = None;
    std::future::poll_fn(|cx| {
        activity.register_conn(cx);
        let draining = activity.stage() != Stage::Serving;
        if draining && activity.phase() != Phase::Busy {
            return Poll::Ready(End::Shutdown);
        }
        if let Poll::Ready(result) = conn.as_mut().poll(cx) {
            return Poll::Ready(End::Done(result));
        }
        let (phase, deadline) = activity.deadline(limits);
        if draining && phase != Phase::Busy {
            return Poll::Ready(End::Shutdown);
        }
        let Some(deadline) = deadline else { return Poll::Pending };
        if armed != Some(deadline) {
            armed = Some(deadline);
            timer.as_mut().reset(deadline);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(End::TimedOut(phase)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Answers `status` with `message` in the API's error body (the API of the connection's last request; OpenAI's
/// before any), then closes the connection: for a request the handler never answered (a late body, an unusable
/// head), so nothing was written for it. Counted in `metrics` as refused before a route.
async fn refuse(socket: &Socket, metrics: &Metrics, status: StatusCode, message: String) {
    metrics.rejected(status.as_u16());
    let api = if socket.activity.is_anthropic() { Api::Anthropic } else { Api::OpenAi };
    let body = ApiError::new(api, status, message).body().to_string();
    let answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        status.as_str(),
        status.canonical_reason().unwrap_or_default(),
        body.len()
    );
    if matches!(tokio::time::timeout(LINGER, socket.write_all(answer.as_bytes())).await, Ok(Ok(()))) {
        close_after_answer(socket).await;
    }
}
