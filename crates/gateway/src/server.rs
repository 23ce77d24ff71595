//! The HTTP router, its auth layers, and serving with graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use http::StatusCode;
use tokio::net::TcpListener;

use crate::auth::Denied;
use crate::error::{Api, ApiError};
use crate::request_id::{self, RequestId};
use crate::routes::{
    admin, admin_config, admin_events, admin_overrides, admin_requests, admin_targets, chat, count_tokens, health,
    metrics, models, responses, ui,
};
use crate::state::AppState;

/// The whole app: public, client and admin endpoints.
pub fn router(state: Arc<AppState>) -> Router {
    // The two chat endpoints are the request path: they take the request id and check the client key
    // themselves, because each middleware layer boxes and clones services on every request.
    let chat = Router::new()
        .route(chat::CHAT_COMPLETIONS, post(chat::chat_completions).fallback(method_not_allowed))
        .route(chat::MESSAGES, post(chat::messages).fallback(method_not_allowed))
        .route("/v1/messages/count_tokens", post(count_tokens::count_tokens).fallback(method_not_allowed))
        .route("/v1/responses", post(responses::responses).fallback(method_not_allowed));
    let client = Router::new()
        .route("/v1/models", get(models::list))
        .route_layer(middleware::from_fn_with_state(state.clone(), client_auth));
    let admin = Router::new()
        .route("/admin/routes", get(admin::routes))
        .route("/admin/routes/{route}/targets/{*id}", patch(admin::patch_target).delete(admin_overrides::clear))
        .route("/admin/targets/{*id}", patch(admin_targets::patch))
        .route("/admin/stats", get(admin::stats))
        .route("/admin/instances", get(admin::instances))
        .route("/admin/requests", get(admin_requests::list))
        .route("/admin/requests/{id}", get(admin_requests::one))
        .route("/admin/usage", get(admin_requests::usage))
        .route("/admin/events", get(admin_events::events))
        .route("/admin/stats/reset", post(admin::reset_stats))
        .route("/admin/reload", post(admin_config::reload))
        .route("/admin/config", get(admin_config::config))
        .route_layer(middleware::from_fn_with_state(state.clone(), admin_auth))
        .layer(DefaultBodyLimit::max(state.max_body));
    let rest = Router::new()
        .route("/health", get(health::health))
        .route("/metrics", get(metrics::metrics))
        .route("/ui", get(ui::page))
        .route("/ui/", get(ui::page))
        .route("/ui/{file}", get(ui::asset))
        .merge(client)
        .merge(admin)
        .fallback(not_found)
        .layer(middleware::from_fn(request_id::layer));
    chat.merge(rest).with_state(state)
}

fn api_of(request: &Request) -> Api {
    if request.uri().path().starts_with("/v1/messages") { Api::Anthropic } else { Api::OpenAi }
}

fn request_id_of(request: &Request) -> String {
    request.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default()
}

/// The 401 for a request without a valid client key (counted and logged).
pub(crate) fn client_refused(state: &AppState, api: Api, request_id: &str, path: &str) -> Response {
    state.metrics.rejected(401);
    tracing::info!(request_id, path, "refused: bad or missing client key");
    ApiError::new(
        api,
        StatusCode::UNAUTHORIZED,
        "invalid or missing API key: send Authorization: Bearer <key> or x-api-key: <key>",
    )
    .with_request_id(request_id)
    .into_response()
}

async fn client_auth(State(state): State<Arc<AppState>>, mut request: Request, next: Next) -> Response {
    match state.current().auth.check_client(request.headers()) {
        Ok(caller) => {
            // `/v1/models` lists what this key may use.
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(_) => client_refused(&state, api_of(&request), &request_id_of(&request), request.uri().path()),
    }
}

async fn admin_auth(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let refusal = match state.current().auth.check_admin(request.headers()) {
        Ok(()) => return next.run(request).await,
        Err(Denied::AdminDisabled) => ApiError::new(
            Api::OpenAi,
            StatusCode::FORBIDDEN,
            "the admin API is disabled: set server.admin_key (e.g. admin_key = \"${SWITCHYARD_ADMIN_KEY}\")",
        ),
        Err(Denied::BadKey) => ApiError::new(
            Api::OpenAi,
            StatusCode::UNAUTHORIZED,
            "invalid or missing admin key: send Authorization: Bearer <admin_key>",
        ),
    };
    state.metrics.rejected(refusal.status.as_u16());
    tracing::info!(request_id = %request_id_of(&request), status = refusal.status.as_u16(), "admin request refused");
    refusal.with_request_id(&request_id_of(&request)).into_response()
}

/// Another method than POST on a chat endpoint: 405 in the endpoint's shape, with the request id.
async fn method_not_allowed(request: Request) -> Response {
    let request_id = request_id::take_or_make(request.headers());
    let mut response = ApiError::new(
        api_of(&request),
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} {} is not supported: send a POST", request.method(), request.uri().path()),
    )
    .with_request_id(&request_id)
    .into_response();
    response.headers_mut().insert(http::header::ALLOW, http::HeaderValue::from_static("POST"));
    request_id::stamp(&mut response, &request_id);
    response
}

/// The endpoints a client may call, for the 404 of any other.
const ENDPOINTS: &str = "POST /v1/chat/completions, POST /v1/messages, POST /v1/messages/count_tokens, \
                         POST /v1/responses, GET /v1/models, GET /health, GET /metrics, GET /ui, /admin/*";

/// An unknown endpoint: 404 in the OpenAI shape with `code: "unknown_endpoint"` (not `model_not_found`, which
/// is for an unknown model), naming it and listing the supported ones.
async fn not_found(request: Request) -> Response {
    ApiError::new(
        Api::OpenAi,
        StatusCode::NOT_FOUND,
        format!("unknown endpoint: {} {}; this gateway serves {ENDPOINTS}", request.method(), request.uri().path()),
    )
    .with_code("unknown_endpoint")
    .with_request_id(&request_id_of(&request))
    .into_response()
}

/// Serves until `shutdown` resolves; then stops accepting, closes idle and half-sent connections at once,
/// waits up to `drain` for in-flight requests and streams, and ends the streams still open then with their
/// API's error event (see [`crate::conn`]).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> std::io::Result<()> {
    crate::conn::serve(listener, state.clone(), router(state), shutdown, drain).await
}

/// Resolves on SIGINT or SIGTERM; each SIGHUP meanwhile calls `on_hangup` (the gateway reloads its config,
/// the simulated upstream ignores it). The signals are taken over when this is called (not when first
/// polled), so none arrives unhandled after it.
pub fn shutdown_signal(on_hangup: impl Fn() + Send + 'static) -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let watched = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()), signal(SignalKind::hangup()));
        async move {
            let (Ok(mut int), Ok(mut term), hup) = watched else {
                tracing::warn!("cannot watch SIGINT/SIGTERM: stop the gateway with SIGKILL");
                return std::future::pending().await;
            };
            let mut hup = hup.ok();
            loop {
                tokio::select! {
                    _ = int.recv() => return,
                    _ = term.recv() => return,
                    Some(()) = next_hangup(&mut hup) => on_hangup(),
                }
            }
        }
    }
    #[cfg(not(unix))]
    async move {
        let _ = on_hangup;
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The next SIGHUP, or never when it cannot be watched.
#[cfg(unix)]
async fn next_hangup(hup: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match hup {
        Some(h) => h.recv().await,
        None => std::future::pending().await,
    }
}

/// A gateway serving in the background (tests, the demo); dropping it or calling
/// [`Running::shutdown`] stops it gracefully.
#[derive(Debug)]
pub struct Running {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// Its state (routes, metrics).
    pub state: Arc<AppState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// Binds `listen` (e.g. `127.0.0.1:0`) and serves `state` on it.
    pub async fn start(state: Arc<AppState>, listen: &str, drain: Duration) -> std::io::Result<Running> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            listener,
            state.clone(),
            async move {
                let _ = stopped.await;
            },
            drain,
        ));
        Ok(Running { addr, state, stop: Some(stop), task: Some(task) })
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, drains, and waits until the server is down.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
