//! `x-request-id`: the caller's, or a new one; attached to the request, the response and the logs.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;

/// The request id, in the request's extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Longest caller-supplied id kept; longer ones are replaced.
const MAX_LEN: usize = 128;

/// Middleware: takes or makes the id, and echoes it on the response.
pub async fn layer(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= MAX_LEN && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned);
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
