//! `GET /metrics`: Prometheus text, no key needed.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::response::IntoResponse;
use switchyard::BreakerState;

use crate::state::AppState;

/// The exposition: the request counters, then each target's circuit breaker read from its engine.
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let mut text = state.metrics.render();
    text.push_str(
        "# HELP switchyard_breaker_state Circuit breaker per route and target: 0 closed, 1 open, 2 half-open.\n",
    );
    text.push_str("# TYPE switchyard_breaker_state gauge\n");
    for route in state.routes.values().chain(state.direct.values()) {
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
    ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
}
