//! One target of a [`FallbackManager`](crate::FallbackManager): a model with its place in the order
//! and its retry allowance (the Go seed's `ModelFallback`), and what `list_models` reports about it.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::breaker::BreakerState;
use crate::gate::TargetLimits;
use crate::skip::SkipReason;
use crate::types::ContinuationMode;

/// A target's configuration. `enabled` defaults to true and `max_retries` to 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFallback {
    /// Provider name (e.g. `openai`), part of the default id.
    pub provider: String,
    /// Model name at that provider, part of the default id.
    pub model: String,
    /// An explicit id, for two targets with the same provider and model (e.g. two base URLs).
    pub id: Option<String>,
    /// Lower is tried first; targets of equal priority form a tier, ordered per request by the
    /// manager's [`Balance`](crate::manager::Balance).
    pub priority: i32,
    /// Its share of its tier's traffic relative to the others' (at least 1; default 1).
    pub weight: u32,
    /// Retries after the first attempt, as the error kind allows.
    pub max_retries: u32,
    /// Disabled targets are never called.
    pub enabled: bool,
    /// The model's context window in tokens, when known.
    pub context_window: Option<u64>,
    /// Whether the model accepts tools, when known.
    pub supports_tools: Option<bool>,
    /// How long one attempt may wait for its first content chunk (the whole answer when not streaming).
    pub first_chunk_timeout: Option<Duration>,
    /// How long one attempt may take in all.
    pub total_timeout: Option<Duration>,
    /// How it is asked to continue another target's broken stream (`after_commit = "continue"`); default
    /// [`ContinuationMode::Instruction`], which every chat API takes.
    pub continuation: ContinuationMode,
    /// Its `rpm`, `tpm` and `max_concurrency`, kept in its shared health entry: managers sharing a
    /// [`HealthRegistry`](crate::health::HealthRegistry) share them, and must give a target the same limits.
    pub limits: TargetLimits,
}

impl ModelFallback {
    /// An enabled target with priority 0 and no retries.
    pub fn new(provider: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            provider: provider.into(),
            model: model.into(),
            id: None,
            priority: 0,
            weight: 1,
            max_retries: 0,
            enabled: true,
            context_window: None,
            supports_tools: None,
            first_chunk_timeout: None,
            total_timeout: None,
            continuation: ContinuationMode::default(),
            limits: TargetLimits::default(),
        }
    }

    /// The id used by `enable_model`, `disable_model`, stats and attempts: the explicit id, else `provider/model`.
    pub fn id(&self) -> String {
        match &self.id {
            Some(id) => id.clone(),
            None => format!("{}/{}", self.provider, self.model),
        }
    }

    /// Sets an explicit id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the priority (lower first).
    pub fn with_priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Sets its weight in its tier (at least 1).
    pub fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Sets the retries after the first attempt.
    pub fn with_max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// Enables or disables the target.
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Sets the context window.
    pub fn with_context_window(mut self, tokens: u64) -> Self {
        self.context_window = Some(tokens);
        self
    }

    /// Says whether the model accepts tools.
    pub fn with_supports_tools(mut self, supports: bool) -> Self {
        self.supports_tools = Some(supports);
        self
    }

    /// Sets the first-chunk timeout of each attempt.
    pub fn with_first_chunk_timeout(mut self, timeout: Duration) -> Self {
        self.first_chunk_timeout = Some(timeout);
        self
    }

    /// Sets the total timeout of each attempt.
    pub fn with_total_timeout(mut self, timeout: Duration) -> Self {
        self.total_timeout = Some(timeout);
        self
    }

    /// Sets its `rpm`, `tpm` and `max_concurrency`.
    pub fn with_limits(mut self, limits: TargetLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets how it is asked to continue another target's broken stream.
    pub fn with_continuation(mut self, mode: ContinuationMode) -> Self {
        self.continuation = mode;
        self
    }
}

/// What `list_models` reports about one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetInfo {
    /// The target id.
    pub id: String,
    /// Provider name.
    pub provider: String,
    /// Model name.
    pub model: String,
    /// Whether requests may call it.
    pub enabled: bool,
    /// Its priority now.
    pub priority: i32,
    /// Its retries now.
    pub max_retries: u32,
    /// True for the target that served the last successful request.
    pub is_current: bool,
    /// Requests it served since the last `reset_stats`.
    pub usage_count: u64,
    /// Why it is disabled (or cannot be enabled), when it is.
    pub disabled_reason: Option<SkipReason>,
    /// Context window, when known.
    pub context_window: Option<u64>,
    /// Tool support, when known.
    pub supports_tools: Option<bool>,
    /// Its circuit breaker now.
    pub breaker: BreakerState,
    /// When its breaker last changed state; `None` if it never did.
    pub breaker_since: Option<SystemTime>,
    /// How many times its breaker opened.
    pub breaker_opened: u64,
    /// When a call to it last failed in a way that counts against its health.
    pub last_failure: Option<SystemTime>,
    /// When its breaker last closed again after a successful probe.
    pub last_recovery: Option<SystemTime>,
}

/// A runtime change that names a target the manager does not have, or cannot make.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// No target has this id.
    #[error("model not found: {id} (known targets: {known})")]
    NotFound {
        /// The id asked for.
        id: String,
        /// The ids there are, comma-separated.
        known: String,
    },
    /// The target could not be built, so it cannot be enabled.
    #[error("model {id} cannot be enabled: {reason}")]
    Unavailable {
        /// The target id.
        id: String,
        /// Why it could not be built.
        reason: String,
    },
}

/// The first id that appears twice in `ids`, as the error that names it.
pub(crate) fn check_unique<'a>(ids: impl IntoIterator<Item = &'a str>) -> Result<(), ConfigError> {
    let mut seen = std::collections::HashSet::new();
    match ids.into_iter().find(|id| !seen.insert(*id)) {
        Some(id) => Err(ConfigError::DuplicateId { id: id.to_owned() }),
        None => Ok(()),
    }
}

/// A configuration that cannot work; the message names what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A manager with no targets.
    #[error("at least one model fallback is required")]
    NoTargets,
    /// A fallback interceptor with no fallback model.
    #[error("at least one fallback model must be specified")]
    NoFallbackModels,
    /// Two targets share an id.
    #[error("duplicate target id `{id}`: give one of them its own id (ModelFallback::with_id)")]
    DuplicateId {
        /// The shared id.
        id: String,
    },
    /// A target's shared health entry has other breaker, retry budget or limit settings than this manager's.
    #[error(
        "target `{id}` is shared through a health registry with other breaker, retry budget or limit settings: give \
         every manager that lists it the same `.breaker(..)`, `.retry_budget(..)` and `ModelFallback::limits`"
    )]
    SharedHealth {
        /// The target id.
        id: String,
    },
    /// A setting is out of range.
    #[error("invalid `{field}`: {message}")]
    Invalid {
        /// The setting.
        field: &'static str,
        /// What is wrong and what is allowed.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_ids() {
        let t = ModelFallback::new("openai", "gpt-4o");
        assert!(t.enabled);
        assert_eq!((t.max_retries, t.priority), (0, 0));
        assert_eq!(t.id(), "openai/gpt-4o");
        assert_eq!(t.with_id("east").id(), "east");
    }
}
