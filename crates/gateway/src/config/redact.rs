//! Which values of a config tree are secrets, and the tree without them.

use serde_json::Value;

/// What a secret is replaced by.
pub(super) const REDACTED: &str = "<redacted>";

/// Keys whose value (a string, or each string of a list) is a secret wherever they appear: provider and
/// client keys (`api_key`, `server.api_keys`, `server.keys.NAME.key`), the admin key, and a URL that may
/// carry a password (`state.url`).
const SECRET_KEYS: [&str; 5] = ["api_key", "api_keys", "admin_key", "key", "url"];

/// `tree` with every secret replaced by [`REDACTED`]. Provider `headers` values are secrets too (they
/// usually carry a token); their names are kept. A `base_url` keeps all but its userinfo and query values.
pub(super) fn redacted(tree: &Value) -> Value {
    let mut tree = tree.clone();
    redact(&mut tree, &mut Vec::new());
    tree
}

fn redact(value: &mut Value, path: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                path.push(key.clone());
                if is_secret(path) {
                    hide(child);
                } else if key == "base_url"
                    && let Value::String(url) = child
                {
                    // A base URL is shown, but not the userinfo or query values it may carry credentials in.
                    *url = switchyard_providers::redact_url(url);
                } else {
                    redact(child, path);
                }
                path.pop();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| redact(item, path)),
        _ => {}
    }
}

/// True for a secret's key path (`url` counts only under `[state]`; a provider's `base_url` is shown with its
/// credentials redacted).
fn is_secret(path: &[String]) -> bool {
    let Some(key) = path.last() else { return false };
    let under = |section: &str| path.first().is_some_and(|first| first == section);
    match key.as_str() {
        "url" => under("state"),
        k if SECRET_KEYS.contains(&k) => true,
        _ => path.len() >= 2 && path[path.len() - 2] == "headers",
    }
}

/// Replaces every string (or number) below `value` by [`REDACTED`].
fn hide(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(hide),
        Value::Object(map) => map.values_mut().for_each(hide),
        other => *other = Value::String(REDACTED.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_secret_is_replaced_and_everything_else_kept() {
        let tree = json!({
            "server": { "api_keys": ["S-c1", "S-c2"], "admin_key": "S-adm", "keys": { "team": { "key": "S-k", "rpm": 5 } } },
            "providers": {
                "p": { "api_key": "S-sk", "base_url": "http://x", "headers": { "x-token": "S-t" } },
                "q": { "base_url": "https://u:S-bpw@y/v1?key=S-bk" },
            },
            "state": { "url": "redis://:S-pw@h" },
        });
        let shown = redacted(&tree).to_string();
        assert!(!shown.contains("S-"), "{shown}");
        for secret in ["S-c1", "S-c2", "S-adm", "S-k", "S-sk", "S-t", "S-pw", "S-bpw", "S-bk"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        for kept in ["http://x", "x-token", "\"rpm\":5", "https://<redacted>@y/v1?key=<redacted>"] {
            assert!(shown.contains(kept), "{kept} missing from {shown}");
        }
    }
}
