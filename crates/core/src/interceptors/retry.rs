//! `ModelRetryInterceptor`: retries the rest of the chain with a growing delay.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::backoff::Backoff;
use crate::error::Error;
use crate::interceptor::{ModelInterceptor, Next};
use crate::model::ChatStream;
use crate::runner::{self, Policy, RetryPredicate, Target};
use crate::target::ConfigError;
use crate::types::{ChatRequest, ChatResponse};
use crate::validate::ResponseValidator;

/// Retries the rest of the chain: `max_attempts` calls in all (counting the first), waiting
/// `initial_delay`, then × `multiplier` each time, up to `max_delay`; a Retry-After is a floor, and
/// one longer than `max_delay` ends the retries. What is retried follows the error table unless
/// `retry_if` says otherwise (invalid requests, cancellation and the deadline are never retried).
/// A stream is retried only before its first content chunk.
///
/// When no retry was made, the chain's own error comes back unchanged; after retries, an
/// [`Error::AllFailed`] listing every attempt.
pub struct ModelRetryInterceptor {
    max_attempts: u32,
    policy: Policy,
}

impl Default for ModelRetryInterceptor {
    /// 3 attempts, 1 s initial delay, ×2, 30 s cap.
    fn default() -> Self {
        ModelRetryInterceptorBuilder::default().assemble()
    }
}

impl ModelRetryInterceptor {
    /// Starts a builder with the defaults.
    pub fn builder() -> ModelRetryInterceptorBuilder {
        ModelRetryInterceptorBuilder::default()
    }

    fn target<'a>(&self, next: &'a Next<'a>) -> [Target<'a>; 1] {
        let mut target = Target::plain(0, "next", next);
        target.max_retries = self.max_attempts.saturating_sub(1);
        target.transparent = true;
        [target]
    }
}

#[async_trait]
impl ModelInterceptor for ModelRetryInterceptor {
    fn name(&self) -> &str {
        "ModelRetry"
    }

    async fn intercept(&self, request: ChatRequest, next: Next<'_>) -> Result<ChatResponse, Error> {
        runner::complete(&self.policy, &self.target(&next), request, None).await
    }

    async fn intercept_stream(&self, request: ChatRequest, next: Next<'_>) -> Result<ChatStream, Error> {
        runner::stream(&self.policy, &self.target(&next), request, None, None).await
    }
}

/// Builds a [`ModelRetryInterceptor`].
pub struct ModelRetryInterceptorBuilder {
    max_attempts: u32,
    initial_delay: Duration,
    multiplier: f64,
    max_delay: Duration,
    retry_if: Option<RetryPredicate>,
    validator: Option<Arc<dyn ResponseValidator>>,
}

impl Default for ModelRetryInterceptorBuilder {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_delay: Duration::from_secs(1),
            multiplier: 2.0,
            max_delay: Duration::from_secs(30),
            retry_if: None,
            validator: None,
        }
    }
}

impl ModelRetryInterceptorBuilder {
    /// Calls in all, counting the first (at least 1; default 3).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The wait before the first retry (default 1 s).
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// The growth of the wait (at least 1.0; default 2.0).
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// The longest wait (default 30 s).
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Which errors to retry, instead of the error table's rule (fail-fast kinds are never retried).
    pub fn retry_if(mut self, predicate: impl Fn(&Error) -> bool + Send + Sync + 'static) -> Self {
        self.retry_if = Some(Arc::new(predicate));
        self
    }

    /// Marks some answers as failures to retry (e.g. [`ExceptionMarker`](crate::validate::ExceptionMarker)).
    pub fn validator(mut self, validator: Arc<dyn ResponseValidator>) -> Self {
        self.validator = Some(validator);
        self
    }

    /// Checks the settings and builds the interceptor.
    pub fn build(self) -> Result<ModelRetryInterceptor, ConfigError> {
        if self.max_attempts == 0 {
            return Err(ConfigError::Invalid {
                field: "max_attempts",
                message: "must be at least 1 (it counts the first call)".to_owned(),
            });
        }
        if !(self.multiplier >= 1.0 && self.multiplier.is_finite()) {
            return Err(ConfigError::Invalid {
                field: "multiplier",
                message: format!("must be a finite number of at least 1.0, not {}", self.multiplier),
            });
        }
        Ok(self.assemble())
    }

    fn assemble(self) -> ModelRetryInterceptor {
        let policy = Policy {
            backoff: Backoff::Geometric {
                initial: self.initial_delay,
                multiplier: self.multiplier,
                max: self.max_delay,
            },
            max_retry_wait: Some(self.max_delay.max(self.initial_delay)),
            validator: self.validator,
            retry_if: self.retry_if,
            // Retrying is all this interceptor does: a timeout is retried like any retryable failure.
            retry_timeouts: true,
            pass_through_single_failure: true,
            ..Policy::default()
        };
        ModelRetryInterceptor { max_attempts: self.max_attempts, policy }
    }
}
