//! What a target admits: its calls in flight, counted for latency-aware balancing. Each call holds a
//! [`CallPermit`] until it ends (for a stream: until the stream ends or is dropped).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use crate::health::Health;

/// A target's admission state, in its shared health entry.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    in_flight: AtomicU32,
}

impl Gate {
    /// Calls under way now.
    pub(crate) fn in_flight(&self) -> u32 {
        self.in_flight.load(Relaxed)
    }
}

/// One call's place at a target; dropping it ends the call's count.
#[derive(Debug)]
pub(crate) struct CallPermit {
    health: Arc<Health>,
}

impl CallPermit {
    /// Admits one call to the target of `health`.
    pub(crate) fn enter(health: &Arc<Health>) -> Self {
        health.gate.in_flight.fetch_add(1, Relaxed);
        Self { health: health.clone() }
    }
}

impl Drop for CallPermit {
    fn drop(&mut self) {
        self.health.gate.in_flight.fetch_sub(1, Relaxed);
    }
}
