//! `GET /metrics`: Prometheus text, no key needed.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::response::IntoResponse;
use switchyard::{breaker::BreakerState, stats::TargetStatsSnapshot};

use crate::metrics::escape_label;
use crate::state::{AppState, Snapshot};

/// The exposition: the request counters, then each target's circuit breaker read from its engine.
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let running = state.current();
    let mut text = state.metrics.render(&running.route_metrics());
    if let Some(shared) = &state.shared {
        text.push_str(
            "# HELP switchyard_state_backend_up Whether the shared state backend (Redis) is reachable: 1 or 0.\n",
        );
        text.push_str("# TYPE switchyard_state_backend_up gauge\n");
        let _ = writeln!(text, "switchyard_state_backend_up {}", u8::from(shared.up()));
    }
    text.push_str(
        "# HELP switchyard_breaker_state Circuit breaker per route and target: 0 closed, 1 open, 2 half-open.\n",
    );
    text.push_str("# TYPE switchyard_breaker_state gauge\n");
    for route in running.routes.values().chain(running.direct.values()) {
        for t in route.manager.list_models() {
            let value = match t.breaker {
                BreakerState::Closed => 0,
                BreakerState::Open => 1,
                BreakerState::HalfOpen => 2,
            };
            let _ = writeln!(
                text,
                "switchyard_breaker_state{{route=\"{}\",target=\"{}\"}} {value}",
                crate::metrics::escape_label(&route.name),
                crate::metrics::escape_label(&t.id)
            );
        }
    }
    engine_counters(&running, &mut text);
    if let Some(storage) = state.log.storage() {
        text.push_str(
            "# HELP switchyard_log_dropped_total Request log rows dropped (queue full or database trouble).\n",
        );
        text.push_str("# TYPE switchyard_log_dropped_total counter\n");
        let _ = writeln!(text, "switchyard_log_dropped_total {}", storage.dropped());
    }
    ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
}

/// A counter family: its name, its help text, and how to read it from a target's stats.
type Family = (&'static str, &'static str, fn(&TargetStatsSnapshot) -> u64);

/// The engine's counters, the same numbers `/admin/stats` shows: fallbacks per route; calls, failures by
/// kind, broken streams, skips, refused retries, hedges and skipped stream events per target.
fn engine_counters(running: &Snapshot, text: &mut String) {
    let stats: Vec<_> = running
        .routes
        .values()
        .chain(running.direct.values())
        .map(|r| (escape_label(&r.name), r.manager.stats()))
        .collect();
    family_header(
        text,
        "switchyard_fallbacks_total",
        "Requests that fell back: a target failed and another was called.",
    );
    for (route, s) in &stats {
        let _ = writeln!(text, "switchyard_fallbacks_total{{route=\"{route}\"}} {}", s.fallbacks);
    }
    family_header(text, "switchyard_attempts_total", "Upstream calls, by route, target and outcome.");
    for (route, s) in &stats {
        for (id, t) in &s.targets {
            let labels = format!("route=\"{route}\",target=\"{}\"", escape_label(id));
            let outcomes = [("success", t.successes), ("failure", t.failure_count()), ("cancelled", t.cancelled)];
            for (outcome, n) in outcomes {
                let _ = writeln!(text, "switchyard_attempts_total{{{labels},outcome=\"{outcome}\"}} {n}");
            }
        }
    }
    family_header(text, "switchyard_failures_total", "Failed upstream calls, by route, target and error kind.");
    for (route, s) in &stats {
        for (id, t) in &s.targets {
            for (kind, n) in &t.failures {
                let _ = writeln!(
                    text,
                    "switchyard_failures_total{{route=\"{route}\",target=\"{}\",kind=\"{kind}\"}} {n}",
                    escape_label(id)
                );
            }
        }
    }
    let families: [Family; 5] = [
        (
            "switchyard_stream_failures_total",
            "Streams from a target that failed after their first content chunk was sent.",
            |t| t.stream_failures,
        ),
        (
            "switchyard_target_skipped_total",
            "Times a target was passed over without a call (breaker open, disabled, cannot serve the request).",
            |t| t.skipped,
        ),
        (
            "switchyard_retries_refused_total",
            "Retries a target's retry budget refused (the request fell back instead).",
            |t| t.retries_refused,
        ),
        ("switchyard_hedges_total", "Hedged calls started to a target while another was still working.", |t| t.hedges),
        ("switchyard_stream_events_skipped_total", "Malformed events skipped inside otherwise healthy streams.", |t| {
            t.events_skipped
        }),
    ];
    for (name, help, value) in families {
        family_header(text, name, help);
        for (route, s) in &stats {
            for (id, t) in &s.targets {
                let _ = writeln!(text, "{name}{{route=\"{route}\",target=\"{}\"}} {}", escape_label(id), value(t));
            }
        }
    }
}

fn family_header(text: &mut String, name: &str, help: &str) {
    let _ = writeln!(text, "# HELP {name} {help}");
    let _ = writeln!(text, "# TYPE {name} counter");
}
