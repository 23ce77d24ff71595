//! Keys that parse but whose feature (SPEC section 6) is not built yet.
//!
//! They are refused here, in one place, so a config never silently loses behaviour it asked for.
//! When a feature lands, delete its line below and wire the key through.

use super::route::RouteSection;

/// Errors naming the first route key whose feature is not available yet.
pub(super) fn reject_unbuilt(name: &str, route: &RouteSection) -> Result<(), String> {
    // Built and wired: `deadline`, `breaker`, `retry_budget`, `hedge` (the engine has them) and `keepalive`
    // (the gateway).
    let unbuilt: [(&str, bool); 1] = [("after_commit", route.after_commit.is_some())];
    match unbuilt.iter().find(|(_, set)| *set) {
        Some((key, _)) => Err(format!(
            "routes.{name}.{key}: not supported yet by this build (SPEC section 6); remove the key to start"
        )),
        None => Ok(()),
    }
}
