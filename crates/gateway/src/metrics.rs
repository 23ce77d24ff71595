//! Prometheus metrics, hand-rolled on atomics: the label sets (routes × targets) are fixed at
//! start-up, so recording is a few relaxed adds with no lock and no map lookup by string hash.
//!
//! Only HTTP-level counters live here (statuses, answers, tokens, latency). Calls, failures, fallbacks and
//! hedges are the engine's counters, rendered from its stats (`routes/metrics.rs`), so `/metrics` and
//! `/admin/stats` read the same numbers.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use switchyard::Usage;

/// Upper bounds of the histogram buckets, in seconds.
const BUCKETS: [f64; 14] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// HTTP statuses counted by name; anything else is counted as `other`.
const STATUSES: [u16; 15] = [200, 400, 401, 403, 404, 408, 413, 415, 422, 429, 431, 499, 502, 503, 504];

/// A latency histogram.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += n.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// Counters of one target within one route.
#[derive(Debug)]
pub struct TargetMetrics {
    id: String,
    served: AtomicU64,
    tokens_in: AtomicU64,
    tokens_out: AtomicU64,
    latency: Histogram,
    first_chunk: Histogram,
}

impl TargetMetrics {
    fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            served: AtomicU64::new(0),
            tokens_in: AtomicU64::new(0),
            tokens_out: AtomicU64::new(0),
            latency: Histogram::default(),
            first_chunk: Histogram::default(),
        }
    }
}

/// Counters of one route (or one directly addressed target).
#[derive(Debug)]
pub struct RouteMetrics {
    name: String,
    requests: [AtomicU64; STATUSES.len() + 1],
    in_flight: AtomicU64,
    targets: Vec<TargetMetrics>,
}

impl RouteMetrics {
    /// Counters for a route and its target ids.
    pub fn new(name: &str, target_ids: &[String]) -> Self {
        Self {
            name: name.to_owned(),
            requests: Default::default(),
            in_flight: AtomicU64::new(0),
            targets: target_ids.iter().map(|id| TargetMetrics::new(id)).collect(),
        }
    }

    /// True when it counts exactly these target ids (in any order).
    pub fn has_targets(&self, ids: &[String]) -> bool {
        self.targets.len() == ids.len() && ids.iter().all(|id| self.target(id).is_some())
    }

    fn target(&self, id: &str) -> Option<&TargetMetrics> {
        self.targets.iter().find(|t| t.id == id)
    }

    /// The route's name (or the target id of a direct route).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A request started; the guard counts its end (499 if it is dropped first: the client went away).
    pub fn started(self: &std::sync::Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Relaxed);
        InFlight { route: self.clone(), ended: false }
    }

    fn finished(&self, status: u16) {
        self.in_flight.fetch_sub(1, Relaxed);
        let slot = STATUSES.iter().position(|s| *s == status).unwrap_or(STATUSES.len());
        self.requests[slot].fetch_add(1, Relaxed);
    }

    /// A target answered: its tokens and the request's latency.
    pub fn served(&self, target: &str, usage: Usage, latency: Duration) {
        if let Some(t) = self.target(target) {
            t.served.fetch_add(1, Relaxed);
            t.tokens_in.fetch_add(usage.input_tokens, Relaxed);
            t.tokens_out.fetch_add(usage.output_tokens, Relaxed);
            t.latency.observe(latency);
        }
    }

    /// A stream committed: time from the request to its first content chunk.
    pub fn first_chunk(&self, target: &str, after: Duration) {
        if let Some(t) = self.target(target) {
            t.first_chunk.observe(after);
        }
    }
}

/// One request in flight on a route.
#[derive(Debug)]
pub struct InFlight {
    route: std::sync::Arc<RouteMetrics>,
    ended: bool,
}

impl InFlight {
    /// The route's counters.
    pub fn route(&self) -> &RouteMetrics {
        &self.route
    }

    /// The request ended with this status (for streams: when the stream ended).
    pub fn finish(mut self, status: u16) {
        self.ended = true;
        self.route.finished(status);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.ended {
            // 499: the client closed the connection before the answer (nginx's convention).
            self.route.finished(499);
        }
    }
}

/// Counters that outlive a config: requests refused before reaching a route, connections, reloads. The
/// routes' own counters belong to the running config (see [`Metrics::render`]).
#[derive(Debug, Default)]
pub struct Metrics {
    rejected: [AtomicU64; STATUSES.len() + 1],
    /// Open and refused client connections.
    pub connections: crate::conn::ConnectionCounters,
    /// Config reloads applied, and refused (the initial load is not counted).
    reloads: [AtomicU64; 2],
}

impl Metrics {
    /// A config reload was applied (`true`) or refused.
    pub fn reloaded(&self, ok: bool) {
        self.reloads[usize::from(!ok)].fetch_add(1, Relaxed);
    }

    /// A request refused before it reached a route (auth, unknown route, bad body…).
    pub fn rejected(&self, status: u16) {
        let slot = STATUSES.iter().position(|s| *s == status).unwrap_or(STATUSES.len());
        self.rejected[slot].fetch_add(1, Relaxed);
    }

    /// The Prometheus text exposition, with the counters of `routes` (the running config's).
    pub fn render(&self, routes: &[std::sync::Arc<RouteMetrics>]) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let status_label = |i: usize| STATUSES.get(i).map_or_else(|| "other".to_owned(), u16::to_string);

        out.push_str("# HELP switchyard_requests_total Requests answered, by route and HTTP status.\n");
        out.push_str("# TYPE switchyard_requests_total counter\n");
        for r in routes {
            for (i, n) in r.requests.iter().enumerate() {
                let n = n.load(Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "switchyard_requests_total{{route=\"{}\",status=\"{}\"}} {n}",
                        escape_label(&r.name),
                        status_label(i)
                    );
                }
            }
        }
        out.push_str("# HELP switchyard_rejected_total Requests refused before reaching a route, by HTTP status.\n");
        out.push_str("# TYPE switchyard_rejected_total counter\n");
        for (i, n) in self.rejected.iter().enumerate() {
            let n = n.load(Relaxed);
            if n > 0 {
                let _ = writeln!(out, "switchyard_rejected_total{{status=\"{}\"}} {n}", status_label(i));
            }
        }
        out.push_str("# HELP switchyard_in_flight Requests (and streams) being served now.\n");
        out.push_str("# TYPE switchyard_in_flight gauge\n");
        for r in routes {
            let _ = writeln!(
                out,
                "switchyard_in_flight{{route=\"{}\"}} {}",
                escape_label(&r.name),
                r.in_flight.load(Relaxed)
            );
        }
        // Each family's samples follow its own HELP/TYPE lines: interleaved samples are split by parsers into
        // untyped families.
        out.push_str("# HELP switchyard_served_total Requests answered, by route and the target that answered.\n");
        out.push_str("# TYPE switchyard_served_total counter\n");
        for r in routes {
            for t in &r.targets {
                let labels = format!("route=\"{}\",target=\"{}\"", escape_label(&r.name), escape_label(&t.id));
                let _ = writeln!(out, "switchyard_served_total{{{labels}}} {}", t.served.load(Relaxed));
            }
        }
        out.push_str(
            "# HELP switchyard_tokens_total Tokens, by route, target and direction (in: prompt, out: generated).\n",
        );
        out.push_str("# TYPE switchyard_tokens_total counter\n");
        for r in routes {
            for t in &r.targets {
                let labels = format!("route=\"{}\",target=\"{}\"", escape_label(&r.name), escape_label(&t.id));
                let _ =
                    writeln!(out, "switchyard_tokens_total{{{labels},direction=\"in\"}} {}", t.tokens_in.load(Relaxed));
                let _ = writeln!(
                    out,
                    "switchyard_tokens_total{{{labels},direction=\"out\"}} {}",
                    t.tokens_out.load(Relaxed)
                );
            }
        }
        out.push_str("# HELP switchyard_request_duration_seconds Time to a complete answer, by route and target.\n");
        out.push_str("# TYPE switchyard_request_duration_seconds histogram\n");
        for r in routes {
            for t in &r.targets {
                let labels = format!("route=\"{}\",target=\"{}\"", escape_label(&r.name), escape_label(&t.id));
                t.latency.render(&mut out, "switchyard_request_duration_seconds", &labels);
            }
        }
        out.push_str(
            "# HELP switchyard_first_chunk_seconds Time to the first content chunk of a stream, by route and target.\n",
        );
        out.push_str("# TYPE switchyard_first_chunk_seconds histogram\n");
        for r in routes {
            for t in &r.targets {
                let labels = format!("route=\"{}\",target=\"{}\"", escape_label(&r.name), escape_label(&t.id));
                t.first_chunk.render(&mut out, "switchyard_first_chunk_seconds", &labels);
            }
        }
        self.connections.render(&mut out);
        out.push_str(
            "# HELP switchyard_config_reloads_total Config reloads, by result (ok: applied; error: refused).\n",
        );
        out.push_str("# TYPE switchyard_config_reloads_total counter\n");
        for (result, n) in ["ok", "error"].iter().zip(&self.reloads) {
            let _ = writeln!(out, "switchyard_config_reloads_total{{result=\"{result}\"}} {}", n.load(Relaxed));
        }
        out
    }
}

/// Escapes a Prometheus label value.
pub fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_statuses_tokens_and_histograms() {
        let r = std::sync::Arc::new(RouteMetrics::new("default", &["a/x".into(), "b/y".into()]));
        let request = r.started();
        r.served("b/y", Usage { input_tokens: 3, output_tokens: 4 }, Duration::from_millis(20));
        request.finish(200);
        drop(r.started());
        let m = Metrics::default();
        m.rejected(401);
        m.reloaded(false);
        let text = m.render(&[r]);
        assert!(text.contains("switchyard_requests_total{route=\"default\",status=\"200\"} 1"), "{text}");
        assert!(text.contains("switchyard_tokens_total{route=\"default\",target=\"b/y\",direction=\"out\"} 4"));
        assert!(
            text.contains(
                "switchyard_request_duration_seconds_bucket{route=\"default\",target=\"b/y\",le=\"0.025\"} 1"
            )
        );
        assert!(text.contains("switchyard_rejected_total{status=\"401\"} 1"));
        assert!(text.contains("switchyard_in_flight{route=\"default\"} 0"));
        assert!(text.contains("switchyard_config_reloads_total{result=\"error\"} 1"), "{text}");
        assert!(text.contains("switchyard_config_reloads_total{result=\"ok\"} 0"), "{text}");
        assert!(text.contains("switchyard_requests_total{route=\"default\",status=\"499\"} 1"), "{text}");
    }
}
