//! API keys, and credentials in a base URL, never appear in `Debug` output, errors or logs, even when the
//! upstream echoes the key back.
//!
//! Its own test binary: the log capture is per thread, and no other test may touch the log call sites meanwhile.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use switchyard::{ChatModel, ErrorKind};
use switchyard_providers::{ApiKey, ProviderConfig, ProviderKind, build_model};
use tokio::net::TcpListener;

use common::hello;

fn config(kind: ProviderKind, base_url: String, key: &str) -> ProviderConfig {
    let mut config = ProviderConfig::new(kind, "edge", "the-model");
    config.base_url = base_url;
    config.api_key = Some(ApiKey::new(key));
    config
}

/// A `tracing` writer that keeps everything written, to search the logs for secrets.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_api_key_and_base_url_credentials_never_appear_in_debug_output_errors_or_logs() {
    const KEY: &str = "sk-secret-0123456789abcdef";
    const URL_PASSWORD: &str = "url-password-4711";
    const URL_KEY: &str = "url-key-0815";
    // An upstream that echoes the key it received in its error message, as some APIs do.
    // Whole requests get a 401; streamed ones a 200 whose error event echoes the key.
    let app = Router::new().fallback(post(|headers: HeaderMap, body: String| async move {
        let key =
            headers.get("authorization").or_else(|| headers.get("x-api-key")).unwrap().to_str().unwrap().to_owned();
        if body.contains("\"stream\":true") {
            let event = format!(
                "event: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"api_error\",\"message\":\"bad key {key}\"}}}}\n\n"
            );
            return (StatusCode::OK, [("content-type", "text/event-stream")], event);
        }
        let body =
            format!(r#"{{"error":{{"message":"Incorrect API key provided: {key}","type":"authentication_error"}}}}"#);
        (StatusCode::UNAUTHORIZED, [("content-type", "application/json")], body)
    }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut texts = Vec::new();
    for kind in common::KINDS {
        let mut config = config(kind, format!("http://{addr}/v1"), KEY);
        config.headers = vec![("x-extra-auth".into(), format!("token-{KEY}"))];
        texts.push(format!("{config:?}"));
        texts.push(format!("{:?} {}", config.api_key, config.api_key.as_ref().unwrap()));
        let openai = switchyard_providers::OpenAiClient::new(config.clone()).unwrap();
        let anthropic = switchyard_providers::AnthropicClient::new(config.clone()).unwrap();
        texts.push(format!("{openai:?} {anthropic:?}"));
        let model = build_model(config).unwrap();
        let error = model.complete(hello()).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Auth);
        texts.push(format!("{error} {error:?}"));
        let (_, error) = common::drain(&*model, hello()).await;
        let error = error.unwrap();
        texts.push(format!("{error} {error:?}"));
    }
    // Credentials in the base URL (userinfo, a query key): an unreachable one, so the error names the URL.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    for kind in common::KINDS {
        let config = config(kind, format!("http://user:{URL_PASSWORD}@{closed_addr}/v1?key={URL_KEY}"), KEY);
        texts.push(format!("{config:?}"));
        let openai = switchyard_providers::OpenAiClient::new(config.clone()).unwrap();
        texts.push(format!("{openai:?}"));
        let model = build_model(config).unwrap();
        let error = model.complete(hello()).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Connection);
        let message = error.to_string();
        assert!(message.contains(&format!("http://<redacted>@{closed_addr}/v1/")), "{message}");
        assert!(message.contains("?key=<redacted>"), "{message}");
        texts.push(format!("{error} {error:?}"));
    }
    drop(_guard);
    texts.push(String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned());
    assert!(
        texts.last().unwrap().contains("streaming chat completion"),
        "the logs were captured: {}",
        texts.last().unwrap()
    );
    assert!(texts[0].contains("[redacted]"), "{}", texts[0]);
    assert!(texts.iter().any(|t| t.contains("Incorrect API key provided")), "the upstream message is kept");
    assert!(texts.iter().any(|t| t.contains("bad key [redacted]")), "the in-stream error is kept, redacted");
    for text in &texts {
        assert!(!text.contains(KEY), "the key leaked: {text}");
        assert!(!text.contains("0123456789abcdef"), "part of the key leaked: {text}");
        assert!(!text.contains(URL_PASSWORD) && !text.contains(URL_KEY), "the base URL's credentials leaked: {text}");
    }
}
