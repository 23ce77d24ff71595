//! Serving a router on a listener until shutdown, then draining.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::accept;
use super::activity::Stage;
use super::fd_limit::default_max_connections;
use super::registry::Registry;
use super::timer_floor::TimerFloor;
use crate::state::AppState;

/// After the drain deadline, how long streams get to write their closing error event before every
/// connection still open is dropped.
const LAST_WORDS: Duration = Duration::from_secs(1);

/// What every connection's task needs.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) router: axum::Router,
    pub(crate) state: Arc<AppState>,
}

/// Serves `router` (the chat endpoints straight to their handler, as `server::router` routes them) until
/// `shutdown` resolves; then stops accepting, closes idle and half-sent connections at once, lets answers in
/// flight finish for up to `drain`, ends the streams still open then with their API's error event, and returns.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send,
    drain: Duration,
) -> std::io::Result<()> {
    let _floor = TimerFloor::start();
    let max_connections = state.connections.max_connections.unwrap_or_else(default_max_connections);
    tracing::debug!(max_connections, "connection limits: {:?}", state.connections);
    let shared = Arc::new(Shared { router, state });
    let registry = Arc::new(Registry::default());
    let mut tasks = JoinSet::new();
    let shutdown = std::pin::pin!(shutdown);
    accept::run(&listener, &shared, max_connections, &registry, &mut tasks, shutdown).await;
    drop(listener);
    tracing::info!(
        "shutting down: no new connections; idle and half-sent ones closed; draining in-flight requests for up to \
         {drain:?}"
    );
    registry.set_stage(Stage::Draining);
    if tokio::time::timeout(drain, join_all(&mut tasks)).await.is_err() {
        tracing::warn!("drain timeout reached; ending the streams still open with an error event");
        registry.set_stage(Stage::Deadline);
        if tokio::time::timeout(LAST_WORDS, join_all(&mut tasks)).await.is_err() {
            tracing::warn!("closing the {} connections still open", tasks.len());
        }
    }
    tasks.shutdown().await;
    Ok(())
}

async fn join_all(tasks: &mut JoinSet<()>) {
    while tasks.join_next().await.is_some() {}
}
