//! End-to-end tests: a real gateway on 127.0.0.1 in front of the simulated upstream, called with reqwest.

// Helpers outside #[test] functions panic on purpose: a broken harness must fail the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod admin_shapes;
mod anthropic_sdk;
mod api;
mod browser;
mod cli;
mod client_keys;
mod common;
mod connections;
mod continuation;
mod contract;
mod count_tokens;
mod counters;
mod default_hedge;
mod errors;
mod failover;
mod fields;
mod health;
mod in_process;
mod internal_details;
mod lifecycle;
mod load;
mod metrics;
mod process;
mod readme;
mod redis_server;
mod reload;
mod replica_limits;
mod replica_overrides;
mod replica_process;
mod replica_tls;
mod replicas;
mod responses;
mod shared_health;
mod spreading;
mod statuses;
mod storage;
mod storage_cli;
mod storage_process;
mod stream_frames;
mod tools;
mod ui_files;
mod webdriver;
