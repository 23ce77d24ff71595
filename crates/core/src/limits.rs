//! A target's traffic limits (`rpm`, `tpm`, `max_concurrency`) and the sliding rate windows that enforce them.

pub use crate::gate::TargetLimits;
pub use crate::rate_window::{RATE_WINDOW, RateDenied, RateLimitKind, RateRemaining, RateReservation, RateWindow};
