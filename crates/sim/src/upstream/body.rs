//! Response bodies that arrive over time: SSE events with delays, and bodies that break off or go silent.

use std::collections::VecDeque;
use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use tokio::sync::watch;

/// How a timed body ends after its last frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// Normally.
    Close,
    /// The connection is dropped (the client sees a body error).
    Abort,
    /// Silence with the connection open, until the server shuts down.
    Stall,
}

/// A body sent piece by piece.
#[derive(Debug)]
pub(crate) struct Timed {
    /// The pieces; `true` marks a content chunk, which waits `chunk_delay` unless it is the first piece.
    pub(crate) frames: Vec<(Bytes, bool)>,
    /// Wait before the first piece.
    pub(crate) first_delay: Duration,
    /// Wait before each later content piece.
    pub(crate) chunk_delay: Duration,
    /// What happens after the last piece.
    pub(crate) end: End,
}

struct Playing {
    frames: VecDeque<(Bytes, bool)>,
    first: bool,
    first_delay: Duration,
    chunk_delay: Duration,
    end: End,
    shutdown: watch::Receiver<bool>,
}

impl Timed {
    /// The body; `shutdown` ends a stall.
    pub(crate) fn into_body(self, shutdown: watch::Receiver<bool>) -> Body {
        let Timed { frames, first_delay, chunk_delay, end } = self;
        // Without delays the whole body goes out in one write: same bytes, far fewer syscalls.
        let instant = first_delay.is_zero() && chunk_delay.is_zero();
        if instant && end == End::Close {
            return Body::from(concat(frames));
        }
        let frames: VecDeque<(Bytes, bool)> =
            if instant { VecDeque::from([(concat(frames), false)]) } else { frames.into() };
        let state = Playing { frames, first: true, first_delay, chunk_delay, end, shutdown };
        let stream = futures::stream::unfold(Some(state), |state| async move {
            let mut state = state?;
            if let Some((bytes, content)) = state.frames.pop_front() {
                let delay = if state.first {
                    state.first_delay
                } else if content {
                    state.chunk_delay
                } else {
                    Duration::ZERO
                };
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                state.first = false;
                return Some((Ok(bytes), Some(state)));
            }
            match state.end {
                End::Close => None,
                End::Abort => {
                    // Let the server flush what was sent before the connection drops.
                    tokio::task::yield_now().await;
                    Some((Err(std::io::Error::other("simulated upstream dropped the connection")), None))
                }
                End::Stall => {
                    let _ = state.shutdown.wait_for(|stopped| *stopped).await;
                    Some((Err(std::io::Error::other("simulated upstream shut down")), None))
                }
            }
        });
        Body::from_stream(stream)
    }
}

fn concat(frames: Vec<(Bytes, bool)>) -> Bytes {
    if frames.len() == 1 {
        return frames.into_iter().next().map(|(b, _)| b).unwrap_or_default();
    }
    let mut out = BytesMut::with_capacity(frames.iter().map(|(b, _)| b.len()).sum());
    for (bytes, _) in frames {
        out.extend_from_slice(&bytes);
    }
    out.freeze()
}
