//! The per-connection service in front of the axum router: it tells the connection's [`Activity`]
//! where each request is, refuses a declared body over `max_body` before reading it, hands the two chat
//! endpoints to their handler without the router (as `server::router` routes them), and closes the
//! connection after an answer given before the request body was read (a kept-alive client would otherwise
//! send its next request on a connection that is dropped under it).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Request, StatusCode};
use http_body::Body as _;
use tower::util::Oneshot;

use super::activity::{Activity, DrainDeadline, Phase};
use super::body::{RequestBody, ResponseBody};
use crate::error::{Api, ApiError};
use crate::request_id;
use crate::routes::chat;
use crate::state::AppState;

/// Serves one connection's requests with the router.
#[derive(Debug)]
pub(crate) struct Gate {
    router: Router,
    state: Arc<AppState>,
    activity: Arc<Activity>,
}

impl Gate {
    pub(crate) fn new(router: Router, state: Arc<AppState>, activity: Arc<Activity>) -> Self {
        Self { router, state, activity }
    }

    /// Answers `request`; `chat` is the chat endpoint its head named ([`chat::endpoint`]).
    pub(crate) fn call(&self, request: Request<RequestBody>, chat: Option<Api>) -> Answer {
        let api = if request.uri().path().starts_with("/v1/messages") { Api::Anthropic } else { Api::OpenAi };
        self.activity.request_started(request.body().is_end_stream(), api == Api::Anthropic);
        let activity = self.activity.clone();
        // The length the head declared, as its reading already made it the body's exact size.
        if let Some(declared) = request.body().size_hint().exact()
            && declared > self.state.max_body as u64
        {
            return Answer::Ready { response: Some(too_large(&self.state, api, &request, declared)), activity };
        }
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(DrainDeadline(activity.clone()));
        let request = Request::from_parts(parts, axum::body::Body::new(body));
        if let Some(api) = chat {
            return Answer::Chat { future: Box::pin(chat::admit(api, self.state.clone(), request)), activity };
        }
        Answer::Routed { future: tower::ServiceExt::oneshot(self.router.clone(), request), activity }
    }
}

/// The 413 for a declared body over `server.max_body`, sent before reading it (so no `100 Continue` either).
fn too_large<B>(state: &AppState, api: Api, request: &Request<B>, declared: u64) -> Response {
    let request_id = request_id::take_or_make(request.headers());
    state.metrics.rejected(413);
    tracing::info!(request_id, declared, "refused: body over server.max_body");
    let mut response = ApiError::new(
        api,
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "request body of {declared} bytes is larger than the limit of {} bytes (server.max_body)",
            state.max_body
        ),
    )
    .with_request_id(&request_id)
    .into_response();
    request_id::stamp(&mut response, &request_id);
    response
}

pin_project_lite::pin_project! {
    /// The answer to one request.
    #[project = AnswerProj]
    pub(crate) enum Answer {
        /// Answered by the connection layer itself.
        Ready { response: Option<Response>, activity: Arc<Activity> },
        /// Answered by a chat endpoint's handler, called as the router would call it.
        Chat { future: Pin<Box<dyn Future<Output = Response> + Send>>, activity: Arc<Activity> },
        /// Answered by the router.
        Routed { #[pin] future: Oneshot<Router, Request<axum::body::Body>>, activity: Arc<Activity> },
    }
}

impl Future for Answer {
    type Output = http::Response<ResponseBody>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (response, activity) = match self.project() {
            AnswerProj::Ready { response, activity } => (response.take().unwrap_or_default(), activity),
            AnswerProj::Chat { future, activity } => match future.as_mut().poll(cx) {
                Poll::Ready(response) => (response, activity),
                Poll::Pending => return Poll::Pending,
            },
            AnswerProj::Routed { future, activity } => match future.poll(cx) {
                Poll::Ready(Ok(response)) => (response, activity),
                Poll::Ready(Err(never)) => match never {},
                Poll::Pending => return Poll::Pending,
            },
        };
        Poll::Ready(finish(response, activity))
    }
}

/// Marks the connection busy with the answer; when the request body was not (all) read, the answer closes
/// the connection, since what is left of that body would otherwise be read as the next request.
fn finish(mut response: Response, activity: &Arc<Activity>) -> http::Response<ResponseBody> {
    if activity.phase() == Phase::Body {
        response.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    activity.enter(Phase::Busy);
    response.map(|body| ResponseBody::new(body, activity.clone()))
}
