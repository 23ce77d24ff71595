//! The connection layer on real sockets: header, body and idle timeouts, early 413, the answer before the
//! body on a kept-alive connection, the chat endpoints answered without the router, and shutdown. The timeouts are short and configured; the tests only check
//! that a connection is closed (within a generous bound) and that the request was not served, never how fast.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// Long enough for anything the tests wait for; a connection still open after it is kept forever.
const GUARD: Duration = Duration::from_secs(10);

const CHAT: &str = "[routes.chat]\ntargets = [{ provider = \"oa\", model = \"gpt-ok\" }]";

fn server(extra: &str) -> String {
    format!("api_keys = [\"{CLIENT_KEY}\"]\n{extra}")
}

/// Reads until the peer closes the connection; `None` when it is still open after [`GUARD`].
async fn until_closed(tcp: &mut TcpStream) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(GUARD, async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    closed.ok().map(|()| String::from_utf8_lossy(&got).into_owned())
}

/// One whole response with a `content-length`: its head (lower-cased) and body.
async fn response(tcp: &mut TcpStream) -> (String, String) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
            let length: usize =
                head.lines().find_map(|l| l.strip_prefix("content-length:")).map_or(0, |v| v.trim().parse().unwrap());
            if got.len() >= end + 4 + length {
                let body = String::from_utf8_lossy(&got[end + 4..end + 4 + length]).into_owned();
                return (head, body);
            }
        }
        let n = tokio::time::timeout(GUARD, tcp.read(&mut buf)).await.expect("no answer").unwrap();
        assert!(n > 0, "closed before a whole response: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
}

fn chat_body() -> String {
    json!({ "model": "chat", "messages": [{ "role": "user", "content": "hi" }] }).to_string()
}

#[tokio::test]
async fn headers_sent_slowly_are_cut_at_the_header_timeout() {
    let h = start_with(&server("header_timeout = \"200ms\""), CHAT).await;
    let mut tcp = TcpStream::connect(h.gateway.addr).await.unwrap();
    tcp.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-a").await.unwrap();
    // A byte now and then does not keep the connection: the timeout covers the whole head.
    let trickle = async {
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if tcp.write_all(b"a").await.is_err() {
                return;
            }
        }
    };
    tokio::time::timeout(GUARD, trickle).await.unwrap();
    let rest = until_closed(&mut tcp).await.expect("the connection is closed at the header timeout");
    assert!(!rest.contains("200 OK"), "the request was not served: {rest}");
}

#[tokio::test]
async fn a_body_not_received_within_the_body_timeout_is_answered_408_and_not_served() {
    let h = start_with(&server("body_timeout = \"200ms\""), CHAT).await;
    let body = chat_body();
    for framing in ["content-length", "chunked"] {
        let mut tcp = TcpStream::connect(h.gateway.addr).await.unwrap();
        let head = match framing {
            "content-length" => format!(
                "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {CLIENT_KEY}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
                body.len(),
                &body[..10]
            ),
            _ => format!(
                "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {CLIENT_KEY}\r\n\
                 Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\na\r\n{}\r\n",
                &body[..10]
            ),
        };
        tcp.write_all(head.as_bytes()).await.unwrap();
        let answer = until_closed(&mut tcp).await.expect("the connection is closed at the body timeout");
        assert!(answer.starts_with("HTTP/1.1 408"), "{framing}: {answer}");
        assert!(answer.contains("server.body_timeout"), "{framing}: {answer}");
    }
    assert_eq!(h.upstream.calls("gpt-ok"), 0, "no request was served");
    let metrics = h.metrics().await;
    assert!(metrics.contains("switchyard_rejected_total{status=\"408\"} 2"), "{metrics}");
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_at_the_idle_timeout() {
    let h = start_with(&server("idle_timeout = \"300ms\"\nheader_timeout = \"30s\""), CHAT).await;
    let mut tcp = TcpStream::connect(h.gateway.addr).await.unwrap();
    tcp.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let (head, _) = response(&mut tcp).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("connection: close"), "kept alive: {head}");
    let rest = until_closed(&mut tcp).await.expect("the idle connection is closed at the idle timeout");
    assert_eq!(rest, "", "nothing is sent on an idle close");
}

#[tokio::test]
async fn a_declared_body_over_max_body_is_refused_413_before_it_is_read() {
    let h = start_with(&server("max_body = \"1MiB\""), CHAT).await;
    let mut tcp = TcpStream::connect(h.gateway.addr).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {CLIENT_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n{{\"model\":\"x\""
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let (head, body) = response(&mut tcp).await;
    assert!(head.starts_with("http/1.1 413"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    assert!(body.contains("server.max_body"), "{body}");

    // With `Expect: 100-continue` the client waits for our word before sending: it gets the 413, never a 100.
    let mut tcp = TcpStream::connect(h.gateway.addr).await.unwrap();
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {CLIENT_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 5000000\r\nExpect: 100-continue\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let (head, body) = response(&mut tcp).await;
    assert!(head.starts_with("http/1.1 413"), "{head}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["type"], "error", "in the Anthropic shape: {body}");
    assert_eq!(h.upstream.calls("gpt-ok"), 0);
}

#[tokio::test]
async fn an_answer_given_before_the_body_was_read_leaves_the_client_a_working_connection() {
    let h = start_with(&server(""), CHAT).await;
    let body = chat_body();
    let mut tcp = TcpStream::connect(h.gateway.addr).await.unwrap();
    // No key: refused with 401 before the body is read; half the body is still on its way.
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
        body.len(),
        &body[..body.len() / 2]
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let (head, _) = response(&mut tcp).await;
    assert!(head.starts_with("http/1.1 401"), "{head}");
    let second = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {CLIENT_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    // A client may reuse the connection unless the answer said `Connection: close`.
    if head.contains("connection: close") {
        tcp = TcpStream::connect(h.gateway.addr).await.unwrap();
    } else {
        tcp.write_all(&body.as_bytes()[body.len() / 2..]).await.unwrap();
    }
    tcp.write_all(second.as_bytes()).await.unwrap();
    let (head, answer) = response(&mut tcp).await;
    assert!(head.starts_with("http/1.1 200"), "{head}\n{answer}");
    assert!(!head.contains("connection: close"), "a request whose body was read keeps the connection: {head}");
}

#[tokio::test]
async fn shutdown_closes_half_sent_requests_at_once_and_ends_open_streams_with_an_error_event() {
    let routes = "[routes.stall]\ntargets = [{ provider = \"oa\", model = \"gpt-stall2\" }]\n\
                  [routes.stall-an]\ntargets = [{ provider = \"an\", model = \"claude-stall2\" }]";
    let h = start_draining(&server(""), routes, Duration::from_secs(2)).await;
    let mut streams = Vec::new();
    for (path, model) in [("/v1/chat/completions", "stall"), ("/v1/messages", "stall-an")] {
        let response = h
            .http
            .post(h.url(path))
            .bearer_auth(CLIENT_KEY)
            .json(&json!({ "model": model, "stream": true, "max_tokens": 50, "messages": [{ "role": "user", "content": "hi" }] }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let mut body = response.bytes_stream();
        let first = body.next().await.unwrap().unwrap();
        streams.push((path, String::from_utf8_lossy(&first).into_owned(), body));
    }
    let mut half_head = TcpStream::connect(h.gateway.addr).await.unwrap();
    half_head.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-a").await.unwrap();
    let mut half_body = TcpStream::connect(h.gateway.addr).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {CLIENT_KEY}\r\nContent-Length: 100\r\n\r\n{{"
    );
    half_body.write_all(head.as_bytes()).await.unwrap();
    eventually("both half-sent requests reached the gateway", || h.gateway.state.metrics.connections.open() == 4).await;

    let Harness { gateway, upstream, .. } = h;
    let stopped = tokio::spawn(gateway.shutdown());
    for tcp in [&mut half_head, &mut half_body] {
        let rest = until_closed(tcp).await.expect("a half-sent request is closed at once");
        assert_eq!(rest, "", "it is not answered");
    }
    assert!(!stopped.is_finished(), "the streams are still draining when the half-sent requests are closed");
    for (path, first, mut body) in streams {
        let mut text = first;
        while let Some(Ok(chunk)) = tokio::time::timeout(GUARD, body.next()).await.expect("the stream ends") {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(!text.contains("[DONE]") && !text.contains("message_stop"), "{path}: not a clean end: {text}");
        let last = text.trim_end().rsplit("\n\n").next().unwrap_or_default();
        if path == "/v1/messages" {
            assert!(last.starts_with("event: error\ndata: "), "{path}: {text}");
        } else {
            assert!(last.starts_with("data: {\"error\":"), "{path}: {text}");
        }
        assert!(last.contains("shutting down"), "{path}: {last}");
    }
    stopped.await.unwrap().unwrap();
    assert_eq!(upstream.calls("gpt-ok"), 0);
}

/// Every answer on `tcp` until the gateway closes it, as text.
async fn rest_of(tcp: &mut TcpStream) -> String {
    until_closed(tcp).await.expect("the gateway closes the connection")
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let h = start_with(&server(""), CHAT).await;
    let body = chat_body();
    let chat = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {CLIENT_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    // Three requests in one write, the last asking to close: three answers, in order, then the close.
    let three = format!(
        "{chat}GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut tcp = TcpStream::connect(h.gateway.addr).await.unwrap();
    tcp.write_all(three.as_bytes()).await.unwrap();
    let all = rest_of(&mut tcp).await;
    let heads: Vec<&str> = all.match_indices("HTTP/1.1 ").map(|(at, _)| &all[at..at + 12]).collect();
    assert_eq!(heads, ["HTTP/1.1 200", "HTTP/1.1 200", "HTTP/1.1 404"], "{all}");
    let (chat_at, health_at) = (all.find("chat.completion").unwrap(), all.find("\"status\"").unwrap());
    assert!(chat_at < health_at, "the chat answer comes first: {all}");
    assert!(all.trim_end().ends_with('}'), "nothing after the answer the client asked to end with: {all}");
    assert_eq!(h.upstream.calls("gpt-ok"), 1);
}

#[tokio::test]
async fn chunked_and_expect_continue_bodies_are_read_and_served() {
    let h = start_with(&server(""), CHAT).await;
    let body = chat_body();
    let (a, b) = body.split_at(body.len() / 2);
    let mut tcp = TcpStream::connect(h.gateway.addr).await.unwrap();
    let chunked = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {CLIENT_KEY}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x};ext=1\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    tcp.write_all(chunked.as_bytes()).await.unwrap();
    let (head, answer) = response(&mut tcp).await;
    assert!(head.starts_with("http/1.1 200"), "{head}\n{answer}");

    // The client waits for 100 Continue before it sends the body; the answer follows on the same connection.
    let expect = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {CLIENT_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    tcp.write_all(expect.as_bytes()).await.unwrap();
    let mut interim = [0u8; 25];
    tokio::time::timeout(GUARD, tcp.read_exact(&mut interim)).await.expect("100 Continue comes").unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    tcp.write_all(body.as_bytes()).await.unwrap();
    let (head, answer) = response(&mut tcp).await;
    assert!(head.starts_with("http/1.1 200") && head.contains("date: "), "{head}\n{answer}");
    assert_eq!(h.upstream.calls("gpt-ok"), 2);
}

#[tokio::test]
async fn bad_heads_are_answered_400_or_431_and_closed_and_old_clients_get_their_answer_then_the_close() {
    let h = start_with(&server(""), CHAT).await;
    let huge = format!("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(70 * 1024));
    // Each answer says what was wrong, in an API error body an SDK reads.
    let cases = [
        ("GET /health HTTP/1.1\r\nBad Header\r\n\r\n".to_owned(), "HTTP/1.1 400 ", "not valid HTTP/1.1"),
        (
            "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n".to_owned(),
            "HTTP/1.1 400 ",
            "send one Content-Length number",
        ),
        (
            "POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n".to_owned(),
            "HTTP/1.1 400 ",
            "a Transfer-Encoding that ends in chunked",
        ),
        (huge, "HTTP/1.1 431 ", "larger than 64 KiB or has more than 100 headers"),
    ];
    for (request, status, says) in cases {
        let mut tcp = TcpStream::connect(h.gateway.addr).await.unwrap();
        // The gateway may answer and close before reading all of a huge head: a failed write is fine.
        let _ = tcp.write_all(request.as_bytes()).await;
        let answer = rest_of(&mut tcp).await;
        assert!(answer.starts_with(status), "{status}: {answer}");
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.to_lowercase().contains("content-type: application/json"), "{head}");
        assert!(head.to_lowercase().contains(&format!("content-length: {}", body.len())), "{head}");
        let error: serde_json::Value = serde_json::from_str(body).unwrap();
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{status}: {message}");
        assert_eq!(error["error"]["type"], "invalid_request_error", "{body}");
    }
    let metrics = h.metrics().await;
    assert!(metrics.contains("switchyard_rejected_total{status=\"400\"} 3"), "{metrics}");
    assert!(metrics.contains("switchyard_rejected_total{status=\"431\"} 1"), "{metrics}");
    let mut tcp = TcpStream::connect(h.gateway.addr).await.unwrap();
    tcp.write_all(b"GET /health HTTP/1.0\r\n\r\n").await.unwrap();
    let answer = rest_of(&mut tcp).await;
    assert!(answer.starts_with("HTTP/1.1 200") && answer.to_lowercase().contains("connection: close"), "{answer}");
    let mut tcp = TcpStream::connect(h.gateway.addr).await.unwrap();
    tcp.write_all(b"HEAD /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let answer = rest_of(&mut tcp).await;
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("\r\n\r\n"), "a HEAD answer has no body: {answer}");
}

/// The connection answers the two chat endpoints without the router: on a socket, the edges of that choice
/// answer as the router does (another method 405 with `allow: POST`, a near-miss path 404, a query string
/// still the endpoint), and both endpoints serve.
#[tokio::test]
async fn the_chat_endpoints_answer_on_a_socket_as_the_router_routes_them() {
    let h = start_with(&server(""), CHAT).await;
    let body = chat_body();
    // A connection each: an answer given before the body was read closes its connection.
    let ask = async |method: &str, path: &str, body: &str| {
        let mut tcp = TcpStream::connect(h.gateway.addr).await.unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {CLIENT_KEY}\r\nx-api-key: {CLIENT_KEY}\r\n\
             anthropic-version: 2023-06-01\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        response(&mut tcp).await
    };
    let (head, _) = ask("GET", "/v1/chat/completions", "").await;
    assert!(head.starts_with("http/1.1 405") && head.contains("\r\nallow: post"), "{head}");
    let (head, _) = ask("PUT", "/v1/messages", "").await;
    assert!(head.starts_with("http/1.1 405"), "{head}");
    for near in ["/v1/chat/completions/", "/v1/chat/Completions", "/v1/messages/x"] {
        let (head, _) = ask("POST", near, &body).await;
        assert!(head.starts_with("http/1.1 404"), "{near}: {head}");
    }
    let (head, answer) = ask("POST", "/v1/chat/completions?trace=1", &body).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(answer.contains("chat.completion"), "{answer}");
    let anthropic = json!({ "model": "chat", "max_tokens": 16, "messages": [{ "role": "user", "content": "hi" }] });
    let (head, answer) = ask("POST", "/v1/messages", &anthropic.to_string()).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(answer.contains("\"type\":\"message\""), "{answer}");
    assert_eq!(h.upstream.calls("gpt-ok"), 2);
}
