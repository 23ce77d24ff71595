//! The `[state]` section: where replicas share breakers and instance data (`memory`: this process only).

use serde::Deserialize;

use super::Problem;
use super::secret::Secret;

/// `[state]` as written in the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSection {
    /// `memory` (default) or `redis`.
    #[serde(default)]
    pub backend: Backend,
    /// The Redis URL (`redis://` or `rediss://`, `user:password@` allowed); required with `redis`.
    #[serde(default)]
    pub url: Option<Secret>,
    /// The prefix of every key; default `switchyard`.
    #[serde(default)]
    pub prefix: Option<String>,
}

/// Where the state lives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// This process only.
    #[default]
    Memory,
    /// A Redis shared by the replicas.
    Redis,
}

/// The validated `[state]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StateConfig {
    /// Nothing is shared.
    #[default]
    Memory,
    /// Shared through Redis.
    Redis(RedisConfig),
}

/// How to reach the shared Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// The URL; it may hold a password, so `Debug` hides it.
    pub url: Secret,
    /// Every key starts with `{prefix}:`.
    pub prefix: String,
}

/// The prefix when none is set.
const DEFAULT_PREFIX: &str = "switchyard";

impl StateSection {
    /// Checks the section; `unset` lists variables missing from `state.*` values.
    pub(super) fn validate(self, unset: &[String]) -> Result<StateConfig, Problem> {
        if let Some(var) = unset.first() {
            return Err(Problem::at(
                "state.url",
                format!("environment variable ${var} is not set; set it, or remove [state]"),
            ));
        }
        let prefix = self.prefix.unwrap_or_else(|| DEFAULT_PREFIX.to_owned());
        if prefix.is_empty() || prefix.chars().any(|c| c.is_whitespace() || c == '*') {
            return Err(Problem::at(
                "state.prefix",
                format!(
                    "{prefix:?} is not a usable key prefix; use letters, digits, '-', '_' or ':' (e.g. \"switchyard\")"
                ),
            ));
        }
        match self.backend {
            Backend::Memory => Ok(StateConfig::Memory),
            Backend::Redis => {
                let Some(url) = self.url else {
                    return Err(Problem::at(
                        "state.url",
                        "backend = \"redis\" needs a url, e.g. url = \"redis://127.0.0.1:6379/0\"",
                    ));
                };
                check_url(url.expose())?;
                Ok(StateConfig::Redis(RedisConfig { url, prefix }))
            }
        }
    }
}

/// A `redis://` or `rediss://` URL the client accepts. The message never repeats the URL: it may hold a password.
fn check_url(url: &str) -> Result<(), Problem> {
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Err(Problem::at("state.url", "must start with redis:// (or rediss:// for TLS)"));
    }
    redis::Client::open(url).map(drop).map_err(|e| {
        Problem::at(
            "state.url",
            format!("not a valid Redis URL ({}); write redis://[user:password@]host:port/db", e.category()),
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn section(backend: Backend, url: Option<&str>, prefix: Option<&str>) -> StateSection {
        StateSection { backend, url: url.map(Secret::new), prefix: prefix.map(str::to_owned) }
    }

    #[test]
    fn memory_is_the_default_and_redis_needs_a_url() {
        assert_eq!(StateSection::default().validate(&[]).unwrap(), StateConfig::Memory);
        let err = section(Backend::Redis, None, None).validate(&[]).unwrap_err().to_string();
        assert!(err.starts_with("state.url:"), "{err}");
    }

    #[test]
    fn tls_and_passwords_are_accepted_and_the_prefix_defaults() {
        for url in ["redis://127.0.0.1:6379/0", "rediss://cache.example:6380", "redis://app:s3cret@10.0.0.5:6379/2"] {
            let StateConfig::Redis(redis) = section(Backend::Redis, Some(url), None).validate(&[]).unwrap() else {
                panic!("redis expected for {url}");
            };
            assert_eq!(redis.prefix, "switchyard");
            assert!(!format!("{redis:?}").contains("s3cret"), "Debug hides the password");
        }
    }

    #[test]
    fn the_url_reads_variables_and_an_unset_one_is_an_error() {
        let text = "[state]\nbackend = \"redis\"\nurl = \"redis://:${PW}@127.0.0.1:6379/0\"\nprefix = \"blue\"\n\
                    [providers.p]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\
                    [routes.r]\ntargets = [{ provider = \"p\", model = \"m\" }]\n";
        let set = |var: &str| (var == "PW").then(|| "s3cret".to_owned());
        let config = crate::config::Config::parse(text, &set, None).unwrap();
        let StateConfig::Redis(redis) = config.state else { panic!("redis expected") };
        assert_eq!((redis.url.expose(), redis.prefix.as_str()), ("redis://:s3cret@127.0.0.1:6379/0", "blue"));
        let err = crate::config::Config::parse(text, &|_| None, None).unwrap_err();
        assert!(err.to_string().contains("state.url: environment variable $PW is not set"), "{err}");
    }

    #[test]
    fn bad_urls_and_prefixes_name_their_key_and_never_echo_the_url() {
        let err = section(Backend::Redis, Some("http://u:s3cret@h"), None).validate(&[]).unwrap_err().to_string();
        assert!(err.starts_with("state.url:") && !err.contains("s3cret"), "{err}");
        let err = section(Backend::Redis, Some("redis://h"), Some("a b")).validate(&[]).unwrap_err().to_string();
        assert!(err.starts_with("state.prefix:"), "{err}");
        let err = section(Backend::Redis, Some("redis://h"), None)
            .validate(&["REDIS_URL".to_owned()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("$REDIS_URL"), "{err}");
    }
}
