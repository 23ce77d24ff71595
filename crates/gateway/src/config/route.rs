//! `[routes.NAME]`: the ordered targets a client reaches by sending `"model": "NAME"`.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde::Deserialize;
use switchyard::{
    Backoff,
    breaker::BreakerConfig,
    budget::BudgetConfig,
    hedge::HedgeConfig,
    limits::TargetLimits,
    manager::{AfterCommit, Balance, OnContentFilter},
    types::ContinuationMode,
};

use super::Problem;
use super::duration::Dur;
use super::provider::ProviderConfig;
use super::timeouts::{Timeouts, TimeoutsSection};

/// `backoff = { kind = "linear", base = "500ms" }` or `{ kind = "exponential", base = "500ms", max = "8s" }`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackoffSection {
    /// `linear` or `exponential`.
    pub kind: BackoffKind,
    /// Base delay; default 500ms.
    #[serde(default)]
    pub base: Option<Dur>,
    /// Cap for `exponential`; default 30s.
    #[serde(default)]
    pub max: Option<Dur>,
}

/// Backoff shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackoffKind {
    /// `retry × base`.
    Linear,
    /// A random wait up to `base × 2^(retry−1)` (retry 1, 2, …), capped at `max` (full jitter).
    Exponential,
}

/// `breaker = { failures = 5, cooldown = "30s" }` (SPEC section 6); `{ enabled = false }` turns it off.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerSection {
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Consecutive failed attempts that open the breaker; default 5.
    #[serde(default)]
    pub failures: Option<u32>,
    /// How long it stays open before one probe; default 30s.
    #[serde(default)]
    pub cooldown: Option<Dur>,
}

/// `hedge = { after = "p95", initial = "10s" }` (the default) or `{ after = "800ms" }`; `hedge = false` is off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HedgeSection {
    /// `"p95"` (the default) or a duration.
    #[serde(default)]
    pub after: Option<String>,
    /// With `p95`: the delay until the primary has 20 samples; default 10s.
    #[serde(default)]
    pub initial: Option<Dur>,
}

/// `retry_budget = { ratio = 0.2, min_per_second = 10 }` (SPEC section 6); `{ enabled = false }` turns it off.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryBudgetSection {
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Retries allowed as a share of requests; default 0.2.
    #[serde(default)]
    pub ratio: Option<f64>,
    /// Retries always allowed per second; default 10.
    #[serde(default)]
    pub min_per_second: Option<f64>,
}

/// One `targets = [ { … } ]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSection {
    /// A name from `[providers]`.
    pub provider: String,
    /// The upstream model name.
    pub model: String,
    /// Target id; default `provider/model`.
    #[serde(default)]
    pub id: Option<String>,
    /// Lower is tried first; default: its position in the list (1, 2, …).
    #[serde(default)]
    pub priority: Option<i32>,
    /// Retries after the first call; default 0.
    #[serde(default)]
    pub max_retries: u32,
    /// Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Prompt size the model accepts, in tokens (for context-length fallback).
    #[serde(default)]
    pub context_window: Option<u64>,
    /// Whether the model can call tools; default true.
    #[serde(default)]
    pub supports_tools: Option<bool>,
    /// How it continues another target's broken stream; default: its provider's `continuation`.
    #[serde(default)]
    pub continuation: Option<ContinuationMode>,
    /// Its share of its tier's traffic (targets of equal priority); default 1.
    #[serde(default)]
    pub weight: Option<u32>,
    /// Calls in any 60 s window (SPEC-2 section 12).
    #[serde(default)]
    pub rpm: Option<u64>,
    /// Tokens in any 60 s window, reserved up front and settled from usage.
    #[serde(default)]
    pub tpm: Option<u64>,
    /// Calls in flight at once.
    #[serde(default)]
    pub max_concurrency: Option<u32>,
}

fn yes() -> bool {
    true
}

fn weighted() -> Balance {
    Balance::Weighted
}

/// `value`, when set, must be at least 1.
fn at_least_one<T: Into<u64> + Copy>(value: Option<T>, path: &str) -> Result<(), Problem> {
    match value {
        Some(v) if v.into() == 0 => Err(Problem::at(path, "must be 1 or more (leave it out for no limit)")),
        _ => Ok(()),
    }
}

/// `[routes.NAME]` as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    /// Backoff between retries; default exponential, base 500ms, max 30s.
    #[serde(default)]
    pub backoff: Option<BackoffSection>,
    /// Per-attempt timeouts, over the provider's.
    #[serde(default)]
    pub timeouts: TimeoutsSection,
    /// The targets, tried by priority.
    #[serde(default)]
    pub targets: Vec<TargetSection>,
    /// Whole-chain deadline (SPEC section 6).
    #[serde(default)]
    pub deadline: Option<Dur>,
    /// Circuit breaker (SPEC section 6).
    #[serde(default)]
    pub breaker: Option<BreakerSection>,
    /// Hedged requests (SPEC section 6): a table, or `false` (off); absent: the default hedge.
    #[serde(default)]
    pub hedge: Option<toml::Value>,
    /// What a stream that breaks after its first chunk does; default `error`.
    #[serde(default)]
    pub after_commit: AfterCommit,
    /// Retry a target after its first-chunk or total timeout; default false (fall back at once).
    #[serde(default)]
    pub retry_timeouts: bool,
    /// What a content-filter refusal does; default `error`.
    #[serde(default)]
    pub on_content_filter: OnContentFilter,
    /// SSE keep-alive interval while waiting for the first chunk (SPEC section 6).
    #[serde(default)]
    pub keepalive: Option<Dur>,
    /// Retry budget (SPEC section 6).
    #[serde(default)]
    pub retry_budget: Option<RetryBudgetSection>,
    /// Skip a target that would drop a request field instead of calling it (SPEC-2 section 14); default false.
    #[serde(default)]
    pub strict_fields: bool,
    /// How targets of equal priority share traffic: `weighted` (the default) or `latency`.
    #[serde(default = "weighted")]
    pub balance: Balance,
}

/// One validated target.
#[derive(Debug, Clone)]
pub struct TargetConfig {
    /// Its id.
    pub id: String,
    /// Its provider's name.
    pub provider: String,
    /// Upstream model name.
    pub model: String,
    /// Priority (lower first).
    pub priority: i32,
    /// Retries after the first call.
    pub max_retries: u32,
    /// Enabled at start.
    pub enabled: bool,
    /// Context window, when known.
    pub context_window: Option<u64>,
    /// Tool support.
    pub supports_tools: bool,
    /// Timeouts after provider and route merging.
    pub timeouts: Timeouts,
    /// How it continues another target's broken stream (`after_commit = "continue"`).
    pub continuation: ContinuationMode,
    /// Its share of its tier's traffic.
    pub weight: u32,
    /// Its `rpm`, `tpm` and `max_concurrency`.
    pub limits: TargetLimits,
    /// Why it cannot serve (its provider's key is unset), or `None`.
    pub unavailable: Option<String>,
}

/// A validated route.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// Its name.
    pub name: String,
    /// Backoff between retries; default exponential, base 500ms, max 30s.
    pub backoff: Backoff,
    /// Its targets, in the order written.
    pub targets: Vec<TargetConfig>,
    /// Circuit breaker per target; `None`: off.
    pub breaker: Option<BreakerConfig>,
    /// Retry budget per target; `None`: retries bounded by `max_retries` alone.
    pub retry_budget: Option<BudgetConfig>,
    /// Deadline for the whole chain of attempts; `None`: none.
    pub deadline: Option<Duration>,
    /// SSE keep-alive interval for streaming requests; `None`: off.
    pub keepalive: Option<Duration>,
    /// Hedged requests; `None`: off (`hedge = false`).
    pub hedge: Option<HedgeConfig>,
    /// What a committed stream that breaks does.
    pub after_commit: AfterCommit,
    /// A target that would drop a request field is skipped instead.
    pub strict_fields: bool,
    /// Whether a first-chunk or total timeout is retried on the same target.
    pub retry_timeouts: bool,
    /// What a content-filter refusal does.
    pub on_content_filter: OnContentFilter,
    /// How each tier (targets of equal priority) is ordered per request.
    pub balance: Balance,
}

/// Reads `hedge`: absent → the default hedge; `false` → off; `true` → the default; a table → as written.
fn hedge(value: Option<toml::Value>, path: &str) -> Result<Option<HedgeConfig>, Problem> {
    let section = match value {
        None | Some(toml::Value::Boolean(true)) => return Ok(Some(HedgeConfig::default())),
        Some(toml::Value::Boolean(false)) => return Ok(None),
        Some(table @ toml::Value::Table(_)) => HedgeSection::deserialize(table)
            .map_err(|e| Problem::at(format!("{path}.hedge"), e.message().to_owned()))?,
        Some(other) => {
            return Err(Problem::at(
                format!("{path}.hedge"),
                format!(
                    "expected false or a table like {{ after = \"p95\", initial = \"10s\" }}, found {}",
                    other.type_str()
                ),
            ));
        }
    };
    let initial = section.initial.map_or(HedgeConfig::DEFAULT_INITIAL, |d| d.0);
    if initial.is_zero() {
        return Err(Problem::at(format!("{path}.hedge.initial"), "must be greater than 0"));
    }
    match section.after.as_deref().map(str::trim) {
        None | Some("p95") => Ok(Some(HedgeConfig::p95_or(initial))),
        Some(after) => match humantime::parse_duration(after) {
            Ok(d) if !d.is_zero() && section.initial.is_none() => Ok(Some(HedgeConfig::after(d))),
            Ok(d) if !d.is_zero() => {
                Err(Problem::at(format!("{path}.hedge.initial"), "only `after = \"p95\"` has an initial delay"))
            }
            _ => Err(Problem::at(
                format!("{path}.hedge.after"),
                format!("{after:?} is neither \"p95\" nor a duration like \"800ms\""),
            )),
        },
    }
}

impl RouteSection {
    /// Checks the route against the providers.
    pub fn validate(
        self,
        name: &str,
        providers: &BTreeMap<String, ProviderConfig>,
        unset_vars: &[String],
    ) -> Result<RouteConfig, Problem> {
        let path = format!("routes.{name}");
        if let Some(var) = unset_vars.first() {
            return Err(Problem::at(path, format!("environment variable ${var} is not set")));
        }
        if name.is_empty() || name.contains('/') {
            return Err(Problem::at(path, "a route name must be non-empty and contain no '/' (ids use it)"));
        }
        let backoff = match self.backoff {
            None => Backoff::default(),
            Some(b) => {
                let base = b.base.map_or(Backoff::DEFAULT_BASE, |d| d.0);
                match b.kind {
                    BackoffKind::Linear => {
                        if b.max.is_some() {
                            return Err(Problem::at(
                                format!("{path}.backoff.max"),
                                "only an exponential backoff has a max",
                            ));
                        }
                        Backoff::Linear { base }
                    }
                    BackoffKind::Exponential => {
                        let max = b.max.map_or(Backoff::DEFAULT_MAX, |d| d.0);
                        if max < base {
                            return Err(Problem::at(format!("{path}.backoff.max"), "smaller than backoff.base"));
                        }
                        Backoff::Exponential { base, max }
                    }
                }
            }
        };
        if self.targets.is_empty() {
            return Err(Problem::at(format!("{path}.targets"), "a route needs at least one target"));
        }
        let mut seen = HashSet::new();
        let mut targets = Vec::with_capacity(self.targets.len());
        for (i, t) in self.targets.into_iter().enumerate() {
            let tpath = format!("{path}.targets[{i}]");
            let Some(provider) = providers.get(&t.provider) else {
                let known: Vec<&str> = providers.keys().map(String::as_str).collect();
                return Err(Problem::at(
                    format!("{tpath}.provider"),
                    format!(
                        "unknown provider {:?}; declared providers: {}",
                        t.provider,
                        if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                    ),
                ));
            };
            if t.model.trim().is_empty() {
                return Err(Problem::at(format!("{tpath}.model"), "must not be empty"));
            }
            let id = t.id.unwrap_or_else(|| format!("{}/{}", t.provider, t.model));
            if id.trim().is_empty() {
                return Err(Problem::at(format!("{tpath}.id"), "must not be empty"));
            }
            if !seen.insert(id.clone()) {
                return Err(Problem::at(
                    tpath,
                    format!("duplicate target id {id:?} in this route; set `id` to tell them apart"),
                ));
            }
            let timeouts = self.timeouts.over(provider.timeouts).resolve(&tpath)?;
            if t.weight == Some(0) {
                return Err(Problem::at(
                    format!("{tpath}.weight"),
                    "must be 1 or more (set enabled = false to stop its traffic)",
                ));
            }
            at_least_one(t.rpm, &format!("{tpath}.rpm"))?;
            at_least_one(t.tpm, &format!("{tpath}.tpm"))?;
            at_least_one(t.max_concurrency, &format!("{tpath}.max_concurrency"))?;
            targets.push(TargetConfig {
                id,
                provider: t.provider.clone(),
                model: t.model,
                priority: t.priority.unwrap_or(i32::try_from(i + 1).unwrap_or(i32::MAX)),
                max_retries: t.max_retries,
                enabled: t.enabled,
                context_window: t.context_window,
                supports_tools: t.supports_tools.unwrap_or(true),
                timeouts,
                continuation: t.continuation.unwrap_or(provider.continuation),
                weight: t.weight.unwrap_or(1),
                limits: TargetLimits { rpm: t.rpm, tpm: t.tpm, max_concurrency: t.max_concurrency },
                unavailable: provider.unavailable.clone(),
            });
        }
        if targets.iter().all(|t| t.unavailable.is_some()) {
            let reasons: Vec<String> =
                targets.iter().map(|t| format!("{}: {}", t.id, t.unavailable.as_deref().unwrap_or(""))).collect();
            return Err(Problem::at(path, format!("no target can serve: {}", reasons.join("; "))));
        }
        let breaker = match self.breaker {
            Some(b) if b.enabled == Some(false) => None,
            b => {
                let default = BreakerConfig::default();
                let failures = b.and_then(|b| b.failures).unwrap_or(default.failures);
                let cooldown = b.and_then(|b| b.cooldown).map_or(default.cooldown, |d| d.0);
                if cooldown.is_zero() {
                    return Err(Problem::at(format!("{path}.breaker.cooldown"), "must be greater than 0"));
                }
                Some(BreakerConfig { failures, cooldown, ..default })
            }
        };
        let retry_budget = match self.retry_budget {
            Some(b) if b.enabled == Some(false) => None,
            b => {
                let ratio = b.and_then(|b| b.ratio).unwrap_or(BudgetConfig::RETRY.ratio);
                let min_per_second = b.and_then(|b| b.min_per_second).unwrap_or(BudgetConfig::RETRY.min_per_second);
                if !(0.0..=100.0).contains(&ratio) {
                    return Err(Problem::at(
                        format!("{path}.retry_budget.ratio"),
                        "must be between 0 and 100 (0.2 = 20%)",
                    ));
                }
                if !(0.0..=1e9).contains(&min_per_second) {
                    return Err(Problem::at(format!("{path}.retry_budget.min_per_second"), "must be 0 or more"));
                }
                Some(BudgetConfig { ratio, min_per_second })
            }
        };
        let deadline = self.deadline.map(|d| d.0);
        if deadline.is_some_and(|d| d.is_zero()) {
            return Err(Problem::at(format!("{path}.deadline"), "must be greater than 0"));
        }
        let keepalive = self.keepalive.map(|d| d.0);
        if keepalive.is_some_and(|d| d < Duration::from_millis(10)) {
            return Err(Problem::at(format!("{path}.keepalive"), "must be at least 10ms"));
        }
        let hedge = hedge(self.hedge, &path)?;
        Ok(RouteConfig {
            name: name.to_owned(),
            backoff,
            targets,
            breaker,
            retry_budget,
            deadline,
            keepalive,
            hedge,
            after_commit: self.after_commit,
            strict_fields: self.strict_fields,
            retry_timeouts: self.retry_timeouts,
            on_content_filter: self.on_content_filter,
            balance: self.balance,
        })
    }
}
