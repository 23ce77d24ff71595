//! The `switchyard` gateway: an HTTP server speaking the OpenAI and Anthropic APIs in front of
//! fallback routes, with an admin API, Prometheus metrics and a CLI.
//!
//! The binary is a thin shell over this library so tests build the same app the binary serves.

pub mod auth;
pub mod cli;
pub mod client_error;
pub mod client_keys;
pub mod codec;
pub mod commands;
pub mod config;
pub mod config_watch;
pub mod conn;
pub mod default_config;
pub mod error;
mod frame_batch;
pub mod headers;
pub mod keepalive;
pub mod metrics;
pub mod overrides;
pub mod reload;
pub mod request_id;
pub mod request_log;
pub mod routes;
pub mod server;
pub mod shared_state;
pub mod sse;
pub mod state;
pub mod storage;
pub mod target_events;
