//! Why a target was passed over without a call: one type for attempts, metrics labels and messages.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::fit::Unfit;
use crate::rate_window::RateDenied;

/// Why a target was passed over without a call. Written as its message in attempt JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// Disabled at runtime or in config.
    Disabled,
    /// Its model could not be built (e.g. its provider's API key is unset).
    NotBuilt {
        /// Why.
        reason: String,
    },
    /// Its circuit breaker is open.
    BreakerOpen {
        /// Until the cooldown ends.
        remaining: Duration,
    },
    /// Its `rpm` or `tpm` limit is reached (or the request's token estimate alone exceeds `tpm`).
    RateLimited(RateDenied),
    /// Its provider's rate-limit headers said its requests or tokens are used up until their reset.
    UpstreamExhausted {
        /// Until the reset.
        remaining: Duration,
    },
    /// Its `max_concurrency` calls are in flight.
    ConcurrencyLimited {
        /// The limit.
        limit: u32,
    },
    /// Its breaker is half-open and another request (here or on another replica) is the probe.
    BreakerProbing,
    /// It does not take tools, and the request offers tools or carries a tool round.
    NoTools {
        /// Tools the request offers (0: it carries tool calls or results).
        offered: usize,
    },
    /// The request will not fit its context window.
    WindowTooSmall {
        /// The request's estimated size in tokens (prompt plus `max_tokens`).
        needed: u64,
        /// Its context window.
        window: u64,
    },
    /// An earlier target with a context window at least as large found the prompt too long.
    WindowNotLarger {
        /// Its context window.
        window: u64,
        /// The target that found the prompt too long.
        than: String,
        /// That target's window.
        theirs: u64,
    },
    /// It cannot honour a request field (or would drop one on a `strict_fields` route).
    Field(Unfit),
    /// A reason read back from its message (e.g. from a stored request log).
    Described(String),
}

impl SkipReason {
    /// A short fixed label, for metrics and filters: `disabled`, `not_built`, `breaker_open`,
    /// `breaker_probing`, `rate_limited`, `concurrency_limited`, `upstream_exhausted`, `no_tools`, `window_too_small`, `field` or
    /// `other`.
    pub fn label(&self) -> &'static str {
        match self {
            SkipReason::Disabled => "disabled",
            SkipReason::NotBuilt { .. } => "not_built",
            SkipReason::BreakerOpen { .. } => "breaker_open",
            SkipReason::BreakerProbing => "breaker_probing",
            SkipReason::RateLimited(_) => "rate_limited",
            SkipReason::ConcurrencyLimited { .. } => "concurrency_limited",
            SkipReason::UpstreamExhausted { .. } => "upstream_exhausted",
            SkipReason::NoTools { .. } => "no_tools",
            SkipReason::WindowTooSmall { .. } | SkipReason::WindowNotLarger { .. } => "window_too_small",
            SkipReason::Field(_) => "field",
            SkipReason::Described(_) => "other",
        }
    }

    /// The request field it was skipped for, when that is why.
    pub fn field(&self) -> Option<&str> {
        match self {
            SkipReason::Field(unfit) => Some(unfit.field()),
            _ => None,
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Disabled => f.write_str("disabled"),
            SkipReason::NotBuilt { reason } => write!(f, "could not be built: {reason}"),
            SkipReason::BreakerOpen { remaining } => {
                write!(f, "circuit breaker open for another {}ms", remaining.as_millis())
            }
            SkipReason::BreakerProbing => {
                f.write_str("circuit breaker half-open: another request (here or on another replica) is probing")
            }
            SkipReason::RateLimited(denied) => denied.fmt(f),
            SkipReason::ConcurrencyLimited { limit } => write!(f, "max_concurrency limit {limit} reached"),
            SkipReason::UpstreamExhausted { remaining } => write!(
                f,
                "its provider's rate-limit headers say its quota is used up for another {}ms",
                remaining.as_millis()
            ),
            SkipReason::NoTools { offered: 0 } => {
                f.write_str("it does not support tools and the request carries tool calls")
            }
            SkipReason::NoTools { offered } => {
                write!(f, "it does not support tools and the request offers {offered} tool(s)")
            }
            SkipReason::WindowTooSmall { needed, window } => write!(
                f,
                "the request needs about {needed} tokens (prompt estimate plus max_tokens), more than its context \
                 window of {window}"
            ),
            SkipReason::WindowNotLarger { window, than, theirs } => write!(
                f,
                "its context window ({window} tokens) is not larger than that of {than} ({theirs}), which found the \
                 prompt too long"
            ),
            SkipReason::Field(unfit) => unfit.fmt(f),
            SkipReason::Described(text) => f.write_str(text),
        }
    }
}

impl Serialize for SkipReason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SkipReason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(SkipReason::Described)
    }
}
