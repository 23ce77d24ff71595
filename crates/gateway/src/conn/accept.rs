//! The accept loop: one task per connection up to `server.max_connections`; over it a connection is answered
//! 503 and closed at once; a failed accept (such as running out of file descriptors) is counted, logged at
//! most once a second, and retried after a growing pause instead of at once.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::connection;
use super::registry::Registry;
use super::serve::Shared;

/// First pause after a failed accept; it doubles up to [`MAX_PAUSE`] while accepts keep failing.
const FIRST_PAUSE: Duration = Duration::from_millis(5);
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// Accepts connections until `shutdown` resolves.
pub(crate) async fn run(
    listener: &TcpListener,
    shared: &Arc<Shared>,
    max_connections: usize,
    registry: &Arc<Registry>,
    tasks: &mut JoinSet<()>,
    mut shutdown: Pin<&mut (impl Future<Output = ()> + Send)>,
) {
    let counters = &shared.state.metrics.connections;
    let mut pause = FIRST_PAUSE;
    let mut over_cap_log = Throttle::default();
    let mut error_log = Throttle::default();
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => return,
            accepted = listener.accept() => accepted,
        };
        while tasks.try_join_next().is_some() {}
        match accepted {
            Ok((tcp, _)) => {
                pause = FIRST_PAUSE;
                if counters.open() >= max_connections as u64 {
                    counters.rejected();
                    if let Some(more) = over_cap_log.due() {
                        tracing::warn!(
                            "{max_connections} connections are open (server.max_connections): new ones are answered \
                             503 and closed{more}"
                        );
                    }
                    refuse(&tcp);
                    continue;
                }
                // No Nagle delay on answers: stream frames are small writes that must leave at once.
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!("cannot set TCP_NODELAY on an accepted connection: {e}");
                }
                let (activity, open) = registry.add(&shared.state);
                let shared = shared.clone();
                tasks.spawn(async move {
                    let _open = open;
                    connection::run(tcp, shared.router.clone(), shared.state.clone(), activity).await;
                });
            }
            Err(e) if is_per_connection(&e) => counters.accept_failed(),
            Err(e) => {
                counters.accept_failed();
                if let Some(more) = error_log.due() {
                    tracing::error!(
                        "cannot accept connections: {e}{more}; retrying. Out of file descriptors? Raise the limit \
                         (ulimit -n) or lower server.max_connections"
                    );
                }
                tokio::select! {
                    biased;
                    () = &mut shutdown => return,
                    () = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(MAX_PAUSE);
            }
        }
    }
}

/// Errors about one incoming connection (it went away before we took it), not about the listener.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// Answers a connection over the cap with a 503 and closes it, without waiting for anything: what the client
/// already sent is read off (so the close is not a reset that destroys the answer), the answer fits in the
/// socket's buffer.
fn refuse(tcp: &TcpStream) {
    let mut sink = [0u8; 4096];
    while matches!(tcp.try_read(&mut sink), Ok(n) if n > 0) {}
    let body = r#"{"error":{"message":"too many open connections (server.max_connections); retry later","type":"server_error","param":null,"code":"too_many_connections"}}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tcp.try_write(answer.as_bytes());
}

/// Lets a repeated log line out at most once a second, saying how many were held back.
#[derive(Debug, Default)]
struct Throttle {
    last: Option<Instant>,
    held: u64,
}

impl Throttle {
    /// `Some(note)` when the line may be logged now; the note tells how many were held back.
    fn due(&mut self) -> Option<String> {
        let now = Instant::now();
        if self.last.is_some_and(|last| now.duration_since(last) < Duration::from_secs(1)) {
            self.held += 1;
            return None;
        }
        self.last = Some(now);
        let note = if self.held > 0 { format!(" ({} more since the last report)", self.held) } else { String::new() };
        self.held = 0;
        Some(note)
    }
}
