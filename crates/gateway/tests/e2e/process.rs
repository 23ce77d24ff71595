//! The `switchyard serve` process: signals, and the open-file limit (set low for the child with the shell's
//! `ulimit`, so the test's own process keeps its limit).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Long enough for anything the tests wait for.
const GUARD: Duration = Duration::from_secs(10);

// Storage off: its database files would take descriptors from the tiny open-file limits these tests set.
const CONFIG: &str = "[server]\nlisten = \"127.0.0.1:0\"\n{extra}\n[providers.p]\nkind = \"openai\"\n\
                      base_url = \"http://127.0.0.1:9/v1\"\n[routes.r]\ntargets = [{ provider = \"p\", model = \"m\" }]\n\
                      [storage]\nenabled = false\n";

/// A `switchyard serve` child and its log.
struct Gateway {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
    config: std::path::PathBuf,
}

impl Gateway {
    /// Starts `switchyard serve` with `[server]` lines `extra`, under the shell commands `limits` (e.g. `ulimit`).
    async fn start(name: &str, extra: &str, limits: &str) -> Gateway {
        let config = std::env::temp_dir().join(format!("switchyard-test-{}-{name}.toml", std::process::id()));
        std::fs::write(&config, CONFIG.replace("{extra}", extra)).unwrap();
        let script = format!("{limits} exec \"$0\" serve --config \"$1\"");
        let mut child = Command::new("sh")
            .args(["-c", &script, env!("CARGO_BIN_EXE_switchyard"), config.to_str().unwrap()])
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = crate::common::stderr_log(&mut child);
        let mut gateway = Gateway { child, addr: "127.0.0.1:0".parse().unwrap(), log, config };
        let address = gateway.wait_for_log("listening on http://").await;
        let address = address.split("listening on http://").nth(1).unwrap().split_whitespace().next().unwrap();
        gateway.addr = address.parse().unwrap();
        gateway
    }

    /// Waits until a log line contains `text`; returns that line.
    async fn wait_for_log(&mut self, text: &str) -> String {
        for _ in 0..(GUARD.as_millis() / 20) {
            if let Some(line) = self.log.lock().unwrap().lines().find(|l| l.contains(text)) {
                return line.to_owned();
            }
            assert!(self.child.try_wait().unwrap().is_none(), "the gateway exited:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no log line with {text:?}:\n{}", self.log());
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill").args([&format!("-{name}"), &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Sends `request` on a new connection; the status line and whole answer, or `None` when the connection
    /// was closed (or reset) without an answer.
    async fn call(&self, request: &str) -> Option<String> {
        let mut tcp = TcpStream::connect(self.addr).await.unwrap();
        call_on(&mut tcp, request).await
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

/// Sends `request` on `tcp` and reads one answer (up to the end of its head and `content-length` body).
async fn call_on(tcp: &mut TcpStream, request: &str) -> Option<String> {
    if tcp.write_all(request.as_bytes()).await.is_err() {
        return None;
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| l.to_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return Some(text);
            }
        }
        match tokio::time::timeout(GUARD, tcp.read(&mut buf)).await.expect("no answer and not closed") {
            Ok(0) | Err(_) => return (!got.is_empty()).then_some(text),
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

const HEALTH: &str = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
const METRICS: &str = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn sighup_reloads_the_config_and_the_process_keeps_serving() {
    let mut gateway = Gateway::start("sighup", "", "").await;
    gateway.signal("HUP");
    gateway.wait_for_log("config reloaded").await;
    let answer = gateway.call(HEALTH).await.expect("still serving");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    gateway.signal("TERM");
    let status = tokio::task::spawn_blocking(move || {
        let status = gateway.child.wait().unwrap();
        (status, gateway.log())
    })
    .await
    .unwrap();
    assert!(status.0.success(), "SIGTERM stops it cleanly: {:?}\n{}", status.0, status.1);
}

#[tokio::test]
async fn the_connection_cap_is_80_percent_of_the_raised_fd_limit_and_refuses_the_rest() {
    // Soft limit 32, hard 64: the gateway raises the soft limit to 64, so it keeps 51 connections (80%).
    let gateway = Gateway::start("cap", "", "ulimit -S -n 32 && ulimit -H -n 64 &&").await;
    let mut kept = Vec::new();
    let mut refused = 0;
    for _ in 0..56 {
        let mut tcp = TcpStream::connect(gateway.addr).await.unwrap();
        match call_on(&mut tcp, HEALTH).await {
            Some(answer) if answer.starts_with("HTTP/1.1 200") => kept.push(tcp),
            answer => {
                assert!(answer.as_deref().is_none_or(|a| a.starts_with("HTTP/1.1 503")), "{answer:?}");
                refused += 1;
            }
        }
    }
    assert_eq!((kept.len(), refused), (51, 5), "{}", gateway.log());
    assert!(gateway.log().contains("(server.max_connections)"), "{}", gateway.log());
    // A closed connection frees its place.
    drop(kept.pop());
    let mut metrics = None;
    for _ in 0..(GUARD.as_millis() / 20) {
        match gateway.call(METRICS).await {
            Some(answer) if answer.starts_with("HTTP/1.1 200") => {
                metrics = Some(answer);
                break;
            }
            _ => refused += 1,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = metrics.expect("a place frees up when a connection closes");
    assert_eq!(metric(&metrics, "switchyard_connections_rejected_total"), refused);
    assert_eq!(metric(&metrics, "switchyard_open_connections"), 51);
}

#[tokio::test]
async fn running_out_of_file_descriptors_is_logged_once_a_second_counted_and_survived() {
    // The cap is set above what the fd limit allows, so accepts fail with "too many open files".
    let mut gateway = Gateway::start("emfile", "max_connections = 1000", "ulimit -n 40 &&").await;
    let mut open = Vec::new();
    for _ in 0..45 {
        open.push(TcpStream::connect(gateway.addr).await.unwrap());
    }
    let started = std::time::Instant::now();
    gateway.wait_for_log("cannot accept connections").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let reports = gateway.log().matches("cannot accept connections").count();
    let seconds = started.elapsed().as_secs() + 2;
    assert!(reports as u64 <= seconds, "{reports} reports in about {seconds} s:\n{}", gateway.log());
    drop(open);
    let mut metrics = None;
    for _ in 0..(GUARD.as_millis() / 20) {
        if let Some(answer) = gateway.call(METRICS).await.filter(|a| a.starts_with("HTTP/1.1 200")) {
            metrics = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = metrics.expect("serving again once connections close");
    assert!(metric(&metrics, "switchyard_accept_errors_total") > 0, "{metrics}");
}
