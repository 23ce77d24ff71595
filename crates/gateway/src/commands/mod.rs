//! The CLI's subcommands; each writes its human-readable output to stdout.

pub mod admin_client;
pub mod chat;
pub mod check;
pub mod check_diff;
pub mod demo;
pub mod gateway_http;
pub mod logs;
pub mod models;
pub mod serve;
pub mod table;
