//! Connection counters for `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Open connections, connections refused over the cap, failed accepts.
#[derive(Debug, Default)]
pub struct ConnectionCounters {
    open: AtomicU64,
    rejected: AtomicU64,
    accept_errors: AtomicU64,
}

impl ConnectionCounters {
    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.open.load(Relaxed)
    }

    pub(crate) fn opened(&self) {
        self.open.fetch_add(1, Relaxed);
    }

    pub(crate) fn closed(&self) {
        self.open.fetch_sub(1, Relaxed);
    }

    pub(crate) fn rejected(&self) {
        self.rejected.fetch_add(1, Relaxed);
    }

    pub(crate) fn accept_failed(&self) {
        self.accept_errors.fetch_add(1, Relaxed);
    }

    /// Appends the three families in Prometheus text.
    pub fn render(&self, out: &mut String) {
        out.push_str("# HELP switchyard_open_connections Client connections open now.\n");
        out.push_str("# TYPE switchyard_open_connections gauge\n");
        let _ = writeln!(out, "switchyard_open_connections {}", self.open.load(Relaxed));
        out.push_str(
            "# HELP switchyard_connections_rejected_total Client connections closed at once: server.max_connections were open.\n",
        );
        out.push_str("# TYPE switchyard_connections_rejected_total counter\n");
        let _ = writeln!(out, "switchyard_connections_rejected_total {}", self.rejected.load(Relaxed));
        out.push_str(
            "# HELP switchyard_accept_errors_total Failed accepts of client connections (e.g. out of file descriptors).\n",
        );
        out.push_str("# TYPE switchyard_accept_errors_total counter\n");
        let _ = writeln!(out, "switchyard_accept_errors_total {}", self.accept_errors.load(Relaxed));
    }
}
