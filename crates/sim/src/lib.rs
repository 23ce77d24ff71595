//! Simulation for tests, demos and benchmarks: in-process models with scripted or random faults
//! ([`SimModel`], [`Behavior`]), a simulated OpenAI/Anthropic HTTP upstream with fault injection
//! ([`Upstream`], [`serve_upstream`], [`Fault`]), and the seed's model-fallback walkthrough on simulated models
//! ([`model_fallback_demo`]).

mod behavior;
mod demo;
mod model;
mod upstream;

pub use behavior::{Behavior, DEFAULT_REPLY};
pub use demo::{DEMO_ANSWER, DEMO_QUESTION, DemoSummary, model_fallback_demo};
pub use model::SimModel;
pub use upstream::{
    DEFAULT_API_KEY, ERROR_TEXT, EXHAUSTED_HEADER, FAULT_WORDS, Fault, SESSION_HEADER, Upstream, UpstreamConfig,
    serve_upstream, serve_upstream_until,
};

/// A file of the test TLS material in this crate's `tls/` folder: `ca.pem` (the test CA), `server.pem` and
/// `server.key` (a certificate for 127.0.0.1 and localhost that the CA signed; `tls/gen.sh` remakes them).
pub fn tls_file(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tls").join(name)
}
