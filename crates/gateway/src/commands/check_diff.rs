//! `switchyard check --diff`: what reloading a file would change in a running gateway, from its
//! `/admin/config`. Both sides are compared with their secrets redacted, so a changed key shows only as a
//! different hash.

use std::fmt::Write;

use serde_json::Value;

use crate::config::{Config, needs_restart, paths_between};

/// The report: one line per key path that would change (restart-only ones marked), or why none would.
pub fn lines(new: &Config, running: &Value, url: &str) -> String {
    let mut out = String::new();
    let paths = paths_between(&running["config"], &new.file.redacted());
    let same_file = running["hash"].as_str() == Some(new.file.hash.as_str());
    let _ = writeln!(out, "diff against the config running at {url}:");
    for path in &paths {
        let note = if needs_restart(path) { " (applies only after a restart)" } else { "" };
        let _ = writeln!(out, "  ~ {path}{note}");
    }
    let summary = match (paths.len(), same_file) {
        (0, true) => "no change: the gateway runs this very file".to_owned(),
        (0, false) => "no key changes, but the file differs: a secret (shown redacted) or only formatting".to_owned(),
        (n, _) => format!("{n} key path(s) would change; apply with POST /admin/reload or SIGHUP"),
    };
    let _ = writeln!(out, "  {summary}");
    out
}
