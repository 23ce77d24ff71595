//! An https target through the proxy the environment names, end to end: `CONNECT` to an `http://` proxy, or to
//! an `https://` proxy over TLS, then TLS to the target, whose certificate the test CA vouches for
//! (`SSL_CERT_FILE`, switchyard-sim's `tls/`). The target is the simulated upstream behind a TLS front on
//! 127.0.0.1; the proxy is a listener of this test that records each `CONNECT` line and splices the tunnel. The
//! calls run in child processes of this test binary (the variables are read when a provider is built).

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use switchyard::ChatModel;
use switchyard_providers::{ApiKey, ProviderConfig, ProviderKind, build_model};
use switchyard_sim::{DEFAULT_API_KEY, tls_file};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, copy_bidirectional};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use common::child::run_child;
use common::tls::{TlsFront, acceptor};
use common::{KINDS, drain, hello, text_of};

/// The variable that tells a child where the target is.
const TARGET: &str = "SWITCHYARD_TEST_TARGET";

/// A proxy's client side: plain TCP or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A `CONNECT` proxy on 127.0.0.1 (over TLS when `tls` is given). It records each request line with whether a
/// `Proxy-Authorization` came with it, answers 200 and splices the tunnel to the named port on 127.0.0.1.
async fn connect_proxy(tls: Option<TlsAcceptor>) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (tls, record) = (tls.clone(), record.clone());
            tokio::spawn(async move {
                let mut client: Box<dyn Io> = match tls {
                    Some(acceptor) => match acceptor.accept(tcp).await {
                        Ok(stream) => Box::new(stream),
                        Err(_) => return,
                    },
                    None => Box::new(tcp),
                };
                // The client waits for the answer before it sends anything more, so the head is all there is.
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    let mut byte = [0u8; 1];
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let line = head.lines().next().unwrap_or_default().to_owned();
                let authorized =
                    head.lines().any(|l| l.to_ascii_lowercase().starts_with("proxy-authorization: basic "));
                record.lock().unwrap().push(format!("{line} authorized={authorized}"));
                let port = line.split_whitespace().nth(1).and_then(|t| t.rsplit(':').next()).unwrap();
                let mut target = TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).await.unwrap();
                client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n").await.unwrap();
                let _ = copy_bidirectional(&mut client, &mut target).await;
            });
        }
    });
    (addr, seen)
}

/// Runs the child's calls against the simulated upstream behind TLS, through a proxy of `scheme` (over TLS when
/// `proxy_tls` is given); each call reaches the upstream, and every tunnel was asked for with the credentials.
async fn calls_through_a_proxy(scheme: &str, proxy_tls: Option<TlsAcceptor>) {
    let upstream = common::upstream().await;
    let plain: SocketAddr = upstream.url().trim_start_matches("http://").parse().unwrap();
    let front = TlsFront::start(plain, &[b"http/1.1"]).await;
    let (proxy, seen) = connect_proxy(proxy_tls).await;
    let env = vec![
        ("HTTPS_PROXY", format!("{scheme}://user:pass@localhost:{}", proxy.port())),
        ("SSL_CERT_FILE", tls_file("ca.pem").to_str().unwrap().to_owned()),
        (TARGET, format!("localhost:{}", front.addr.port())),
    ];
    run_child("child_calls_the_tls_target", env).await;
    for kind in KINDS {
        assert_eq!(upstream.calls(&format!("tls-{kind}-ok")), 2, "{kind}: one whole and one streamed call");
    }
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.is_empty(), "the proxy saw no CONNECT");
    let expected = format!("CONNECT localhost:{} HTTP/1.1 authorized=true", front.addr.port());
    assert!(seen.iter().all(|line| *line == expected), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_target_answers_through_the_tunnel_of_an_http_proxy() {
    calls_through_a_proxy("http", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_proxy_carries_the_tunnel_over_tls_of_its_own() {
    calls_through_a_proxy("https", Some(acceptor(&[b"http/1.1"]))).await;
}

#[tokio::test]
#[ignore = "a child of the tests above, which set its environment"]
async fn child_calls_the_tls_target() {
    let target = std::env::var(TARGET).unwrap();
    for kind in KINDS {
        let mut config = ProviderConfig::new(kind, "tls", format!("tls-{kind}-ok"));
        config.base_url = match kind {
            ProviderKind::OpenAi => format!("https://{target}/v1"),
            ProviderKind::Anthropic => format!("https://{target}"),
        };
        config.api_key = Some(ApiKey::new(DEFAULT_API_KEY));
        let model = build_model(config).unwrap();
        let answer = model.complete(hello()).await.unwrap();
        assert!(!answer.message.text().is_empty(), "{kind}");
        let (chunks, error) = drain(&*model, hello()).await;
        assert!(error.is_none(), "{kind}: {error:?}");
        assert!(!text_of(&chunks).is_empty(), "{kind}");
    }
}
