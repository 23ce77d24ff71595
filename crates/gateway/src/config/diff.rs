//! The key paths at which two config trees differ, and which of them only a restart applies.

use serde_json::Value;

use super::Config;

/// Key paths (and their sections) that a running gateway cannot change: the listener, the connection
/// layer's limits and timeouts, the shared state link and the request log's database are set up once.
const RESTART_ONLY: [&str; 10] = [
    "server.listen",
    "server.max_connections",
    "server.max_body",
    "server.header_timeout",
    "server.body_timeout",
    "server.idle_timeout",
    "server.shutdown_timeout",
    "server.watch_config",
    "state",
    "storage",
];

/// The key paths (`routes.default.targets[1].model`) whose values differ from `old` to `new`, sorted.
pub fn changed_paths(old: &Config, new: &Config) -> Vec<String> {
    paths_between(old.file.tree(), new.file.tree())
}

/// The key paths at which two config trees (e.g. two redacted ones) differ, sorted.
pub fn paths_between(old: &Value, new: &Value) -> Vec<String> {
    let mut paths = Vec::new();
    differ(old, new, String::new(), &mut paths);
    paths
}

/// True when `path` changes only at the next restart.
pub fn needs_restart(path: &str) -> bool {
    RESTART_ONLY.iter().any(|p| path == *p || path.starts_with(&format!("{p}.")) || path.starts_with(&format!("{p}[")))
}

/// Pushes onto `out` every path below `at` where `a` and `b` differ (a path missing on one side counts once).
fn differ(a: &Value, b: &Value, at: String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort_unstable();
            keys.dedup();
            for key in keys {
                let path = if at.is_empty() { key.clone() } else { format!("{at}.{key}") };
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => differ(x, y, path, out),
                    _ => out.push(path),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let path = format!("{at}[{i}]");
                match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) => differ(x, y, path, out),
                    _ => out.push(path),
                }
            }
        }
        (a, b) if a != b => out.push(at),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn differing_leaves_and_missing_keys_are_named_by_path() {
        let a = json!({ "routes": { "a": { "targets": [{ "model": "x" }, { "model": "y" }] }, "gone": {} } });
        let b = json!({ "routes": { "a": { "targets": [{ "model": "y" }, { "model": "y" }, {}] }, "new": {} } });
        let mut out = Vec::new();
        differ(&a, &b, String::new(), &mut out);
        assert_eq!(out, ["routes.a.targets[0].model", "routes.a.targets[2]", "routes.gone", "routes.new"]);
        assert!(needs_restart("server.listen") && needs_restart("state.url") && needs_restart("storage"));
        assert!(!needs_restart("server.api_keys[0]") && !needs_restart("statements"));
    }
}
