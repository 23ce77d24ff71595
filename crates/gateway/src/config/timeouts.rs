//! Per-attempt timeouts, on providers and routes; any key may be omitted.

use std::time::Duration;

use serde::Deserialize;

use super::Problem;
use super::duration::Dur;

/// A partial `timeouts = { … }` table.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsSection {
    /// Opening the connection; default 5s.
    pub connect: Option<Dur>,
    /// Until the first content chunk (or the whole body when not streaming); default 20s.
    pub first_chunk: Option<Dur>,
    /// Silence between two chunks; default 30s.
    pub idle: Option<Dur>,
    /// One attempt as a whole; default 300s.
    pub total: Option<Dur>,
}

/// Resolved timeouts for one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timeouts {
    /// Connect.
    pub connect: Duration,
    /// First chunk.
    pub first_chunk: Duration,
    /// Idle.
    pub idle: Duration,
    /// Total.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            first_chunk: Duration::from_secs(20),
            idle: Duration::from_secs(30),
            total: Duration::from_secs(300),
        }
    }
}

impl TimeoutsSection {
    /// `self` where set, else `under`.
    pub fn over(self, under: TimeoutsSection) -> TimeoutsSection {
        TimeoutsSection {
            connect: self.connect.or(under.connect),
            first_chunk: self.first_chunk.or(under.first_chunk),
            idle: self.idle.or(under.idle),
            total: self.total.or(under.total),
        }
    }

    /// Fills the gaps with the defaults; `path` names the table in errors.
    pub fn resolve(self, path: &str) -> Result<Timeouts, Problem> {
        let d = Timeouts::default();
        let t = Timeouts {
            connect: self.connect.map_or(d.connect, |x| x.0),
            first_chunk: self.first_chunk.map_or(d.first_chunk, |x| x.0),
            idle: self.idle.map_or(d.idle, |x| x.0),
            total: self.total.map_or(d.total, |x| x.0),
        };
        for (key, value) in
            [("connect", t.connect), ("first_chunk", t.first_chunk), ("idle", t.idle), ("total", t.total)]
        {
            if value.is_zero() {
                return Err(Problem::at(format!("{path}.timeouts.{key}"), "must be greater than 0"));
            }
        }
        Ok(t)
    }
}
