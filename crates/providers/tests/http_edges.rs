//! The HTTP edges the simulated upstream does not cover: what goes on the wire (URL, headers, keys),
//! Retry-After as an HTTP date, connect failures, cancellation, and keys never leaking.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::post;
use futures::StreamExt;
use switchyard::{ChatChunk, ChatModel, ErrorKind, TimeoutPhase};
use switchyard_providers::{ApiKey, ProviderConfig, ProviderKind, Timeouts, build_model};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use common::hello;

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(String, HeaderMap, String)>>>);

/// An upstream answering every POST with `status`, `headers` and `body`, recording what it received.
async fn recording_server(status: u16, headers: Vec<(&'static str, String)>, body: String) -> (SocketAddr, Seen) {
    let seen = Seen::default();
    let record = seen.clone();
    let app = Router::new().fallback(post(move |uri: Uri, request_headers: HeaderMap, request_body: String| {
        let record = record.clone();
        let headers = headers.clone();
        let body = body.clone();
        async move {
            let path = uri.path_and_query().map_or_else(|| uri.path().to_owned(), ToString::to_string);
            record.0.lock().unwrap().push((path, request_headers, request_body));
            let mut response = (StatusCode::from_u16(status).unwrap(), body).into_response();
            for (name, value) in headers {
                response.headers_mut().insert(name, value.parse().unwrap());
            }
            response.headers_mut().insert("content-type", "application/json".parse().unwrap());
            response
        }
    }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

fn config(kind: ProviderKind, base_url: String, key: &str) -> ProviderConfig {
    let mut config = ProviderConfig::new(kind, "edge", "the-model");
    config.base_url = base_url;
    config.api_key = Some(ApiKey::new(key));
    config
}

const OPENAI_OK: &str = r#"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#;
const ANTHROPIC_OK: &str = r#"{"id":"m","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}"#;

#[tokio::test]
async fn each_provider_sends_its_own_key_headers_path_and_model() {
    let (addr, seen) = recording_server(200, vec![], OPENAI_OK.into()).await;
    let mut openai = config(ProviderKind::OpenAi, format!("http://{addr}/v1/"), "sk-openai-own");
    openai.headers = vec![("x-team".into(), "blue".into())];
    build_model(openai).unwrap().complete(hello()).await.unwrap();
    let (path, headers, body) = seen.0.lock().unwrap().pop().unwrap();
    assert_eq!(path, "/v1/chat/completions");
    assert_eq!(headers["authorization"], "Bearer sk-openai-own");
    assert_eq!(headers["x-team"], "blue");
    assert_eq!(headers["host"], addr.to_string(), "one Host header, with the port");
    assert_eq!(headers.get_all("host").iter().count(), 1);
    assert!(headers.get("x-api-key").is_none());
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["model"], "the-model");

    let (addr, seen) = recording_server(200, vec![], ANTHROPIC_OK.into()).await;
    let mut anthropic = config(ProviderKind::Anthropic, format!("http://{addr}"), "sk-ant-own");
    // A configured Host wins (e.g. a virtual host behind a plain-HTTP ingress).
    anthropic.headers = vec![("Host".into(), "llm.internal".into())];
    build_model(anthropic).unwrap().complete(hello()).await.unwrap();
    let (path, headers, body) = seen.0.lock().unwrap().pop().unwrap();
    assert_eq!(headers["host"], "llm.internal");
    assert_eq!(path, "/v1/messages");
    assert_eq!(headers["x-api-key"], "sk-ant-own");
    assert_eq!(headers["anthropic-version"], "2023-06-01");
    assert!(headers.get("authorization").is_none());
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["max_tokens"], 4096);

    // A streamed OpenAI request asks for usage.
    let (addr, seen) = recording_server(200, vec![], "data: [DONE]\n\n".into()).await;
    let model = build_model(config(ProviderKind::OpenAi, format!("http://{addr}/v1"), "k")).unwrap();
    let _ = common::drain(&*model, hello()).await;
    let (_, _, body) = seen.0.lock().unwrap().pop().unwrap();
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn a_base_url_with_a_query_keeps_it_after_the_endpoints_path() {
    // Azure OpenAI's style: the deployment in the path, the API version in the query.
    let (addr, seen) = recording_server(200, vec![], OPENAI_OK.into()).await;
    let base = format!("http://{addr}/openai/deployments/gpt/?api-version=2024-06-01#ignored");
    build_model(config(ProviderKind::OpenAi, base, "k")).unwrap().complete(hello()).await.unwrap();
    let (path, _, _) = seen.0.lock().unwrap().pop().unwrap();
    assert_eq!(path, "/openai/deployments/gpt/chat/completions?api-version=2024-06-01");

    // Anthropic's token count is a sibling endpoint of the same base URL.
    let (addr, seen) = recording_server(200, vec![], r#"{"input_tokens":7}"#.into()).await;
    let model = build_model(config(ProviderKind::Anthropic, format!("http://{addr}/proxy?team=blue"), "k")).unwrap();
    assert_eq!(model.count_tokens(&hello()).await.unwrap(), Some(7));
    let (path, _, _) = seen.0.lock().unwrap().pop().unwrap();
    assert_eq!(path, "/proxy/v1/messages/count_tokens?team=blue");
}

#[tokio::test]
async fn retry_after_as_an_http_date_and_as_milliseconds() {
    let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
    let (addr, _) = recording_server(429, vec![("retry-after", later)], r#"{"error":{"message":"slow"}}"#.into()).await;
    let error = build_model(config(ProviderKind::OpenAi, format!("http://{addr}/v1"), "k"))
        .unwrap()
        .complete(hello())
        .await
        .unwrap_err();
    let wait = error.retry_after().unwrap();
    assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(120), "{wait:?}");

    let (addr, _) =
        recording_server(429, vec![("retry-after-ms", "1500".into())], r#"{"error":{"message":"slow"}}"#.into()).await;
    let error = build_model(config(ProviderKind::OpenAi, format!("http://{addr}/v1"), "k"))
        .unwrap()
        .complete(hello())
        .await
        .unwrap_err();
    assert_eq!(error.retry_after(), Some(Duration::from_millis(1500)));
}

#[tokio::test]
async fn a_refused_connection_is_a_connection_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    for kind in common::KINDS {
        let error = build_model(config(kind, format!("http://{addr}/v1"), "k")).unwrap().complete(hello()).await;
        let error = error.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Connection, "{kind}");
        // The message names where it tried to go, and why it could not.
        let message = error.to_string();
        assert!(message.contains(&format!("request to http://{addr}/")), "{message}");
        assert!(message.to_lowercase().contains("refused"), "{message}");
    }
}

#[tokio::test]
async fn a_connect_that_never_completes_hits_the_connect_timeout() {
    // A listener with a backlog of one that never accepts: once the queue is full the kernel drops SYNs.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match tokio::time::timeout(Duration::from_millis(100), tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => fillers.push(stream),
            _ => break, // the queue is full
        }
    }
    let mut config = config(ProviderKind::OpenAi, format!("http://{addr}/v1"), "k");
    config.timeouts = Timeouts { connect: Some(Duration::from_millis(200)), ..Timeouts::default() };
    let error = build_model(config).unwrap().complete(hello()).await.unwrap_err();
    match error {
        switchyard::Error::Timeout { phase, after } => {
            assert_eq!((phase, after), (TimeoutPhase::Connect, Duration::from_millis(200)));
        }
        other => panic!("expected a connect timeout, got {other}"),
    }
    drop(listener);
}

/// A raw upstream that sends SSE headers and one event, then reports when the client closes the connection.
async fn one_event_then_watch() -> (SocketAddr, tokio::sync::oneshot::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed, closed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        // Read until the end of the JSON body (the request is small and ends with `}`).
        while !request.ends_with(b"}") {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "client closed before sending its request");
            request.extend_from_slice(&buf[..n]);
        }
        let event = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"first\"}}]}\n\n";
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
        socket.write_all(format!("{head}{event}").as_bytes()).await.unwrap();
        // No more data: wait for the client to hang up (read returns 0 or an error).
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = closed.send(());
    });
    (addr, closed_rx)
}

#[tokio::test]
async fn dropping_a_stream_closes_the_upstream_connection() {
    let (addr, closed) = one_event_then_watch().await;
    let model = build_model(config(ProviderKind::OpenAi, format!("http://{addr}/v1"), "k")).unwrap();
    let mut stream = model.stream(hello()).await.unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap(), ChatChunk::text("first"));
    drop(stream);
    // Bounded wait: the upstream must see the connection close once the stream is dropped.
    tokio::time::timeout(Duration::from_secs(10), closed).await.expect("upstream never saw the close").unwrap();
}

#[tokio::test]
async fn a_line_that_never_ends_is_an_invalid_response_not_unbounded_memory() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = socket.read(&mut buf).await;
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\ndata: ";
        socket.write_all(head.as_bytes()).await.unwrap();
        let junk = vec![b'x'; 64 * 1024];
        // 16 MiB without a newline: twice the reader's limit; stops once the client hangs up.
        for _ in 0..256 {
            if socket.write_all(&junk).await.is_err() {
                break;
            }
        }
    });
    let model = build_model(config(ProviderKind::OpenAi, format!("http://{addr}/v1"), "k")).unwrap();
    let (_, error) = common::drain(&*model, hello()).await;
    let error = error.unwrap();
    assert_eq!(error.kind(), ErrorKind::InvalidResponse, "{error}");
    assert!(error.to_string().contains("longer than"), "{error}");
}

#[tokio::test]
async fn finished_streams_give_their_connection_back_to_the_pool() {
    use axum::serve::ListenerExt;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
    // A chunked body whose terminator comes a moment after the end marker, as real streaming servers send it.
    let app = Router::new().fallback(post(move || async move {
        let pieces = futures::stream::iter([body]).then(|piece| async move {
            tokio::task::yield_now().await;
            Ok::<_, std::io::Error>(piece)
        });
        let pieces = pieces.chain(futures::stream::once(async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok("")
        }));
        ([("content-type", "text/event-stream")], axum::body::Body::from_stream(pieces))
    }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = listener.tap_io(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let model = build_model(config(ProviderKind::OpenAi, format!("http://{addr}/v1"), "k")).unwrap();
    for _ in 0..5 {
        let (chunks, error) = common::drain(&*model, hello()).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(common::text_of(&chunks), "hi");
        // Give the background drain (the terminator comes 20 ms late) time to hand the connection back.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let connections = accepted.load(Ordering::SeqCst);
    assert!(connections < 5, "5 streams opened {connections} connections: none was reused");
}

#[tokio::test]
async fn models_of_one_provider_share_its_connection_pool() {
    use axum::serve::ListenerExt;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let app = Router::new().fallback(post(|| async { ([("content-type", "application/json")], OPENAI_OK) }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = listener.tap_io(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let provider =
        switchyard_providers::Provider::new(&config(ProviderKind::OpenAi, format!("http://{addr}/v1"), "k")).unwrap();
    let models = [provider.model("model-a", Timeouts::default()), provider.model("model-b", Timeouts::default())];
    for i in 0..6 {
        models[i % 2].complete(hello()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "both models should reuse the provider's one connection");
}

#[tokio::test]
async fn a_streaming_request_answered_with_json_is_read_whole() {
    for (kind, ok) in [(ProviderKind::OpenAi, OPENAI_OK), (ProviderKind::Anthropic, ANTHROPIC_OK)] {
        let (addr, _) = recording_server(200, vec![], ok.into()).await;
        let model = build_model(config(kind, format!("http://{addr}/v1"), "k")).unwrap();
        let (chunks, error) = common::drain(&*model, hello()).await;
        assert!(error.is_none(), "{kind}: {error:?}");
        assert_eq!(common::text_of(&chunks), "hi");
        assert_eq!(chunks.last(), Some(&ChatChunk::Finish { reason: switchyard::FinishReason::Stop }));
    }
    let error_object = r#"{"error":{"message":"overloaded, try later","type":"server_error"}}"#;
    let (addr, _) = recording_server(200, vec![], error_object.into()).await;
    let model = build_model(config(ProviderKind::OpenAi, format!("http://{addr}/v1"), "k")).unwrap();
    let error = model.stream(hello()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Server, "{error}");
}

#[test]
fn base_urls_default_per_vendor_and_bad_ones_name_the_provider() {
    for kind in common::KINDS {
        let mut config = ProviderConfig::new(kind, "p", "m");
        assert_eq!(config.base_url, kind.default_base_url());
        config.base_url = String::new();
        assert!(build_model(config.clone()).is_ok(), "empty base_url means the default");
        config.base_url = "api.example.com/v1".into();
        let error = build_model(config).err().unwrap().to_string();
        assert!(error.contains("provider `p`") && error.contains("base_url"), "{error}");
    }
    assert_eq!(ProviderKind::OpenAi.default_base_url(), "https://api.openai.com/v1");
    assert_eq!(ProviderKind::Anthropic.default_base_url(), "https://api.anthropic.com");
    let mut config = ProviderConfig::new(ProviderKind::OpenAi, "p", "m");
    config.headers = vec![("bad header".into(), "v".into())];
    let error = build_model(config).err().unwrap().to_string();
    assert!(error.contains("header `bad header`"), "{error}");
}

#[tokio::test]
async fn a_whole_answer_is_an_error_only_when_it_carries_the_vendors_error_object() {
    // OpenAI: a non-null `error` is the vendor's error; `"error": null` is an ordinary answer.
    let with_null = OPENAI_OK.replacen('{', r#"{"error":null,"#, 1);
    let (addr, _) = recording_server(200, vec![], with_null).await;
    let model = build_model(config(ProviderKind::OpenAi, format!("http://{addr}/v1"), "k")).unwrap();
    assert_eq!(model.complete(hello()).await.unwrap().message.text(), "hi");
    let error_object = r#"{"error":{"message":"overloaded, try later","type":"server_error"}}"#;
    let (addr, _) = recording_server(200, vec![], error_object.into()).await;
    let model = build_model(config(ProviderKind::OpenAi, format!("http://{addr}/v1"), "k")).unwrap();
    assert_eq!(model.complete(hello()).await.unwrap_err().kind(), ErrorKind::Server);
    // Anthropic: `"type": "error"` is the vendor's error.
    let error_object = r#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#;
    let (addr, _) = recording_server(200, vec![], error_object.into()).await;
    let model = build_model(config(ProviderKind::Anthropic, format!("http://{addr}"), "k")).unwrap();
    assert_eq!(model.complete(hello()).await.unwrap_err().kind(), ErrorKind::Overloaded);
    // The key spelled with escapes is still the key; an answer whose text says "error" is still an answer.
    let escaped = r#"{"\u0065rror":{"message":"overloaded","type":"server_error"}}"#;
    let (addr, _) = recording_server(200, vec![], escaped.into()).await;
    let model = build_model(config(ProviderKind::OpenAi, format!("http://{addr}/v1"), "k")).unwrap();
    assert_eq!(model.complete(hello()).await.unwrap_err().kind(), ErrorKind::Server);
    let escaped = r#"{"type":"\u0065rror","error":{"type":"overloaded_error","message":"busy"}}"#;
    let (addr, _) = recording_server(200, vec![], escaped.into()).await;
    let model = build_model(config(ProviderKind::Anthropic, format!("http://{addr}"), "k")).unwrap();
    assert_eq!(model.complete(hello()).await.unwrap_err().kind(), ErrorKind::Overloaded);
    let says_error = OPENAI_OK.replace("\"hi\"", "\"\\\"error\\\": none\"");
    assert_ne!(says_error, OPENAI_OK, "the fixture's text is \"hi\"");
    let (addr, _) = recording_server(200, vec![], says_error).await;
    let model = build_model(config(ProviderKind::OpenAi, format!("http://{addr}/v1"), "k")).unwrap();
    assert_eq!(model.complete(hello()).await.unwrap().message.text(), "\"error\": none");
    // Neither: a body that is not the answer's JSON is an invalid response.
    for (kind, base) in [(ProviderKind::OpenAi, "/v1"), (ProviderKind::Anthropic, "")] {
        let (addr, _) = recording_server(200, vec![], r#"{"choices": 3}"#.into()).await;
        let model = build_model(config(kind, format!("http://{addr}{base}"), "k")).unwrap();
        assert_eq!(model.complete(hello()).await.unwrap_err().kind(), ErrorKind::InvalidResponse, "{kind}");
    }
}
