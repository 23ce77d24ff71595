//! Response ids and timestamps for answers the gateway writes itself.

use std::time::{SystemTime, UNIX_EPOCH};

/// `prefix` followed by 24 random hex digits, e.g. `chatcmpl-…` or `msg_…`.
pub(crate) fn new_id(prefix: &str) -> String {
    let simple = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}{}", &simple[..24])
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
