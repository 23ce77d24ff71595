//! `POST /v1/responses` (the OpenAI Responses API, stateless): served by the chat endpoints' machinery
//! (same routes, planner, fallback, commit rule, headers and errors); only the codec differs.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;

use crate::error::Api;
use crate::routes::chat;
use crate::state::AppState;

/// `POST /v1/responses`.
pub async fn responses(State(state): State<Arc<AppState>>, request: Request) -> Response {
    chat::admit(Api::Responses, state, request).await
}
