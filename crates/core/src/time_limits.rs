//! The time limits of one attempt: its own timeouts, shrunk to what is left of the request's deadline.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, TimeoutPhase};

/// One point in time an attempt must not pass, and the error it gets when it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limit {
    at: Instant,
    cause: Cause,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    Timeout(TimeoutPhase, Duration),
    Deadline,
}

impl Limit {
    fn timeout(start: Instant, phase: TimeoutPhase, after: Option<Duration>) -> Option<Self> {
        after.map(|after| Limit { at: start + after, cause: Cause::Timeout(phase, after) })
    }

    fn deadline(at: Option<Instant>) -> Option<Self> {
        at.map(|at| Limit { at, cause: Cause::Deadline })
    }

    /// A timer that fires at this limit.
    pub(crate) fn timer(&self) -> tokio::time::Sleep {
        tokio::time::sleep_until(self.at)
    }

    /// The error of an attempt cut off by this limit.
    pub(crate) fn error(&self) -> Error {
        match self.cause {
            Cause::Timeout(phase, after) => Error::Timeout { phase, after },
            Cause::Deadline => Error::DeadlineExceeded { attempts: Vec::new() },
        }
    }
}

fn earliest(a: Option<Limit>, b: Option<Limit>) -> Option<Limit> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.at < a.at { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// The limits of one attempt.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct AttemptLimits {
    /// Until the answer (for streams: until the first content chunk).
    pub(crate) first: Option<Limit>,
    /// For the rest of a committed stream.
    pub(crate) after_commit: Option<Limit>,
}

impl AttemptLimits {
    /// The limits of an attempt starting at `start`.
    pub(crate) fn new(
        start: Instant,
        first_chunk_timeout: Option<Duration>,
        total_timeout: Option<Duration>,
        deadline: Option<Instant>,
    ) -> Self {
        let total = earliest(Limit::timeout(start, TimeoutPhase::Total, total_timeout), Limit::deadline(deadline));
        let first = earliest(Limit::timeout(start, TimeoutPhase::FirstChunk, first_chunk_timeout), total);
        Self { first, after_commit: total }
    }
}

/// Runs `fut` until `limit`; past it, the limit's error.
pub(crate) async fn within<T>(limit: Option<Limit>, fut: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    match limit {
        None => fut.await,
        Some(limit) => tokio::time::timeout_at(limit.at, fut).await.unwrap_or_else(|_| Err(limit.error())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[tokio::test(start_paused = true)]
    async fn timeouts_shrink_to_the_deadline() {
        let now = Instant::now();
        let s = Duration::from_secs(1);
        let l = AttemptLimits::new(now, Some(s * 5), Some(s * 20), Some(now + s * 3));
        assert_eq!(l.first.map(|l| l.error().kind()), Some(ErrorKind::Deadline));
        let l = AttemptLimits::new(now, Some(s * 5), Some(s * 20), Some(now + s * 30));
        assert_eq!(l.first.map(|l| l.error()), Some(Error::Timeout { phase: TimeoutPhase::FirstChunk, after: s * 5 }));
        assert_eq!(
            l.after_commit.map(|l| l.error()),
            Some(Error::Timeout { phase: TimeoutPhase::Total, after: s * 20 })
        );
        let slow = within(l.first, async {
            tokio::time::sleep(s * 6).await;
            Ok(())
        });
        assert_eq!(slow.await.unwrap_err().kind(), ErrorKind::Timeout);
    }
}
