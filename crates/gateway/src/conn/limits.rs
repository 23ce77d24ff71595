//! The `[server]` settings of the connection layer.

use std::time::Duration;

/// Timeouts and the connection cap, from `[server]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time to receive a request's headers (from the connection's start, or its first byte after an idle wait).
    pub header_timeout: Duration,
    /// Time to receive a request's whole body, from its headers.
    pub body_timeout: Duration,
    /// Time a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Most connections open at once; `None`: 80% of the file descriptor limit.
    pub max_connections: Option<usize>,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: None,
        }
    }
}
