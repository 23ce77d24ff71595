//! Reaching Redis: connection and reply timeouts short enough that a lost Redis shows within 2 s, and the
//! capped backoff between attempts to reconnect.

use std::time::Duration;

use redis::aio::{MultiplexedConnection, PubSub};
use redis::{AsyncConnectionConfig, Client, RedisError};

/// How long one connection attempt or one command may take.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(1);

/// The longest wait between attempts to reconnect (SPEC-2 section 9).
const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// The first wait after a failure.
const BACKOFF_START: Duration = Duration::from_millis(100);

/// Why a session with Redis ended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Lost {
    /// A command or the connection failed.
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    /// Redis did not answer in time.
    #[error("redis did not answer within {TIMEOUT:?}")]
    Timeout,
    /// The pub/sub connection closed.
    #[error("the pub/sub connection closed")]
    PubSubClosed,
}

/// A command connection and a subscriber connection.
pub(crate) async fn connect(client: &Client) -> Result<(MultiplexedConnection, PubSub), Lost> {
    let config = AsyncConnectionConfig::new().set_connection_timeout(Some(TIMEOUT)).set_response_timeout(Some(TIMEOUT));
    let commands = client.get_multiplexed_async_connection_with_config(&config).await?;
    let pubsub = tokio::time::timeout(TIMEOUT, client.get_async_pubsub()).await.map_err(|_| Lost::Timeout)??;
    Ok((commands, pubsub))
}

/// Doubling waits between attempts, capped at 5 s; reset after a good session.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: BACKOFF_START }
    }
}

impl Backoff {
    /// The wait before the next attempt.
    pub(crate) fn next(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(BACKOFF_CAP);
        wait
    }

    /// A session worked: the next failure starts from the shortest wait again.
    pub(crate) fn reset(&mut self) {
        self.next = BACKOFF_START;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_five_seconds_and_resets() {
        let mut backoff = Backoff::default();
        let waits: Vec<Duration> = (0..8).map(|_| backoff.next()).collect();
        assert_eq!(waits[0], Duration::from_millis(100));
        assert_eq!(waits[1], Duration::from_millis(200));
        assert_eq!(*waits.last().unwrap_or(&Duration::ZERO), BACKOFF_CAP);
        backoff.reset();
        assert_eq!(backoff.next(), Duration::from_millis(100));
    }
}
