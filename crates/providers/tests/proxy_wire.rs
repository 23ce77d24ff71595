//! What goes to a proxy from the environment: https targets through `CONNECT` with the proxy URL's
//! credentials as `Proxy-Authorization`, http targets in absolute-form with the same header, the connect
//! timeout bounding the tunnel too, and the credentials in no error message. A raw listener plays the proxy
//! and records what it receives; each case's calls run in a child process of this test binary with its own
//! environment (the variables are read when a provider is built).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use switchyard::{Error, ErrorKind, TimeoutPhase};
use switchyard_providers::{ApiKey, ProviderConfig, ProviderKind, Timeouts, build_model};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use common::child::run_child;
use common::hello;

/// The proxy's password: no error message may show it.
const PASSWORD: &str = "s3cret";

/// `Basic base64("user:s3cret")`.
const BASIC: &str = "Basic dXNlcjpzM2NyZXQ=";

/// A proxy on 127.0.0.1 that records the head of the first request on its first connection, then answers
/// `reply` (or nothing, holding the connection open, when `reply` is empty). Returns its URL with credentials.
async fn recording_proxy(reply: &'static str) -> (String, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://user:{PASSWORD}@{}", listener.local_addr().unwrap());
    let head = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut received = Vec::new();
        let mut buf = [0u8; 4096];
        while !received.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the client closed before sending a whole head");
            received.extend_from_slice(&buf[..n]);
        }
        if reply.is_empty() {
            // Hold the connection until the client gives up.
            let _ = stream.read(&mut buf).await;
        } else {
            stream.write_all(reply.as_bytes()).await.unwrap();
        }
        String::from_utf8_lossy(&received).into_owned()
    });
    (url, head)
}

fn model(base_url: &str, connect: Option<Duration>) -> switchyard::SharedModel {
    let mut config = ProviderConfig::new(ProviderKind::OpenAi, "proxied", "gpt-ok");
    config.base_url = base_url.to_owned();
    config.api_key = Some(ApiKey::new("sk-test"));
    config.timeouts = Timeouts { connect, ..Timeouts::default() };
    build_model(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_target_is_reached_through_connect_with_the_proxy_credentials() {
    let (url, head) = recording_proxy("HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n").await;
    run_child("child_calls_an_https_target", vec![("HTTPS_PROXY", url)]).await;
    let head = head.await.unwrap();
    assert!(head.starts_with("CONNECT api.example.test:443 HTTP/1.1\r\n"), "{head}");
    assert!(head.to_lowercase().contains(&format!("proxy-authorization: {}", BASIC.to_lowercase())), "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_target_is_sent_to_the_proxy_in_absolute_form_with_the_proxy_credentials() {
    let (url, head) = recording_proxy("HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n").await;
    run_child("child_calls_an_http_target", vec![("http_proxy", url)]).await;
    let head = head.await.unwrap();
    assert!(head.starts_with("POST http://api.example.test/v1/chat/completions HTTP/1.1\r\n"), "{head}");
    assert!(head.to_lowercase().contains(&format!("proxy-authorization: {}", BASIC.to_lowercase())), "{head}");
    // The target's own credentials in the base URL are never sent, in the request line or elsewhere.
    assert!(!head.contains("target-pw"), "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_never_answers_connect_is_a_connect_timeout() {
    let (url, head) = recording_proxy("").await;
    run_child("child_times_out_in_the_tunnel", vec![("ALL_PROXY", url)]).await;
    assert!(head.await.unwrap().starts_with("CONNECT "));
}

#[tokio::test]
#[ignore = "a child of an_https_target_is_reached_through_connect_with_the_proxy_credentials"]
async fn child_calls_an_https_target() {
    let error = model("https://api.example.test/v1", None).complete(hello()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connection, "{error}");
    let message = error.to_string();
    assert!(message.contains("proxy authorization required"), "{message}");
    assert!(!message.contains(PASSWORD) && !message.contains("user:"), "{message}");
}

#[tokio::test]
#[ignore = "a child of an_http_target_is_sent_to_the_proxy_in_absolute_form_with_the_proxy_credentials"]
async fn child_calls_an_http_target() {
    let error = model("http://me:target-pw@api.example.test/v1", None).complete(hello()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Server, "the proxy's 502 is the answer: {error}");
    assert!(!error.to_string().contains(PASSWORD), "{error}");
}

#[tokio::test]
#[ignore = "a child of a_proxy_that_never_answers_connect_is_a_connect_timeout"]
async fn child_times_out_in_the_tunnel() {
    // Real time, not paused: the proxy is in another process, and a paused clock would jump past the limit
    // while the loopback connect is still in flight, before the tunnel this test is about.
    let connect = Duration::from_millis(300);
    let model = model("https://api.example.test/v1", Some(connect));
    let error = tokio::time::timeout(Duration::from_secs(10), model.complete(hello()))
        .await
        .expect("no connect timeout")
        .unwrap_err();
    match error {
        Error::Timeout { phase, after } => assert_eq!((phase, after), (TimeoutPhase::Connect, connect)),
        other => panic!("expected a connect timeout, got {other}"),
    }
}
