//! `ToolRetryInterceptor`: calls a failing tool again, with exponential backoff.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use switchyard::{Backoff, ConfigError};

use crate::error::ToolError;
use crate::tool_interceptor::{ToolCallRequest, ToolCallResponse, ToolInterceptor, ToolNext};

type RetryPredicate = Arc<dyn Fn(&ToolError) -> bool + Send + Sync>;

/// Retries failed tool calls. Defaults: 3 attempts counting the first, 1 s initial delay, ×2,
/// 30 s cap (the model retry's defaults); errors with [`ToolError::is_retryable`] are retried.
/// When the attempts run out the last error goes on outwards; put a [`ToolErrorInterceptor`]
/// outside it to let the model read it.
///
/// [`ToolErrorInterceptor`]: crate::ToolErrorInterceptor
#[derive(Clone)]
pub struct ToolRetryInterceptor {
    max_attempts: u32,
    initial_delay: Duration,
    multiplier: f64,
    max_delay: Duration,
    retry_on: RetryPredicate,
    only: Option<HashSet<String>>,
}

impl ToolRetryInterceptor {
    /// A builder with the defaults.
    pub fn builder() -> ToolRetryInterceptorBuilder {
        ToolRetryInterceptorBuilder { inner: Self::default() }
    }

    fn delay(&self, retry: u32) -> Duration {
        // The model retry's geometric policy: retry 1 waits initial_delay, each later one multiplies, capped.
        Backoff::Geometric { initial: self.initial_delay, multiplier: self.multiplier, max: self.max_delay }
            .delay(retry)
    }
}

impl Default for ToolRetryInterceptor {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_delay: Duration::from_secs(1),
            multiplier: 2.0,
            max_delay: Duration::from_secs(30),
            retry_on: Arc::new(ToolError::is_retryable),
            only: None,
        }
    }
}

impl std::fmt::Debug for ToolRetryInterceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolRetryInterceptor")
            .field("max_attempts", &self.max_attempts)
            .field("initial_delay", &self.initial_delay)
            .field("multiplier", &self.multiplier)
            .field("max_delay", &self.max_delay)
            .field("only", &self.only)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl ToolInterceptor for ToolRetryInterceptor {
    fn name(&self) -> &str {
        "ToolRetry"
    }

    async fn intercept(&self, request: ToolCallRequest, next: ToolNext<'_>) -> Result<ToolCallResponse, ToolError> {
        if self.only.as_ref().is_some_and(|only| !only.contains(&request.name)) {
            return next.call(request).await;
        }
        let mut attempt = 1;
        loop {
            match next.call(request.clone()).await {
                Err(e) if attempt < self.max_attempts && (self.retry_on)(&e) => {
                    let wait = self.delay(attempt);
                    tracing::debug!(tool = %request.name, attempt, error = %e, ?wait, "tool failed; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// Builds a [`ToolRetryInterceptor`].
#[derive(Debug, Clone)]
pub struct ToolRetryInterceptorBuilder {
    inner: ToolRetryInterceptor,
}

impl ToolRetryInterceptorBuilder {
    /// Calls in all, counting the first (at least 1; default 3).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.inner.max_attempts = attempts;
        self
    }

    /// Wait before the first retry.
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.inner.initial_delay = delay;
        self
    }

    /// The growth of the wait (at least 1.0; default 2.0), as in `ModelRetryInterceptorBuilder`.
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.inner.multiplier = multiplier;
        self
    }

    /// Longest wait between two attempts.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.inner.max_delay = delay;
        self
    }

    /// Which errors to retry (default: [`ToolError::is_retryable`]), as in `ModelRetryInterceptorBuilder`.
    pub fn retry_if(mut self, predicate: impl Fn(&ToolError) -> bool + Send + Sync + 'static) -> Self {
        self.inner.retry_on = Arc::new(predicate);
        self
    }

    /// Retries only these tools (default: all).
    pub fn tools<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.inner.only = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Checks the settings (the same ranges as the model retry's) and builds the interceptor.
    pub fn build(self) -> Result<ToolRetryInterceptor, ConfigError> {
        if self.inner.max_attempts == 0 {
            return Err(ConfigError::Invalid {
                field: "max_attempts",
                message: "must be at least 1 (it counts the first call)".to_owned(),
            });
        }
        if !(self.inner.multiplier >= 1.0 && self.inner.multiplier.is_finite()) {
            return Err(ConfigError::Invalid {
                field: "multiplier",
                message: format!("must be a finite number of at least 1.0, not {}", self.inner.multiplier),
            });
        }
        Ok(self.inner)
    }
}
