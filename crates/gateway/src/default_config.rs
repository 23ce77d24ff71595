//! The built-in configuration used when there is no `--config` and no `./switchyard.toml`:
//! the seed's three models for whichever keys are set, or simulated providers when none is.

/// The three seed providers: (name, kind, base URL, key variable, model, max_retries).
const SEED: [(&str, &str, &str, &str, &str, u32); 3] = [
    ("anthropic", "anthropic", "https://api.anthropic.com", "ANTHROPIC_API_KEY", "claude-sonnet-4-5", 2),
    ("openai", "openai", "https://api.openai.com/v1", "OPENAI_API_KEY", "gpt-4o", 1),
    ("deepseek", "openai", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", "deepseek-chat", 0),
];

/// The variables that select real providers.
pub const KEY_VARS: [&str; 3] = ["ANTHROPIC_API_KEY", "OPENAI_API_KEY", "DEEPSEEK_API_KEY"];

/// Where the simulated providers live when no key is set.
#[derive(Debug, Clone)]
pub struct Simulated {
    /// `http://127.0.0.1:PORT` of the in-process simulated upstream.
    pub url: String,
    /// The key it expects.
    pub api_key: String,
}

/// True when at least one real provider key is set.
pub fn any_key_set(lookup: &dyn Fn(&str) -> Option<String>) -> bool {
    KEY_VARS.iter().any(|v| lookup(v).is_some_and(|k| !k.is_empty()))
}

/// The default config as TOML. With `simulated`, every provider points at the simulated upstream;
/// otherwise each reads its key variable, and those whose variable is unset are disabled with that reason.
/// `SWITCHYARD_API_KEY` and `SWITCHYARD_ADMIN_KEY` become the client and admin keys when set.
pub fn builtin(lookup: &dyn Fn(&str) -> Option<String>, simulated: Option<&Simulated>) -> String {
    let mut toml = String::from("[server]\nlisten = \"127.0.0.1:8080\"\n");
    if lookup("SWITCHYARD_API_KEY").is_some() {
        toml.push_str("api_keys = [\"${SWITCHYARD_API_KEY}\"]\n");
    }
    if lookup("SWITCHYARD_ADMIN_KEY").is_some() {
        toml.push_str("admin_key = \"${SWITCHYARD_ADMIN_KEY}\"\n");
    }
    let mut targets = Vec::new();
    for (priority, (name, kind, base_url, var, model, retries)) in SEED.iter().enumerate() {
        let (base_url, key) = match simulated {
            Some(sim) => {
                let base = if *kind == "openai" { format!("{}/v1", sim.url) } else { sim.url.clone() };
                (base, sim.api_key.clone())
            }
            None => ((*base_url).to_owned(), format!("${{{var}}}")),
        };
        toml.push_str(&format!(
            "\n[providers.{name}]\nkind = \"{kind}\"\nbase_url = \"{base_url}\"\napi_key = \"{key}\"\n"
        ));
        targets.push(format!(
            "  {{ provider = \"{name}\", model = \"{model}\", priority = {}, max_retries = {retries} }},",
            priority + 1
        ));
    }
    toml.push_str("\n[routes.default]\nbackoff = { kind = \"linear\", base = \"500ms\" }\ntargets = [\n");
    toml.push_str(&targets.join("\n"));
    toml.push_str("\n]\n");
    toml
}

/// The start-up banner for simulated mode.
pub fn simulated_banner(sim: &Simulated, listen: &str) -> String {
    format!(
        "\n  Switchyard is serving SIMULATED models: none of ANTHROPIC_API_KEY, OPENAI_API_KEY, DEEPSEEK_API_KEY is set.\n  \
         Answers come from the built-in simulated upstream at {}, not from a real model.\n  \
         To use real models: export one or more of those keys and restart, or write a switchyard.toml\n  \
         (see the README's config reference) and run `switchyard serve --config switchyard.toml`.\n  \
         Try it: curl http://{listen}/v1/chat/completions -H 'content-type: application/json' \\\n    \
         -d '{{\"model\":\"default\",\"messages\":[{{\"role\":\"user\",\"content\":\"hello\"}}]}}'\n",
        sim.url
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn providers_without_keys_are_disabled_with_the_reason() {
        let lookup = |v: &str| (v == "OPENAI_API_KEY").then(|| "sk".to_owned());
        let c = Config::parse(&builtin(&lookup, None), &lookup, None).unwrap();
        let targets = &c.routes["default"].targets;
        let ids: Vec<&str> = targets.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["anthropic/claude-sonnet-4-5", "openai/gpt-4o", "deepseek/deepseek-chat"]);
        assert!(targets[0].unavailable.as_deref().unwrap().contains("$ANTHROPIC_API_KEY is not set"));
        assert!(targets[1].unavailable.is_none());
        assert_eq!(c.providers["openai"].api_key.as_ref().map(|k| k.expose()), Some("sk"));
        assert!(c.server.admin_key.is_none());
    }

    #[test]
    fn no_key_points_all_three_at_the_simulator() {
        let lookup = |v: &str| (v == "SWITCHYARD_ADMIN_KEY").then(|| "adm".to_owned());
        assert!(!any_key_set(&lookup));
        let sim = Simulated { url: "http://127.0.0.1:5555".into(), api_key: "sim-key".into() };
        let c = Config::parse(&builtin(&lookup, Some(&sim)), &lookup, None).unwrap();
        let t = &c.routes["default"].targets;
        assert_eq!(t.len(), 3);
        assert_eq!((t[0].id.as_str(), t[0].max_retries, t[0].priority), ("anthropic/claude-sonnet-4-5", 2, 1));
        assert_eq!(c.providers["deepseek"].base_url, "http://127.0.0.1:5555/v1");
        assert_eq!(c.providers["anthropic"].base_url, "http://127.0.0.1:5555");
        assert_eq!(c.server.admin_key.as_ref().map(|k| k.expose()), Some("adm"));
    }
}
