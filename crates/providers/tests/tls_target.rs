//! An https target: the provider trusts the certificate the test CA signed (`SSL_CERT_FILE`) and talks HTTP/1.1
//! even to a server that offers HTTP/2, with a connection of its own per request in flight, so concurrent long
//! streams never queue behind an HTTP/2 stream limit. The target is the simulated upstream behind a TLS front on
//! 127.0.0.1; the calls run in a child process of this test binary (the variable is read when the provider is
//! built).

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use futures::future::join_all;
use switchyard::ChatModel;
use switchyard_providers::{ApiKey, ProviderConfig, ProviderKind, build_model};
use switchyard_sim::{DEFAULT_API_KEY, tls_file};

use common::child::run_child;
use common::hello;
use common::tls::TlsFront;

/// The variable that tells the child where the target is.
const TARGET: &str = "SWITCHYARD_TEST_TARGET";

/// Streams open at once: more than the stream limit many HTTP/2 servers set per connection would be needed to
/// queue them there; what is checked is that each has its own HTTP/1.1 connection.
const STREAMS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_streams_to_an_https_target_each_get_an_http_1_1_connection_of_their_own() {
    let upstream = common::upstream().await;
    let plain: SocketAddr = upstream.url().trim_start_matches("http://").parse().unwrap();
    let front = TlsFront::start(plain, &[b"h2", b"http/1.1"]).await;
    let env = vec![
        ("SSL_CERT_FILE", tls_file("ca.pem").to_str().unwrap().to_owned()),
        (TARGET, format!("localhost:{}", front.addr.port())),
    ];
    run_child("child_holds_streams_open_at_once", env).await;
    // One TLS connection per stream; none agreed on HTTP/2 (the client offers no ALPN: HTTP/1.1).
    let negotiated = front.negotiated.lock().unwrap().clone();
    assert_eq!(negotiated.len(), STREAMS, "{negotiated:?}");
    assert!(negotiated.iter().all(|p| p != "h2"), "{negotiated:?}");
    assert_eq!(upstream.calls("tls-stall1"), STREAMS as u64);
}

#[tokio::test]
#[ignore = "a child of concurrent_streams_to_an_https_target_each_get_an_http_1_1_connection_of_their_own"]
async fn child_holds_streams_open_at_once() {
    let target = std::env::var(TARGET).unwrap();
    let mut config = ProviderConfig::new(ProviderKind::OpenAi, "tls", "tls-stall1");
    config.base_url = format!("https://{target}/v1");
    config.api_key = Some(ApiKey::new(DEFAULT_API_KEY));
    let model = build_model(config).unwrap();
    // Each stream sends one chunk and then stays open: every first chunk arrives only if no stream waits for
    // another to end. The bound only keeps a failure from hanging the run.
    let opened = join_all((0..STREAMS).map(|_| async {
        let mut stream = model.stream(hello()).await.unwrap();
        let first = stream.next().await.unwrap().unwrap();
        (stream, first)
    }));
    let streams = tokio::time::timeout(Duration::from_secs(30), opened).await.expect("a stream waited for another");
    assert_eq!(streams.len(), STREAMS);
}
