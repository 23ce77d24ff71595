//! A target's traffic limits (`rpm`, `tpm`, `max_concurrency`), the sliding rate windows that enforce them, and
//! the leases that make a window cluster-wide.

pub use crate::gate::TargetLimits;
pub use crate::lease::{LEASE_TTL, LeaseAsk, LeaseBoard, LeaseGrant, LimitScope};
pub use crate::rate_window::{RATE_WINDOW, RateDenied, RateLimitKind, RateRemaining, RateReservation, RateWindow};
