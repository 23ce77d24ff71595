//! The transport's connection pool, seen from a raw upstream on 127.0.0.1 that counts the connections it
//! accepts: sequential requests share one kept-alive connection, concurrent ones get one connection each, a
//! connection the server closed while idle does not fail the next request, a body dropped unread does not
//! leave its connection to the next request, chunked bodies keep their connection, bodies that end with their
//! connection and answers that say `Connection: close` do not, and idle connections are closed after 90
//! seconds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use switchyard_providers::PlainClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Barrier;

/// What the test upstream does with each connection.
#[derive(Clone)]
enum Mode {
    /// Answers every request with `ok`, keeping the connection open.
    KeepAlive,
    /// Answers with `ok` (no `Connection: close`), then closes the connection: what a server ending an idle
    /// keep-alive connection at the wrong moment looks like.
    CloseAfterEach,
    /// Waits until this many requests are in, over all connections, before answering each.
    Together(Arc<Barrier>),
    /// Announces a large body, sends a little of it and stops.
    Unfinished,
    /// Answers `ok` in chunks written apart, with a trailer, keeping the connection open.
    Chunked,
    /// Answers `ok` without a length and closes the connection to end the body.
    UntilClose,
    /// Answers `ok` with `Connection: close` but leaves the closing to the client.
    SaysClose,
}

/// A raw HTTP/1.1 upstream; counts accepted connections and connections the client closed.
struct Upstream {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    hung_up: Arc<AtomicUsize>,
}

impl Upstream {
    async fn start(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let hung_up = Arc::new(AtomicUsize::new(0));
        let (counter, hangups) = (accepted.clone(), hung_up.clone());
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(socket, mode.clone(), hangups.clone()));
            }
        });
        Self { addr, accepted, hung_up }
    }

    fn url(&self) -> String {
        format!("http://{}/v1/ping", self.addr)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Serves one connection's requests (bodiless GETs) as `mode` says.
async fn serve(mut socket: TcpStream, mode: Mode, hung_up: Arc<AtomicUsize>) {
    let mut buf = [0u8; 4096];
    loop {
        let mut head = Vec::new();
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    hung_up.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        if let Mode::Together(barrier) = &mode {
            barrier.wait().await;
        }
        let answer: &[u8] = match mode {
            Mode::Unfinished => b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\nstart of a long body",
            Mode::Chunked => b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\no\r\n",
            Mode::UntilClose => b"HTTP/1.1 200 OK\r\n\r\nok",
            Mode::SaysClose => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
            _ => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        };
        if socket.write_all(answer).await.is_err() {
            return;
        }
        match mode {
            Mode::CloseAfterEach | Mode::UntilClose => return,
            Mode::Chunked => {
                // The rest a moment later, so the client reads the body across several reads.
                tokio::time::sleep(Duration::from_millis(5)).await;
                if socket.write_all(b"1\r\nk\r\n0\r\nx-trailer: 1\r\n\r\n").await.is_err() {
                    return;
                }
            }
            // Holds the connection open (the body unfinished, or the close left to the client) until the
            // client hangs up.
            Mode::Unfinished | Mode::SaysClose => {
                while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
                hung_up.fetch_add(1, Ordering::SeqCst);
                return;
            }
            _ => {}
        }
    }
}

/// One GET through `client`, its body read whole.
async fn get(client: &PlainClient, url: &str) -> String {
    let request = http::Request::get(url).body(Bytes::new()).unwrap();
    let response = client.send(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

/// `n` GETs one after the other to an upstream in `mode`, each answered `ok`; the upstream, for its counts.
async fn one_after_another(mode: Mode, n: usize) -> Upstream {
    let upstream = Upstream::start(mode).await;
    let client = PlainClient::new(&upstream.url()).unwrap();
    for _ in 0..n {
        assert_eq!(get(&client, &upstream.url()).await, "ok");
    }
    upstream
}

/// Waits (at most 10 s) until the client has closed `n` connections.
async fn wait_for_hang_ups(upstream: &Upstream, n: usize, what: &str) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while upstream.hung_up.load(Ordering::SeqCst) < n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}"));
}

#[tokio::test]
async fn sequential_requests_share_one_connection() {
    let upstream = one_after_another(Mode::KeepAlive, 5).await;
    assert_eq!(upstream.accepted(), 1, "each request should reuse the first connection");
}

#[tokio::test]
async fn concurrent_requests_get_a_connection_each_and_keep_them() {
    const N: usize = 8;
    let upstream = Upstream::start(Mode::Together(Arc::new(Barrier::new(N)))).await;
    let url = upstream.url();
    let client = PlainClient::new(&url).unwrap();
    for round in 0..2 {
        // The upstream answers none until all N are in: they must be in flight at once, on N connections.
        let all = futures::future::join_all((0..N).map(|_| get(&client, &url)));
        let answers = tokio::time::timeout(Duration::from_secs(10), all).await.expect("requests were serialized");
        assert!(answers.iter().all(|a| a == "ok"));
        assert_eq!(upstream.accepted(), N, "round {round}: one connection per request in flight, then reused");
    }
}

#[tokio::test]
async fn a_connection_the_server_closed_does_not_fail_the_next_request() {
    // Each request goes out as soon as the previous body ends, before the client has seen the close.
    let upstream = one_after_another(Mode::CloseAfterEach, 10).await;
    assert_eq!(upstream.accepted(), 10);
}

#[tokio::test]
async fn a_body_dropped_unread_does_not_leave_its_connection_to_the_next_request() {
    let upstream = Upstream::start(Mode::Unfinished).await;
    let client = PlainClient::new(&upstream.url()).unwrap();
    for i in 1..=3 {
        let request = http::Request::get(upstream.url()).body(Bytes::new()).unwrap();
        let response = client.send(request).await.unwrap();
        assert_eq!(response.status(), 200);
        drop(response);
        assert_eq!(upstream.accepted(), i, "a connection with an unread body was used again");
    }
    // And the client closed them.
    wait_for_hang_ups(&upstream, 3, "the connections with unread bodies were not closed").await;
}

#[tokio::test]
async fn chunked_bodies_are_read_whole_and_their_connection_kept() {
    let upstream = one_after_another(Mode::Chunked, 3).await;
    assert_eq!(upstream.accepted(), 1, "a chunked body read to its end leaves its connection reusable");
}

#[tokio::test]
async fn a_body_without_a_length_ends_with_its_connection_which_is_not_reused() {
    let upstream = Upstream::start(Mode::UntilClose).await;
    let client = PlainClient::new(&upstream.url()).unwrap();
    for i in 1..=3 {
        assert_eq!(get(&client, &upstream.url()).await, "ok");
        assert_eq!(upstream.accepted(), i);
    }
}

#[tokio::test]
async fn a_connection_the_answer_says_to_close_is_closed_not_reused() {
    let upstream = Upstream::start(Mode::SaysClose).await;
    let client = PlainClient::new(&upstream.url()).unwrap();
    for i in 1..=3 {
        assert_eq!(get(&client, &upstream.url()).await, "ok");
        assert_eq!(upstream.accepted(), i, "a connection the server said to close was used again");
    }
    wait_for_hang_ups(&upstream, 3, "the client did not close the connections the server said to close").await;
}

#[tokio::test(start_paused = true)]
async fn idle_connections_are_closed_after_90_seconds() {
    let upstream = Upstream::start(Mode::KeepAlive).await;
    let client = PlainClient::new(&upstream.url()).unwrap();
    assert_eq!(get(&client, &upstream.url()).await, "ok");
    tokio::time::sleep(Duration::from_secs(89)).await;
    assert_eq!(get(&client, &upstream.url()).await, "ok");
    assert_eq!(upstream.accepted(), 1, "idle for 89 s: still kept");
    tokio::time::sleep(Duration::from_secs(100)).await;
    // The client closed the idle connection, so the upstream saw it go, and the next request needs a new one.
    assert_eq!(upstream.hung_up.load(Ordering::SeqCst), 1, "the idle connection is still open after 100 s");
    assert_eq!(get(&client, &upstream.url()).await, "ok");
    assert_eq!(upstream.accepted(), 2);
}
