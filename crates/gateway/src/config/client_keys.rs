//! `[server.keys.NAME]`: named client keys, each with optional `rpm`, `tpm` and the `routes` it may use.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::Problem;
use super::route::RouteConfig;
use super::secret::Secret;

/// `[server.keys.NAME]` as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientKeySection {
    /// The secret clients send (`"${VAR}"` reads it from the environment).
    pub key: Secret,
    /// Requests in any 60 s window; absent: unlimited.
    #[serde(default)]
    pub rpm: Option<u64>,
    /// Tokens in any 60 s window (prompt estimate plus `max_tokens` reserved, settled from usage).
    #[serde(default)]
    pub tpm: Option<u64>,
    /// Routes (and target ids) this key may use; absent: all.
    #[serde(default)]
    pub routes: Option<Vec<String>>,
}

/// A validated named client key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientKeyConfig {
    /// The name (`NAME` of `[server.keys.NAME]`); logged and recorded instead of the key.
    pub name: String,
    /// The secret.
    pub key: Secret,
    /// Requests in any 60 s window.
    pub rpm: Option<u64>,
    /// Tokens in any 60 s window.
    pub tpm: Option<u64>,
    /// The routes and target ids this key may name as `model`; `None`: all. A listed route brings its
    /// targets' ids.
    pub routes: Option<BTreeSet<String>>,
}

impl ClientKeySection {
    /// Checks everything but `routes`, which needs the routes (see [`allowed_models`]).
    pub(super) fn validate(self, name: &str) -> Result<ClientKeyConfig, Problem> {
        let path = format!("server.keys.{name}");
        if self.key.expose().trim().is_empty() {
            return Err(Problem::at(format!("{path}.key"), format!("empty key; set a value or remove [{path}]")));
        }
        for (field, value) in [("rpm", self.rpm), ("tpm", self.tpm)] {
            if value == Some(0) {
                return Err(Problem::at(
                    format!("{path}.{field}"),
                    "must be greater than 0; remove the key for no limit",
                ));
            }
        }
        Ok(ClientKeyConfig {
            name: name.to_owned(),
            key: self.key,
            rpm: self.rpm,
            tpm: self.tpm,
            // Filled by `allowed_models` once the routes are known.
            routes: self.routes.map(|r| r.into_iter().collect()),
        })
    }
}

/// Two keys (named or in `api_keys`) with the same secret: which key a request used would be ambiguous.
pub(super) fn check_distinct(api_keys: &[Secret], keys: &[ClientKeyConfig]) -> Result<(), Problem> {
    for (i, key) in keys.iter().enumerate() {
        if let Some(other) = keys[..i].iter().find(|k| k.key == key.key) {
            return Err(Problem::at(
                format!("server.keys.{}.key", key.name),
                format!("the same secret as server.keys.{}.key; give every key its own secret", other.name),
            ));
        }
        if let Some(j) = api_keys.iter().position(|k| *k == key.key) {
            return Err(Problem::at(
                format!("server.keys.{}.key", key.name),
                format!("the same secret as server.api_keys[{j}]; give every key its own secret"),
            ));
        }
    }
    Ok(())
}

/// Replaces each key's listed `routes` by every model name it may use: the listed routes, their targets'
/// ids, and listed target ids. An entry naming no route or target is an error naming the key path; one naming a
/// `declared` route that failed its own checks is not (that route's error says what to fix).
pub(super) fn allowed_models(
    keys: &mut [ClientKeyConfig],
    routes: &BTreeMap<String, RouteConfig>,
    declared: &[String],
) -> Result<(), Vec<Problem>> {
    let ids: BTreeSet<&str> = routes.values().flat_map(|r| r.targets.iter().map(|t| t.id.as_str())).collect();
    let mut problems = Vec::new();
    for key in keys.iter_mut() {
        let Some(listed) = &key.routes else { continue };
        if listed.is_empty() {
            problems.push(Problem::at(
                format!("server.keys.{}.routes", key.name),
                "an empty list allows no route; list routes, or remove the key for all",
            ));
        }
        let mut allowed = BTreeSet::new();
        for entry in listed {
            if let Some(route) = routes.get(entry) {
                allowed.extend(route.targets.iter().map(|t| t.id.clone()));
            } else if !ids.contains(entry.as_str()) && !declared.contains(entry) {
                let known: Vec<&str> = declared.iter().map(String::as_str).collect();
                problems.push(Problem::at(
                    format!("server.keys.{}.routes", key.name),
                    format!("{entry:?} names no route or target id; routes are: {}", known.join(", ")),
                ));
            }
            allowed.insert(entry.clone());
        }
        key.routes = Some(allowed);
    }
    if problems.is_empty() { Ok(()) } else { Err(problems) }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use crate::config::Config;

    const ROUTES: &str = "[providers.p]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\
                          [routes.default]\ntargets = [{ provider = \"p\", model = \"m\" }]\n\
                          [routes.big]\ntargets = [{ provider = \"p\", model = \"n\" }]\n";

    fn parse(server: &str, vars: &[(&str, &str)]) -> Result<Config, String> {
        let lookup = |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned());
        Config::parse(&format!("[server]\n{server}\n{ROUTES}"), &lookup, None).map_err(|e| e.to_string())
    }

    #[test]
    fn a_named_key_reads_its_secret_from_the_environment_and_its_routes_bring_their_target_ids() {
        let server = "[server.keys.team-a]\nkey = \"${TEAM_A_KEY}\"\nrpm = 600\ntpm = 200000\nroutes = [\"default\"]\n\
                      [server.keys.ops]\nkey = \"ops-secret\"\nroutes = [\"p/n\"]\n\
                      [server.keys.all]\nkey = \"all-secret\"\n";
        let c = parse(server, &[("TEAM_A_KEY", "team-a-secret")]).unwrap();
        let team = c.server.keys.iter().find(|k| k.name == "team-a").unwrap();
        assert_eq!((team.key.expose(), team.rpm, team.tpm), ("team-a-secret", Some(600), Some(200_000)));
        let allowed: Vec<&str> = team.routes.iter().flatten().map(String::as_str).collect();
        assert_eq!(allowed, ["default", "p/m"]);
        let ops = c.server.keys.iter().find(|k| k.name == "ops").unwrap();
        assert_eq!(ops.routes.iter().flatten().collect::<Vec<_>>(), ["p/n"], "a target id counts as a route");
        assert_eq!(c.server.keys.iter().find(|k| k.name == "all").unwrap().routes, None);
        assert!(!format!("{c:?}").contains("secret"), "keys never show in Debug");
    }

    #[test]
    fn an_unknown_route_is_an_error_naming_the_key_path() {
        let err = parse("[server.keys.team-a]\nkey = \"k\"\nroutes = [\"default\", \"nope\"]\n", &[]).unwrap_err();
        assert!(err.starts_with("server.keys.team-a.routes: \"nope\" names no route or target id"), "{err}");
        assert!(err.contains("routes are: big, default"), "{err}");
        let err = parse("[server.keys.team-a]\nkey = \"k\"\nroutes = []\n", &[]).unwrap_err();
        assert!(err.starts_with("server.keys.team-a.routes: an empty list"), "{err}");
        // A listed route that is broken itself is reported once, by its own error.
        let broken = "[server.keys.team-a]\nkey = \"k\"\nroutes = [\"bad\"]\n\
                      [routes.bad]\ntargets = [{ provider = \"nope\", model = \"m\" }]\n";
        let err = parse(broken, &[]).unwrap_err();
        assert!(err.contains("routes.bad") && !err.contains("server.keys"), "{err}");
    }

    #[test]
    fn two_keys_with_one_secret_are_an_error_that_does_not_show_it() {
        let err = parse("[server.keys.a]\nkey = \"s3cret\"\n[server.keys.b]\nkey = \"s3cret\"\n", &[]).unwrap_err();
        assert!(err.starts_with("server.keys.b.key: the same secret as server.keys.a.key"), "{err}");
        let err = parse("api_keys = [\"x\", \"s3cret\"]\n[server.keys.a]\nkey = \"s3cret\"\n", &[]).unwrap_err();
        assert!(err.starts_with("server.keys.a.key: the same secret as server.api_keys[1]"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn bad_values_name_their_key_path_and_an_unset_variable_stops_start_up() {
        let err = parse("[server.keys.a]\nkey = \"k\"\nrpm = 0\n", &[]).unwrap_err();
        assert!(err.starts_with("server.keys.a.rpm: must be greater than 0"), "{err}");
        let err = parse("[server.keys.a]\nkey = \"  \"\n", &[]).unwrap_err();
        assert!(err.starts_with("server.keys.a.key: empty key"), "{err}");
        let err = parse("[server.keys.a]\nkey = \"k\"\nburst = 3\n", &[]).unwrap_err();
        assert!(err.contains("server.keys.a") && err.contains("burst"), "{err}");
        let err = parse("[server.keys.a]\nkey = \"${UNSET_KEY}\"\n", &[]).unwrap_err();
        assert!(err.contains("server.keys.a.key: environment variable $UNSET_KEY is not set"), "{err}");
    }

    #[test]
    fn named_keys_alone_allow_listening_off_loopback() {
        parse("listen = \"0.0.0.0:8080\"\n[server.keys.a]\nkey = \"k\"\n", &[]).unwrap();
    }
}
