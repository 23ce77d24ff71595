//! Simulation for tests, demos and benchmarks: in-process models with scripted or random faults
//! ([`SimModel`], [`Behavior`]), and a simulated OpenAI/Anthropic HTTP upstream with fault injection.

mod behavior;
mod model;

pub use behavior::{Behavior, DEFAULT_REPLY};
pub use model::SimModel;
