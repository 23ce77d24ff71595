//! Simulation for tests, demos and benchmarks: in-process models with scripted or random faults
//! ([`SimModel`], [`Behavior`]), and a simulated OpenAI/Anthropic HTTP upstream with fault injection.

mod behavior;
mod model;
mod upstream;

pub use behavior::{Behavior, DEFAULT_REPLY};
pub use model::SimModel;
pub use upstream::{
    DEFAULT_API_KEY, ERROR_TEXT, Fault, Upstream, UpstreamConfig, serve_upstream, serve_upstream_until,
};
