//! The upstream HTTP/1.1 exchange against a raw server on 127.0.0.1 that writes scripted bytes: heads and
//! bodies that arrive a byte at a time or far larger than the first read, a body cut short, a head without end,
//! and a request body sent whole.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use switchyard_providers::PlainClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// A server that answers the first request on each connection with `answer`, written in pieces of `piece`
/// bytes, then holds the connection until the client hangs up. The request it read goes to `seen`.
async fn scripted(answer: Vec<u8>, piece: usize) -> (SocketAddr, oneshot::Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, seen_rx) = oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let request = read_request(&mut socket).await;
        let _ = seen_tx.send(request);
        for part in answer.chunks(piece) {
            if socket.write_all(part).await.is_err() {
                return;
            }
            if piece < answer.len() {
                tokio::task::yield_now().await;
            }
        }
        let mut sink = [0u8; 1024];
        while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
    });
    (addr, seen_rx)
}

/// One request's head and its `content-length` bytes of body.
async fn read_request(socket: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |n| n.trim().parse::<usize>().unwrap());
            if got.len() >= end + 4 + length {
                return got;
            }
        }
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// A POST of `body` to the scripted server; the status and the whole body, or the error's text.
async fn post(addr: SocketAddr, body: &'static [u8]) -> Result<(u16, Vec<u8>), String> {
    let client = PlainClient::new(&format!("http://{addr}/v1")).unwrap();
    let request = http::Request::post(format!("http://{addr}/v1/chat")).body(Bytes::from_static(body)).unwrap();
    let exchange = async {
        let response = client.send(request).await.map_err(|e| error_text(&e))?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(|e| error_text(&*e))?.to_bytes();
        Ok((status, body.to_vec()))
    };
    tokio::time::timeout(Duration::from_secs(10), exchange).await.expect("the exchange hung")
}

/// An error and its causes, as the providers' messages show them.
fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn a_head_and_body_arriving_a_byte_at_a_time_read_whole() {
    let answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-request-id: 7\r\ncontent-length: 11\r\n\r\n{\"ok\":true}";
    let (addr, _) = scripted(answer.to_vec(), 1).await;
    assert_eq!(post(addr, b"{}").await.unwrap(), (200, b"{\"ok\":true}".to_vec()));
}

#[tokio::test]
async fn bodies_far_larger_than_the_first_read_arrive_intact() {
    // 1 MB by length, and 1 MB in 4 KB chunks: the read buffer grows past its start and its limit.
    let big: Vec<u8> = (0..1_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut by_length = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", big.len()).into_bytes();
    by_length.extend_from_slice(&big);
    let (addr, _) = scripted(by_length, 64 * 1024).await;
    assert_eq!(post(addr, b"{}").await.unwrap(), (200, big.clone()));

    let mut chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for piece in big.chunks(4096) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (addr, _) = scripted(chunked, 10_000).await;
    assert_eq!(post(addr, b"{}").await.unwrap(), (200, big));
}

#[tokio::test]
async fn a_body_cut_short_is_an_error_not_a_short_answer() {
    let (addr, _) = scripted(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial".to_vec(), 1024).await;
    // The server holds the connection; the client gives up only when it ends, so end it from here.
    let client = PlainClient::new(&format!("http://{addr}/v1")).unwrap();
    let request = http::Request::post(format!("http://{addr}/v1/chat")).body(Bytes::from_static(b"{}")).unwrap();
    let response = client.send(request).await.unwrap();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"partial");
    drop(body);

    // A server that closes mid-body.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        read_request(&mut socket).await;
        socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial").await.unwrap();
    });
    let error = post(addr, b"{}").await.expect_err("a body 93 bytes short was taken as whole");
    assert!(error.contains("closed before the body ended"), "{error}");
}

#[tokio::test]
async fn a_head_without_end_is_refused_once_it_passes_the_limit() {
    // One header line that does not end (a hundred short ones would be refused sooner, as too many).
    let mut endless = b"HTTP/1.1 200 OK\r\nx-filler: ".to_vec();
    endless.resize(70 * 1024, b'a');
    let (addr, _) = scripted(endless, 8192).await;
    let error = post(addr, b"{}").await.expect_err("an endless head was accepted");
    assert!(error.contains("larger than"), "{error}");
}

#[tokio::test]
async fn the_request_goes_out_with_its_length_host_and_body() {
    let (addr, seen) = scripted(b"HTTP/1.1 204 No Content\r\n\r\n".to_vec(), 1024).await;
    assert_eq!(post(addr, b"{\"model\":\"m\"}").await.unwrap(), (204, Vec::new()));
    let request = String::from_utf8(seen.await.unwrap()).unwrap();
    assert!(request.starts_with("POST /v1/chat HTTP/1.1\r\n"), "{request}");
    assert!(request.contains(&format!("host: {addr}\r\n")), "{request}");
    assert!(request.contains("content-length: 13\r\n"), "{request}");
    assert!(request.ends_with("\r\n\r\n{\"model\":\"m\"}"), "{request}");
}
