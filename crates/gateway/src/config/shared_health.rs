//! One health record per target id across routes (SPEC-2 section 9): every route listing a target must
//! give it the same effective `breaker` and `retry_budget` settings, defaults included, and the same
//! limits (`rpm`, `tpm`, `max_concurrency`), which its health entry keeps for every route.

use std::collections::BTreeMap;

use super::Problem;
use super::route::RouteConfig;

/// The first two routes that give one target different `breaker` or `retry_budget` settings, as an
/// error naming both key paths.
pub(super) fn check(routes: &BTreeMap<String, RouteConfig>) -> Result<(), Problem> {
    // Target id -> the first route listing it, and the target's index there.
    let mut first: BTreeMap<&str, (&RouteConfig, usize)> = BTreeMap::new();
    for route in routes.values() {
        for (i, target) in route.targets.iter().enumerate() {
            let Some((earlier, j)) = first.get(target.id.as_str()).copied() else {
                first.insert(&target.id, (route, i));
                continue;
            };
            let theirs = &earlier.targets[j].limits;
            let limit = if theirs.rpm != target.limits.rpm {
                Some("rpm")
            } else if theirs.tpm != target.limits.tpm {
                Some("tpm")
            } else if theirs.max_concurrency != target.limits.max_concurrency {
                Some("max_concurrency")
            } else {
                None
            };
            if let Some(key) = limit {
                return Err(Problem::between(
                    format!("routes.{}.targets[{j}].{key}", earlier.name),
                    format!("routes.{}.targets[{i}].{key}", route.name),
                    format!(
                        "target {:?} is in both routes with different limits; its limits are shared by every route, \
                         so give both the same {key}",
                        target.id
                    ),
                ));
            }
            let key = if earlier.breaker != route.breaker {
                "breaker"
            } else if earlier.retry_budget != route.retry_budget {
                "retry_budget"
            } else {
                continue;
            };
            return Err(Problem::between(
                format!("routes.{}.{key}", earlier.name),
                format!("routes.{}.{key}", route.name),
                format!(
                    "target {:?} is in both routes with different {key} settings (defaults included); its health is \
                     shared by every route, so give both routes the same {key}",
                    target.id
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const PROVIDER: &str = "[providers.p]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n";

    fn parse(routes: &str) -> Result<Config, String> {
        Config::parse(&format!("{PROVIDER}{routes}"), &|_| None, None).map_err(|e| e.to_string())
    }

    #[test]
    fn two_routes_giving_one_target_different_breakers_is_an_error_naming_both_paths() {
        let err = parse(
            "[routes.a]\ntargets = [{ provider = \"p\", model = \"m\" }]\n\
             [routes.b]\nbreaker = { failures = 3 }\ntargets = [{ provider = \"p\", model = \"m\" }]\n",
        )
        .unwrap_err();
        assert!(err.starts_with("routes.a.breaker and routes.b.breaker: target \"p/m\""), "{err}");
    }

    #[test]
    fn a_default_retry_budget_differs_from_a_disabled_one() {
        let err = parse(
            "[routes.a]\nretry_budget = { enabled = false }\ntargets = [{ provider = \"p\", model = \"m\" }]\n\
             [routes.b]\ntargets = [{ provider = \"p\", model = \"m\" }]\n",
        )
        .unwrap_err();
        assert!(err.starts_with("routes.a.retry_budget and routes.b.retry_budget:"), "{err}");
    }

    #[test]
    fn two_routes_giving_one_target_different_limits_is_an_error_naming_both_paths() {
        let err = parse(
            "[routes.a]\ntargets = [{ provider = \"p\", model = \"m\", rpm = 60 }]\n\
             [routes.b]\ntargets = [{ provider = \"p\", model = \"n\" }, { provider = \"p\", model = \"m\" }]\n",
        )
        .unwrap_err();
        assert!(err.starts_with("routes.a.targets[0].rpm and routes.b.targets[1].rpm: target \"p/m\""), "{err}");
    }

    #[test]
    fn same_effective_settings_written_differently_are_fine() {
        parse(
            "[routes.a]\nbreaker = { failures = 5, cooldown = \"30s\" }\ntargets = [{ provider = \"p\", model = \"m\" }]\n\
             [routes.b]\ntargets = [{ provider = \"p\", model = \"m\" }, { provider = \"p\", model = \"n\" }]\n\
             [routes.c]\nbreaker = { failures = 2 }\ntargets = [{ provider = \"p\", model = \"other\" }]\n",
        )
        .unwrap();
    }
}
