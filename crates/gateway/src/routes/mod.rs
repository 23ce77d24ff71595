//! HTTP handlers, one file per endpoint family.

pub mod admin;
pub mod admin_config;
pub mod admin_events;
pub mod admin_overrides;
pub mod admin_requests;
pub mod admin_shapes;
pub mod admin_targets;
pub mod chat;
pub mod count_tokens;
pub mod health;
pub mod metrics;
pub mod models;
pub mod responses;
pub mod ui;
