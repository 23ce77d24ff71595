//! The admin API's JSON shapes (SPEC section 7): a target, a route's targets, and the stats. Times are RFC 3339.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;
use switchyard::{
    TargetInfo,
    attempt::SkipReason,
    stats::{StatsSnapshot, TargetStatsSnapshot},
};

use crate::overrides::Override;

/// A time as the admin API writes it.
fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// The SPEC's target, as `PATCH` answers it.
#[derive(Debug, Serialize)]
pub struct Target {
    id: String,
    provider: String,
    model: String,
    enabled: bool,
    priority: i32,
    max_retries: u32,
    is_current: bool,
    usage: u64,
    breaker: &'static str,
    breaker_opened: u64,
    last_failure: Option<String>,
    last_recovery: Option<String>,
    disabled_reason: Option<SkipReason>,
}

impl From<&TargetInfo> for Target {
    fn from(t: &TargetInfo) -> Self {
        Target {
            id: t.id.clone(),
            provider: t.provider.clone(),
            model: t.model.clone(),
            enabled: t.enabled,
            priority: t.priority,
            max_retries: t.max_retries,
            is_current: t.is_current,
            usage: t.usage_count,
            breaker: t.breaker.as_str(),
            breaker_opened: t.breaker_opened,
            last_failure: t.last_failure.map(rfc3339),
            last_recovery: t.last_recovery.map(rfc3339),
            disabled_reason: t.disabled_reason.clone(),
        }
    }
}

/// A target as `GET /admin/routes` lists it: also its admin override and since when its breaker is in its state.
#[derive(Debug, Serialize)]
pub struct ListedTarget {
    #[serde(flatten)]
    target: Target,
    #[serde(rename = "override")]
    admin_override: Option<Override>,
    breaker_since: Option<String>,
}

impl ListedTarget {
    /// `t` with its override on its route.
    pub fn new(t: &TargetInfo, admin_override: Option<Override>) -> Self {
        ListedTarget { target: Target::from(t), admin_override, breaker_since: t.breaker_since.map(rfc3339) }
    }
}

/// A route in `GET /admin/routes`.
#[derive(Debug, Serialize)]
pub struct ListedRoute {
    /// The route name.
    pub name: String,
    /// Its targets, in priority order.
    pub targets: Vec<ListedTarget>,
}

/// `GET /admin/routes`.
#[derive(Debug, Serialize)]
pub struct Routes {
    /// Every route.
    pub routes: Vec<ListedRoute>,
}

/// `GET /admin/stats`: this replica's counters, summed over routes, by route and by target.
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    total: u64,
    success: u64,
    failed: u64,
    cancelled: u64,
    fallbacks: u64,
    in_flight: u64,
    routes: BTreeMap<String, RouteStats>,
    targets: BTreeMap<String, TargetStats>,
}

impl Stats {
    /// Stats over `routes` (name, whether it is a direct route, its engine's snapshot).
    pub fn new<'a>(routes: impl IntoIterator<Item = (&'a str, bool, StatsSnapshot)>) -> Self {
        let mut stats = Stats::default();
        let mut targets: BTreeMap<String, TargetStatsSnapshot> = BTreeMap::new();
        for (name, direct, s) in routes {
            stats.total += s.total;
            stats.success += s.success;
            stats.failed += s.failed;
            stats.cancelled += s.cancelled;
            stats.fallbacks += s.fallbacks;
            stats.in_flight += s.in_flight;
            for (id, t) in &s.targets {
                add_target(targets.entry(id.clone()).or_default(), t);
            }
            stats.routes.insert(name.to_owned(), RouteStats::new(direct, &s));
        }
        stats.targets = targets.iter().map(|(id, t)| (id.clone(), TargetStats::from(t))).collect();
        stats
    }
}

/// One route's counters.
#[derive(Debug, Serialize)]
struct RouteStats {
    direct: bool,
    total: u64,
    success: u64,
    failed: u64,
    cancelled: u64,
    fallbacks: u64,
    in_flight: u64,
    last_fallback: Option<String>,
    targets: BTreeMap<String, TargetStats>,
}

impl RouteStats {
    fn new(direct: bool, s: &StatsSnapshot) -> Self {
        RouteStats {
            direct,
            total: s.total,
            success: s.success,
            failed: s.failed,
            cancelled: s.cancelled,
            fallbacks: s.fallbacks,
            in_flight: s.in_flight,
            last_fallback: s.last_fallback.map(rfc3339),
            targets: s.targets.iter().map(|(id, t)| (id.clone(), TargetStats::from(t))).collect(),
        }
    }
}

/// One target's counters; failures by error kind.
#[derive(Debug, Serialize)]
struct TargetStats {
    attempts: u64,
    successes: u64,
    failures: BTreeMap<&'static str, u64>,
    cancelled: u64,
    stream_failures: u64,
    usage: u64,
    skipped: u64,
    retries_refused: u64,
    hedges: u64,
    events_skipped: u64,
    mean_latency_ms: f64,
}

impl From<&TargetStatsSnapshot> for TargetStats {
    fn from(t: &TargetStatsSnapshot) -> Self {
        TargetStats {
            attempts: t.attempts,
            successes: t.successes,
            failures: t.failures.iter().map(|(kind, n)| (kind.as_str(), *n)).collect(),
            cancelled: t.cancelled,
            stream_failures: t.stream_failures,
            usage: t.usage_count,
            skipped: t.skipped,
            retries_refused: t.retries_refused,
            hedges: t.hedges,
            events_skipped: t.events_skipped,
            mean_latency_ms: t.mean_latency().as_secs_f64() * 1000.0,
        }
    }
}

/// Adds `t`'s counters to `into` (a target listed by several routes is summed over them).
fn add_target(into: &mut TargetStatsSnapshot, t: &TargetStatsSnapshot) {
    into.attempts += t.attempts;
    into.successes += t.successes;
    into.cancelled += t.cancelled;
    into.stream_failures += t.stream_failures;
    into.usage_count += t.usage_count;
    into.latency_total += t.latency_total;
    into.skipped += t.skipped;
    into.retries_refused += t.retries_refused;
    into.hedges += t.hedges;
    into.events_skipped += t.events_skipped;
    for (kind, n) in &t.failures {
        *into.failures.entry(*kind).or_default() += n;
    }
}
