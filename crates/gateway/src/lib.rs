//! The `switchyard` gateway: an HTTP server speaking the OpenAI and Anthropic APIs in front of
//! fallback routes, with an admin API, Prometheus metrics and a CLI.
//!
//! The binary is a thin shell over this library so tests build the same app the binary serves.

pub mod cli;
pub mod config;
