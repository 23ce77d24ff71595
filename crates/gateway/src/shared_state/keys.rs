//! Every Redis key and channel replicas share, each under `{prefix}:` so deployments sharing one Redis
//! never see each other.

use switchyard::limits::{LimitScope, RateLimitKind};

/// The names under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    /// Names under `{prefix}:`.
    pub(crate) fn new(prefix: &str) -> Self {
        Self { prefix: prefix.to_owned() }
    }

    /// The open breaker of a target: its end time, who opened it and when.
    pub(crate) fn breaker(&self, target: &str) -> String {
        format!("{}:breaker:{target}", self.prefix)
    }

    /// The pattern matching every open breaker.
    pub(crate) fn breakers(&self) -> String {
        format!("{}:breaker:*", self.prefix)
    }

    /// The target id of a breaker key, if it is one.
    pub(crate) fn breaker_target<'a>(&self, key: &'a str) -> Option<&'a str> {
        key.strip_prefix(&self.prefix)?.strip_prefix(":breaker:")
    }

    /// The claim on the one probe of one open period (its end time in ms names the period).
    pub(crate) fn probe(&self, target: &str, until_ms: u64) -> String {
        format!("{}:probe:{until_ms}:{target}", self.prefix)
    }

    /// The pub/sub channel of breaker changes.
    pub(crate) fn channel(&self) -> String {
        format!("{}:breakers", self.prefix)
    }

    /// The hash of every override cell.
    pub(crate) fn overrides(&self) -> String {
        format!("{}:overrides", self.prefix)
    }

    /// The pub/sub channel that says the overrides changed.
    pub(crate) fn override_channel(&self) -> String {
        format!("{}:overrides:changed", self.prefix)
    }

    /// One replica's heartbeat.
    pub(crate) fn instance(&self, id: &str) -> String {
        format!("{}:instance:{id}", self.prefix)
    }

    /// The base name of one cluster-wide limit's per-second counts (`{base}:{unix second}`).
    pub(crate) fn limit(&self, scope: &LimitScope, kind: RateLimitKind) -> String {
        let (owner, id) = match scope {
            LimitScope::Target(id) => ("target", id),
            LimitScope::Client(name) => ("key", name),
        };
        format!("{}:limit:{owner}:{id}:{}", self.prefix, kind.key())
    }

    /// The pattern matching every replica's heartbeat.
    pub(crate) fn instances(&self) -> String {
        format!("{}:instance:*", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_under_the_prefix_and_a_breaker_key_names_its_target() {
        let keys = Keys::new("blue");
        for name in [
            keys.breaker("oa/gpt"),
            keys.probe("oa/gpt", 5),
            keys.channel(),
            keys.instance("i"),
            keys.breakers(),
            keys.overrides(),
            keys.override_channel(),
            keys.limit(&LimitScope::Client("k".into()), RateLimitKind::Requests),
        ] {
            assert!(name.starts_with("blue:"), "{name}");
        }
        assert_eq!(keys.breaker_target(&keys.breaker("oa/gpt")), Some("oa/gpt"));
        assert_eq!(keys.breaker_target(&Keys::new("green").breaker("oa/gpt")), None);
    }
}
