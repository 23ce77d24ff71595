//! One connection's task: hyper's HTTP/1 connection, watched by the timeouts of its phase and by the
//! server's shutdown stage.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use http::StatusCode;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::activity::{Activity, Phase, Stage};
use super::io::Watched;
use super::limits::ConnectionLimits;
use super::service::Gate;
use crate::error::{Api, ApiError};
use crate::state::AppState;

/// How long a connection closed for a late body keeps reading (and discarding) what the client still sends,
/// so the 408 reaches it instead of a reset.
const LINGER: Duration = Duration::from_secs(1);

/// Why a connection's task ended.
enum End {
    /// hyper finished the connection (the client closed it, or keep-alive ended).
    Done(hyper::Result<()>),
    /// The timeout of this phase fired.
    TimedOut(Phase),
    /// The server is shutting down and nothing is in flight on this connection.
    Shutdown,
}

/// Serves `tcp` until the client or a timeout or the shutdown ends it.
pub(crate) async fn run(
    tcp: TcpStream,
    http: http1::Builder,
    router: axum::Router,
    state: Arc<AppState>,
    activity: Arc<Activity>,
) {
    let limits = state.connections;
    let service = Gate::new(router, state.clone(), activity.clone());
    let mut conn = http.serve_connection(TokioIo::new(Watched::new(tcp, activity.clone())), service);
    let end = watch(&mut conn, &activity, &limits).await;
    match end {
        End::Done(Ok(())) => {}
        End::Done(Err(e)) => tracing::debug!("connection ended with an error: {e}"),
        End::Shutdown => tracing::debug!("connection closed for shutdown: nothing in flight on it"),
        End::TimedOut(Phase::Body) => {
            tracing::info!(
                "request body not received within server.body_timeout ({:?}); answered 408",
                limits.body_timeout
            );
            state.metrics.rejected(StatusCode::REQUEST_TIMEOUT.as_u16());
            let api = if activity.is_anthropic() { Api::Anthropic } else { Api::OpenAi };
            request_timeout(conn, api, limits.body_timeout).await;
        }
        End::TimedOut(phase) => tracing::debug!(?phase, "connection closed: its timeout passed"),
    }
}

/// Polls the connection, and ends it when its phase's timeout passes or when the server shuts down while
/// nothing is in flight on it. While an answer is in flight a shutdown only turns keep-alive off.
async fn watch(
    conn: &mut http1::Connection<TokioIo<Watched>, Gate>,
    activity: &Activity,
    limits: &ConnectionLimits,
) -> End {
    let timer = tokio::time::sleep(limits.header_timeout);
    tokio::pin!(timer);
    let mut armed = None;
    let mut draining = false;
    std::future::poll_fn(|cx| {
        activity.register_conn(cx);
        if !draining && activity.stage() != Stage::Serving {
            draining = true;
            if activity.phase() == Phase::Busy {
                Pin::new(&mut *conn).graceful_shutdown();
            } else {
                return Poll::Ready(End::Shutdown);
            }
        }
        if let Poll::Ready(result) = Pin::new(&mut *conn).poll(cx) {
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

/// Answers 408 on a connection whose request body is late (the handler never answered, so nothing was
/// written for this request), then closes it.
async fn request_timeout(conn: http1::Connection<TokioIo<Watched>, Gate>, api: Api, after: Duration) {
    let mut tcp = conn.into_parts().io.into_inner().tcp;
    let body = ApiError::new(
        api,
        StatusCode::REQUEST_TIMEOUT,
        format!("the request body did not arrive within {after:?} (server.body_timeout)"),
    )
    .body()
    .to_string();
    let head = format!(
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let written = async {
        tcp.write_all(head.as_bytes()).await?;
        tcp.write_all(body.as_bytes()).await?;
        tcp.shutdown().await
    };
    if tokio::time::timeout(LINGER, written).await.is_err() {
        return;
    }
    // Closing with unread bytes would reset the connection and could destroy the 408 before the client reads it.
    // On the heap: an array here would be part of every connection task's future (4 KB per open connection).
    let mut sink = vec![0u8; 4096];
    let _ = tokio::time::timeout(LINGER, async { while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {} }).await;
}
