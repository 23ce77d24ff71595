//! The connection layer: our own accept loop and HTTP/1.1 server connection, so that every connection has a
//! header, body and idle timeout, the number of open connections is capped, and a shutdown closes what is
//! idle or half-sent at once while answers in flight finish until the drain deadline. One watchdog per
//! connection keeps the three timeouts, driven by where the connection is: idle, receiving headers,
//! receiving a body, or busy answering.
//!
//! The HTTP/1.1 exchange is our own (`request_head`, `body`, `response_writer`, with `httparse` and the
//! providers' body decoder) rather than hyper's server connection: hyper keeps an 8 KB write buffer and an
//! 8 KB read buffer for every open connection with no knob for either, which was most of the memory of an
//! open stream; here a streaming connection holds no buffer at all between its writes.

mod accept;
mod activity;
mod body;
mod chunk_size;
mod connection;
mod counters;
mod fd_limit;
mod limits;
mod registry;
mod request_head;
mod response_writer;
mod serve;
mod service;
mod socket;
mod timer_floor;

pub use activity::{DrainDeadline, shutting_down};
pub use counters::ConnectionCounters;
pub use fd_limit::raise_fd_limit;
pub use limits::ConnectionLimits;
pub use serve::serve;
