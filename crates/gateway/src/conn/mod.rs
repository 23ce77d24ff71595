//! The connection layer: our own accept loop over hyper's HTTP/1 server, so that every connection has a
//! header, body and idle timeout, the number of open connections is capped, and a shutdown closes what is
//! idle or half-sent at once while answers in flight finish until the drain deadline.
//!
//! hyper gives a server header-read timeout only, and it also runs while a kept-alive connection waits for
//! its next request; so one watchdog per connection keeps all three timeouts, driven by where the connection
//! is: idle, receiving headers, receiving a body, or busy answering.

mod accept;
mod activity;
mod body;
mod connection;
mod counters;
mod fd_limit;
mod io;
mod limits;
mod registry;
mod serve;
mod service;
mod timer_floor;

pub use activity::{DrainDeadline, shutting_down};
pub use counters::ConnectionCounters;
pub use fd_limit::raise_fd_limit;
pub use limits::ConnectionLimits;
pub use serve::serve;
