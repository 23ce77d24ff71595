//! `${VAR}` expansion over the parsed TOML tree, remembering where an unset variable was used.

use super::Problem;

/// A variable used in the config that the environment does not set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unset {
    /// Key path where it was used, e.g. `providers.deepseek.api_key`.
    pub(super) path: String,
    /// The variable's name.
    pub(super) var: String,
}

/// Replaces every `${VAR}` in every string of `value` using `lookup`; returns the variables that were unset
/// (their `${VAR}` is replaced by an empty string, and the caller decides what that means for the key).
pub(super) fn expand(value: &mut toml::Value, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Unset>, Problem> {
    let mut unset = Vec::new();
    walk(value, "", lookup, &mut unset)?;
    Ok(unset)
}

fn walk(
    value: &mut toml::Value,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<Unset>,
) -> Result<(), Problem> {
    match value {
        toml::Value::String(s) if s.contains("${") => *s = expand_str(s, path, lookup, unset)?,
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &format!("{path}[{i}]"), lookup, unset)?;
            }
        }
        toml::Value::Table(table) => {
            for (key, item) in table.iter_mut() {
                let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                walk(item, &child, lookup, unset)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn expand_str(
    s: &str,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<Unset>,
) -> Result<String, Problem> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(Problem::at(path, format!("unterminated \"${{\" in {s:?}; write ${{VAR}}")));
        };
        let var = &after[..end];
        if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Problem::at(path, format!("invalid variable name {var:?}; use letters, digits and _")));
        }
        match lookup(var) {
            Some(v) => out.push_str(&v),
            None => unset.push(Unset { path: path.to_owned(), var: var.to_owned() }),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_and_reports_unset_with_path() {
        let mut v: toml::Value = toml::from_str("[a]\nk = \"x-${SET}-${NOPE}\"\nl = [\"${NOPE}\"]").unwrap();
        let unset = expand(&mut v, &|n| (n == "SET").then(|| "1".to_owned())).unwrap();
        assert_eq!(v["a"]["k"].as_str(), Some("x-1-"));
        assert_eq!(unset.len(), 2);
        assert_eq!(unset[0], Unset { path: "a.k".into(), var: "NOPE".into() });
        assert_eq!(unset[1].path, "a.l[0]");
    }

    #[test]
    fn bad_syntax_is_an_error_naming_the_key() {
        let mut v: toml::Value = toml::from_str("k = \"${OPEN\"").unwrap();
        assert!(expand(&mut v, &|_| None).unwrap_err().to_string().starts_with("k: unterminated"));
    }
}
