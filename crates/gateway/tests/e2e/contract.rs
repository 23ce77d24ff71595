//! The request contract, through the router alone (no sockets): each malformed request is a 400 (or
//! 415, 413) naming what is wrong, in the caller's API shape, with the request id; admin errors too.

use std::sync::Arc;

use axum::body::Body;
use http::Request;
use serde_json::{Value, json};
use switchyard_gateway::config::Config;
use switchyard_gateway::server;
use switchyard_gateway::state::{AppState, HttpProviders};
use tower::ServiceExt;

use crate::common::{ADMIN_KEY, CLIENT_KEY};

/// A router whose targets are never called (every request here is refused before that).
fn router(server_extra: &str) -> axum::Router {
    let text = format!(
        r#"
[server]
api_keys = ["{CLIENT_KEY}"]
admin_key = "{ADMIN_KEY}"
{server_extra}
[providers.oa]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
[routes.main]
targets = [{{ provider = "oa", model = "gpt-ok" }}]
"#
    );
    let config = Config::parse(&text, &|_| None, None).unwrap();
    server::router(Arc::new(AppState::build(&config, &HttpProviders::default()).unwrap()))
}

/// Status, the `x-request-id` header, the `content-type` and the JSON body.
async fn send(router: axum::Router, request: Request<Body>) -> (u16, String, String, Value) {
    let response = router.oneshot(request).await.unwrap();
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let (status, id, content_type) = (response.status().as_u16(), header("x-request-id"), header("content-type"));
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, id, content_type, body)
}

fn post(path: &str, content_type: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header("authorization", format!("Bearer {CLIENT_KEY}"))
        .header("content-type", content_type)
        .body(body.into())
        .unwrap()
}

/// Sends `body` to both chat endpoints; returns (status, message, param) for each.
async fn both(body: &Value) -> [(u16, String, Value); 2] {
    let mut out = Vec::new();
    for path in ["/v1/chat/completions", "/v1/messages"] {
        let (status, id, _, reply) = send(router(""), post(path, "application/json", body.to_string())).await;
        let error = &reply["error"];
        let echoed = if path == "/v1/messages" { &reply["request_id"] } else { &error["request_id"] };
        assert_eq!(echoed.as_str(), Some(id.as_str()), "{reply}");
        out.push((status, error["message"].as_str().unwrap_or("").to_owned(), error["param"].clone()));
    }
    [out[0].clone(), out[1].clone()]
}

#[tokio::test]
async fn a_missing_model_is_a_400_naming_the_field() {
    for (status, message, _) in both(&json!({ "messages": [{ "role": "user", "content": "hi" }] })).await {
        assert_eq!(status, 400, "{message}");
        assert!(message.starts_with("model: missing"), "{message}");
    }
    let (_, _, _, body) = send(
        router(""),
        post(
            "/v1/chat/completions",
            "application/json",
            json!({ "messages": [{ "role": "user", "content": "hi" }] }).to_string(),
        ),
    )
    .await;
    assert_eq!(body["error"]["param"], "model");
}

#[tokio::test]
async fn no_messages_is_a_400_naming_the_field() {
    for (status, message, _) in both(&json!({ "model": "main", "max_tokens": 5, "messages": [] })).await {
        assert_eq!(status, 400, "{message}");
        assert!(message.contains("(field `messages`): no messages"), "{message}");
    }
}

#[tokio::test]
async fn a_message_without_content_is_a_400_naming_the_field() {
    let body = json!({ "model": "main", "max_tokens": 5, "messages": [{ "role": "user", "content": "hi" }, { "role": "user" }] });
    for (status, message, param) in both(&body).await {
        assert_eq!(status, 400, "{message}");
        assert!(message.contains("(field `messages[1].content`): missing"), "{message}");
        assert!(param.is_null() || param == "messages[1].content", "{param}");
    }
}

#[tokio::test]
async fn tool_parameters_that_are_not_an_object_are_a_400_naming_the_field() {
    let openai = json!({
        "model": "main",
        "messages": [{ "role": "user", "content": "hi" }],
        "tools": [{ "type": "function", "function": { "name": "f", "parameters": "a string" } }],
    });
    let (status, _, _, body) =
        send(router(""), post("/v1/chat/completions", "application/json", openai.to_string())).await;
    assert_eq!((status, &body["error"]["param"]), (400, &json!("tools[0].function.parameters")), "{body}");
    let anthropic = json!({
        "model": "main", "max_tokens": 5,
        "messages": [{ "role": "user", "content": "hi" }],
        "tools": [{ "name": "f", "input_schema": [1, 2] }],
    });
    let (status, _, _, body) = send(router(""), post("/v1/messages", "application/json", anthropic.to_string())).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("tools[0].input_schema"), "{body}");
}

#[tokio::test]
async fn content_of_the_wrong_shape_names_the_field_and_the_accepted_shapes() {
    let body = json!({ "model": "main", "max_tokens": 5, "messages": [{ "role": "user", "content": 42 }] });
    for (status, message, _) in both(&body).await {
        assert_eq!(status, 400, "{message}");
        assert!(
            message.contains("(field `messages[0].content`): expected a string, or an array of content"),
            "{message}"
        );
        assert!(!message.contains("untagged enum"), "{message}");
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    for path in ["/v1/chat/completions", "/v1/messages"] {
        let (status, id, content_type, body) =
            send(router(""), post(path, "application/x-www-form-urlencoded", "model=main")).await;
        assert_eq!(status, 415, "{body}");
        assert_eq!(content_type, "application/json");
        assert!(body.to_string().contains("application/json"), "{body}");
        assert!(body.to_string().contains(&id));
    }
    // JSON with a charset, or a +json type, is fine (refused later only for its content).
    for content_type in ["application/json; charset=utf-8", "Application/JSON", "application/vnd.api+JSON", "+json"] {
        let (status, ..) = send(router(""), post("/v1/chat/completions", content_type, "{}")).await;
        assert_eq!(status, 400, "{content_type}");
    }
    for content_type in ["text/json", "json", "application/jsonp", ""] {
        let (status, ..) = send(router(""), post("/v1/chat/completions", content_type, "{}")).await;
        assert_eq!(status, 415, "{content_type:?}");
    }
}

fn admin_patch(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::patch(path)
        .header("authorization", format!("Bearer {ADMIN_KEY}"))
        .header("content-type", "application/json")
        .header("x-request-id", "admin-req-1")
        .body(body.into())
        .unwrap()
}

#[tokio::test]
async fn admin_errors_are_json_with_the_request_id() {
    let cases = [
        (admin_patch("/admin/routes/nope/targets/oa%2Fgpt-ok", "{}"), 404),
        (admin_patch("/admin/routes/main/targets/oa%2Fnope", "{}"), 404),
        (admin_patch("/admin/routes/main/targets/oa%2Fgpt-ok", "{\"enabled\": 3}"), 400),
        // Not UTF-8 once decoded: axum's own rejection was text/plain.
        (admin_patch("/admin/routes/main/targets/oa%FF", "{}"), 400),
    ];
    for (request, expected) in cases {
        let (status, id, content_type, body) = send(router(""), request).await;
        assert_eq!(status, expected, "{body}");
        assert_eq!(content_type, "application/json", "{body}");
        assert_eq!(id, "admin-req-1");
        assert_eq!(body["error"]["request_id"], "admin-req-1", "{body}");
    }
}

#[tokio::test]
async fn the_admin_body_limit_is_max_body() {
    let big = format!("{{\"enabled\": true, \"pad\": \"{}\"}}", "x".repeat(3000));
    let (status, _, content_type, body) =
        send(router("max_body = \"1KiB\""), admin_patch("/admin/routes/main/targets/oa%2Fgpt-ok", big)).await;
    assert_eq!((status, content_type.as_str()), (413, "application/json"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("server.max_body"), "{body}");
    assert_eq!(body["error"]["request_id"], "admin-req-1");
    // Above axum's 2 MB default, within max_body: read, and refused only for its unknown field.
    let big = format!("{{\"enabled\": true, \"pad\": \"{}\"}}", "x".repeat(3 * 1024 * 1024));
    let (status, _, _, body) = send(router(""), admin_patch("/admin/routes/main/targets/oa%2Fgpt-ok", big)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("pad"), "{body}");
}
