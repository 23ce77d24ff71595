//! A timer due every second while the server runs, so that no request's own timer is ever the runtime's
//! earliest.
//!
//! Why: tokio wakes its timer driver (an eventfd write, one system call) whenever a timer is set to fire before
//! the driver's next planned wake-up. Every request sets timers seconds away (its connection's phase deadline,
//! the attempt's time limits); with nothing due sooner, the first of them cost a system call per request
//! (`bench/syscalls`: 7 per proxied request without the floor, 6 with it). Idle, the floor costs one wake-up a
//! second.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// How often the floor fires: sooner than any request timer the gateway sets.
const PERIOD: Duration = Duration::from_secs(1);

/// The running floor; dropping it stops it.
#[derive(Debug)]
pub(super) struct TimerFloor(JoinHandle<()>);

impl TimerFloor {
    /// Starts the floor on the current runtime.
    pub(super) fn start() -> Self {
        Self(tokio::spawn(async {
            let mut tick = tokio::time::interval(PERIOD);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
            }
        }))
    }
}

impl Drop for TimerFloor {
    fn drop(&mut self) {
        self.0.abort();
    }
}
