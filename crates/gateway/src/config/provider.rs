//! `[providers.NAME]`: how to reach one upstream API.

use std::collections::BTreeMap;

use serde::Deserialize;
use switchyard::types::ContinuationMode;

use super::Problem;
use super::secret::Secret;
use super::timeouts::TimeoutsSection;

/// Which wire API a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// OpenAI chat completions and every compatible server.
    Openai,
    /// Anthropic Messages.
    Anthropic,
}

impl Kind {
    /// The base URL used when the provider sets none.
    pub fn default_base_url(self) -> &'static str {
        match self {
            Kind::Openai => "https://api.openai.com/v1",
            Kind::Anthropic => "https://api.anthropic.com",
        }
    }

    /// How its targets continue a broken stream when neither they nor the provider say: Anthropic takes a
    /// prefill (the models that refuse one answer 400, and the engine moves on); an OpenAI-compatible server
    /// may not, so it gets the instruction every chat API takes.
    pub fn default_continuation(self) -> ContinuationMode {
        match self {
            Kind::Openai => ContinuationMode::Instruction,
            Kind::Anthropic => ContinuationMode::Prefill,
        }
    }
}

/// `[providers.NAME]` as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSection {
    /// `openai` or `anthropic`.
    pub kind: Kind,
    /// Base URL; default per kind (OpenAI convention: includes `/v1`).
    #[serde(default)]
    pub base_url: Option<String>,
    /// The upstream key; absent: no key sent.
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// `max_tokens` sent to Anthropic when the caller gives none; default 4096.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Extra headers sent with every upstream request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Per-attempt timeouts; route timeouts override them key by key.
    #[serde(default)]
    pub timeouts: TimeoutsSection,
    /// How its targets continue a broken stream (`prefill`, `instruction`, `none`); default per kind.
    #[serde(default)]
    pub continuation: Option<ContinuationMode>,
}

/// A validated provider.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Its name in the file.
    pub name: String,
    /// Its wire API.
    pub kind: Kind,
    /// Where it lives.
    pub base_url: String,
    /// The upstream key.
    pub api_key: Option<Secret>,
    /// Default `max_tokens` for Anthropic.
    pub max_tokens: u32,
    /// Extra headers.
    pub headers: BTreeMap<String, String>,
    /// Its timeouts, before route overrides.
    pub timeouts: TimeoutsSection,
    /// How its targets continue a broken stream, unless a target says otherwise.
    pub continuation: ContinuationMode,
    /// Why it cannot serve (its key variable is unset), or `None`.
    pub unavailable: Option<String>,
}

impl ProviderSection {
    /// Checks the section; `unset_vars` are the variables it uses that the environment lacks.
    pub fn validate(self, name: &str, unset_vars: &[String]) -> Result<ProviderConfig, Problem> {
        let base_url = self.base_url.unwrap_or_else(|| self.kind.default_base_url().to_owned());
        if unset_vars.is_empty() {
            check_base_url(&base_url).map_err(|why| {
                Problem::at(
                    format!("providers.{name}.base_url"),
                    format!(
                        "{:?} {why}; write an absolute http(s) URL, e.g. {:?}",
                        switchyard_providers::redact_url(&base_url),
                        self.kind.default_base_url()
                    ),
                )
            })?;
        }
        if self.max_tokens == Some(0) {
            return Err(Problem::at(format!("providers.{name}.max_tokens"), "must be greater than 0"));
        }
        for (header, value) in &self.headers {
            if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                return Err(Problem::at(
                    format!("providers.{name}.headers"),
                    format!("invalid header name {header:?}"),
                ));
            }
            // Checked here so that `switchyard check` and a reload refuse it, not the first request. The value is
            // not shown: headers often carry credentials.
            if http::HeaderValue::from_str(value).is_err() {
                return Err(Problem::at(
                    format!("providers.{name}.headers.{header}"),
                    "not a valid header value (a line break or another control character, or a character outside \
                     ASCII); write it on one line of visible ASCII",
                ));
            }
        }
        let unavailable = (!unset_vars.is_empty()).then(|| {
            let vars: Vec<String> = unset_vars.iter().map(|v| format!("${v}")).collect();
            format!("environment variable {} is not set (used by providers.{name})", vars.join(", "))
        });
        let api_key = self.api_key.filter(|k| !k.expose().is_empty());
        // A key is sent in a header: one with a line break (a file's or an env file's line end, often) would
        // fail every request's build; say so now, without showing it.
        if api_key.as_ref().is_some_and(|k| http::HeaderValue::from_str(k.expose()).is_err()) {
            return Err(Problem::at(
                format!("providers.{name}.api_key"),
                "the key holds a line break or another character a header cannot carry (often a line end from a \
                 file or an env file); remove it",
            ));
        }
        Ok(ProviderConfig {
            name: name.to_owned(),
            kind: self.kind,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            max_tokens: self.max_tokens.unwrap_or(4096),
            headers: self.headers,
            timeouts: self.timeouts,
            continuation: self.continuation.unwrap_or(self.kind.default_continuation()),
            unavailable,
        })
    }
}

/// Whether `url` is an absolute http(s) URL with a host and a valid port: what the providers' HTTP client
/// will send to, so a URL `check` accepts is one `serve` can use.
fn check_base_url(url: &str) -> Result<(), &'static str> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err("must start with http:// or https://");
    }
    let uri: http::Uri = url.parse().map_err(|_| "is not a valid URL")?;
    let authority = uri.authority().ok_or("has no host")?;
    if authority.host().is_empty() {
        return Err("has no host");
    }
    // `Uri` keeps a port it cannot use (e.g. 99999); the connection would fail on every request.
    if let Some((_, port)) = authority.as_str().rsplit_once(':')
        && !authority.as_str().ends_with(']')
        && port.parse::<u16>().is_err()
    {
        return Err("has an invalid port");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_base_url;

    #[test]
    fn base_urls_are_checked_as_the_client_uses_them() {
        for good in ["http://127.0.0.1:9099/v1", "https://api.openai.com/v1", "http://[::1]:8080", "http://host"] {
            assert_eq!(check_base_url(good), Ok(()), "{good}");
        }
        for bad in ["http://exa mple:99999/v1", "http://", "http://example:99999/v1", "ftp://x", "localhost:8080"] {
            assert!(check_base_url(bad).is_err(), "{bad}");
        }
    }
}
