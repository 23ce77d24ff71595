use std::time::Duration;

use switchyard::{Backoff, breaker::BreakerConfig, budget::BudgetConfig, hedge::HedgeConfig, manager::AfterCommit};

use super::*;

const SPEC_EXAMPLE: &str = r#"
[server]
listen = "127.0.0.1:8080"
api_keys = ["${SWITCHYARD_API_KEY}"]
admin_key = "${SWITCHYARD_ADMIN_KEY}"

[providers.anthropic]
kind = "anthropic"
api_key = "${ANTHROPIC_API_KEY}"
[providers.deepseek]
kind = "openai"
base_url = "https://api.deepseek.com/v1"
api_key = "${DEEPSEEK_API_KEY}"

[routes.default]
backoff = { kind = "linear", base = "500ms" }
timeouts = { connect = "5s", first_chunk = "20s", idle = "30s", total = "300s" }
targets = [
  { provider = "anthropic", model = "claude-sonnet-4-5", priority = 1, max_retries = 2, context_window = 200000 },
  { provider = "deepseek",  model = "deepseek-chat",     priority = 2, enabled = false, supports_tools = true },
]
"#;

fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
}

const ALL_KEYS: &[(&str, &str)] = &[
    ("SWITCHYARD_API_KEY", "client-key"),
    ("SWITCHYARD_ADMIN_KEY", "admin-key"),
    ("ANTHROPIC_API_KEY", "sk-ant"),
    ("DEEPSEEK_API_KEY", "sk-ds"),
];

fn parse(text: &str, vars: &'static [(&'static str, &'static str)]) -> Result<Config, ConfigError> {
    Config::parse(text, &env(vars), None)
}

#[test]
fn the_spec_example_parses_with_its_values_and_defaults() {
    let c = parse(SPEC_EXAMPLE, ALL_KEYS).unwrap();
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.server.api_keys, vec![Secret::new("client-key")]);
    assert!(!format!("{c:?}").contains("client-key"), "keys never show in Debug");
    assert_eq!(c.server.admin_key.as_ref().map(Secret::expose), Some("admin-key"));
    assert_eq!(c.server.max_body, 10 * 1024 * 1024);
    assert_eq!(c.providers["anthropic"].base_url, "https://api.anthropic.com");
    assert_eq!(c.providers["anthropic"].max_tokens, 4096);
    assert_eq!(c.providers["deepseek"].api_key.as_ref().map(Secret::expose), Some("sk-ds"));
    let route = &c.routes["default"];
    assert_eq!(route.backoff, Backoff::Linear { base: Duration::from_millis(500) });
    let t0 = &route.targets[0];
    assert_eq!((t0.id.as_str(), t0.priority, t0.max_retries, t0.enabled), ("anthropic/claude-sonnet-4-5", 1, 2, true));
    assert_eq!(t0.context_window, Some(200_000));
    assert_eq!(t0.timeouts.first_chunk, Duration::from_secs(20));
    let t1 = &route.targets[1];
    assert_eq!((t1.id.as_str(), t1.enabled, t1.max_retries), ("deepseek/deepseek-chat", false, 0));
}

#[test]
fn after_commit_is_error_or_continue() {
    let route = &parse(SPEC_EXAMPLE, ALL_KEYS).unwrap().routes["default"];
    assert_eq!(route.after_commit, AfterCommit::Error);
    let text = SPEC_EXAMPLE.replace("[routes.default]\n", "[routes.default]\nafter_commit = \"continue\"\n");
    assert_eq!(parse(&text, ALL_KEYS).unwrap().routes["default"].after_commit, AfterCommit::Continue);
    let text = SPEC_EXAMPLE.replace("[routes.default]\n", "[routes.default]\nafter_commit = \"retry\"\n");
    let err = parse(&text, ALL_KEYS).unwrap_err().to_string();
    assert!(err.starts_with("routes.default.after_commit: unknown variant `retry`"), "{err}");
}

#[test]
fn every_key_of_the_spec_example_is_accepted() {
    let text = SPEC_EXAMPLE.replace(
        "[routes.default]\n",
        "[routes.default]\ndeadline = \"60s\"\nbreaker = { failures = 5, cooldown = \"30s\" }\nhedge = { after = \"p95\" }\nafter_commit = \"error\"\n",
    );
    let route = &parse(&text, ALL_KEYS).unwrap().routes["default"];
    assert_eq!(route.hedge, Some(HedgeConfig::default()));
    assert_eq!(route.deadline, Some(Duration::from_secs(60)));
}

#[test]
fn unknown_keys_are_errors_naming_their_path() {
    let text = SPEC_EXAMPLE.replace("priority = 2,", "priority = 2, prio = 3,");
    let err = parse(&text, ALL_KEYS).unwrap_err().to_string();
    assert!(err.starts_with("routes.default.targets[1].prio: unknown field `prio`"), "{err}");

    let err = parse("[server]\nlisten_addr = \"x\"", ALL_KEYS).unwrap_err().to_string();
    assert!(err.starts_with("server.listen_addr: unknown field"), "{err}");
}

#[test]
fn an_unknown_provider_is_named() {
    let text = SPEC_EXAMPLE.replace("provider = \"deepseek\"", "provider = \"x\"");
    let err = parse(&text, ALL_KEYS).unwrap_err().to_string();
    assert!(err.starts_with("routes.default.targets[1].provider: unknown provider \"x\""), "{err}");
}

#[test]
fn bad_durations_name_the_key() {
    let text = SPEC_EXAMPLE.replace("idle = \"30s\"", "idle = \"thirty\"");
    let err = parse(&text, ALL_KEYS).unwrap_err().to_string();
    assert!(err.starts_with("routes.default.timeouts.idle: invalid duration \"thirty\""), "{err}");
}

#[test]
fn an_unset_variable_in_server_stops_start_up() {
    let err =
        parse(SPEC_EXAMPLE, &[("SWITCHYARD_ADMIN_KEY", "a"), ("ANTHROPIC_API_KEY", "k")]).unwrap_err().to_string();
    assert!(err.contains("server.api_keys[0]: environment variable $SWITCHYARD_API_KEY is not set"), "{err}");
}

#[test]
fn an_unset_provider_key_disables_that_provider_with_the_reason() {
    let vars = &[("SWITCHYARD_API_KEY", "c"), ("SWITCHYARD_ADMIN_KEY", "a"), ("ANTHROPIC_API_KEY", "k")];
    let c = parse(SPEC_EXAMPLE, vars).unwrap();
    let t1 = &c.routes["default"].targets[1];
    assert!(t1.unavailable.as_deref().unwrap().contains("$DEEPSEEK_API_KEY is not set"));
    assert!(c.routes["default"].targets[0].unavailable.is_none());
    assert!(c.readiness().iter().any(|(_, l)| l.contains("deepseek/deepseek-chat unavailable")));
}

#[test]
fn a_route_with_no_usable_target_is_an_error() {
    let vars = &[("SWITCHYARD_API_KEY", "c"), ("SWITCHYARD_ADMIN_KEY", "a")];
    let err = parse(SPEC_EXAMPLE, vars).unwrap_err().to_string();
    assert!(err.starts_with("routes.default: no target can serve"), "{err}");
}

#[test]
fn non_loopback_without_keys_is_refused_unless_allowed() {
    let base = "[providers.p]\nkind = \"openai\"\n[routes.r]\ntargets = [{ provider = \"p\", model = \"m\" }]\n";
    let err = parse(&format!("[server]\nlisten = \"0.0.0.0:8080\"\n{base}"), &[]).unwrap_err().to_string();
    assert!(err.starts_with("server.listen: 0.0.0.0:8080 is reachable"), "{err}");
    parse(&format!("[server]\nlisten = \"0.0.0.0:8080\"\nallow_unauthenticated = true\n{base}"), &[]).unwrap();
    parse(&format!("[server]\nlisten = \"0.0.0.0:8080\"\napi_keys = [\"k\"]\n{base}"), &[]).unwrap();
    let c = parse(base, &[]).unwrap();
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.routes["r"].targets[0].priority, 1);
    assert_eq!(
        c.routes["r"].backoff,
        Backoff::Exponential { base: Duration::from_millis(500), max: Duration::from_secs(30) }
    );
}

#[test]
fn route_timeouts_override_provider_timeouts_key_by_key() {
    let text = r#"
[providers.p]
kind = "openai"
timeouts = { connect = "1s", idle = "2s" }
[routes.r]
timeouts = { idle = "3s" }
targets = [{ provider = "p", model = "m" }]
"#;
    let t = parse(text, &[]).unwrap().routes["r"].targets[0].timeouts;
    assert_eq!(t.connect, Duration::from_secs(1));
    assert_eq!(t.idle, Duration::from_secs(3));
    assert_eq!(t.total, Duration::from_secs(300));
}

#[test]
fn duplicate_ids_and_empty_routes_are_errors() {
    let text = "[providers.p]\nkind = \"openai\"\n[routes.r]\ntargets = [{ provider = \"p\", model = \"m\" }, { provider = \"p\", model = \"m\" }]\n";
    let err = parse(text, &[]).unwrap_err().to_string();
    assert!(err.starts_with("routes.r.targets[1]: duplicate target id"), "{err}");
    let err = parse("[providers.p]\nkind = \"openai\"\n[routes.r]\n", &[]).unwrap_err().to_string();
    assert!(err.starts_with("routes.r.targets: a route needs at least one target"), "{err}");
    let err = parse("[providers.p]\nkind = \"grpc\"\n", &[]).unwrap_err().to_string();
    assert!(err.starts_with("providers.p.kind: unknown variant `grpc`"), "{err}");
}

#[test]
fn deadline_breaker_and_retry_budget_are_wired_with_defaults() {
    let text = SPEC_EXAMPLE.replace(
        "[routes.default]\n",
        "[routes.default]\ndeadline = \"60s\"\nbreaker = { failures = 3, cooldown = \"10s\" }\nkeepalive = \"15s\"\n",
    );
    let route = &parse(&text, ALL_KEYS).unwrap().routes["default"];
    assert_eq!(route.deadline, Some(Duration::from_secs(60)));
    assert_eq!(route.keepalive, Some(Duration::from_secs(15)));
    // No `hedge` key: the default hedge, after the p95 or 10 s until there are samples.
    assert_eq!(route.hedge, Some(HedgeConfig::default()));

    let ten = Duration::from_secs(10);
    for (value, expect) in [
        ("{ after = \"p95\" }", Some(HedgeConfig::p95_or(ten))),
        ("{ after = \"p95\", initial = \"3s\" }", Some(HedgeConfig::p95_or(Duration::from_secs(3)))),
        ("{ after = \"800ms\" }", Some(HedgeConfig::after(Duration::from_millis(800)))),
        ("false", None),
        ("true", Some(HedgeConfig::p95_or(ten))),
    ] {
        let text = SPEC_EXAMPLE.replace("[routes.default]\n", &format!("[routes.default]\nhedge = {value}\n"));
        assert_eq!(parse(&text, ALL_KEYS).unwrap().routes["default"].hedge, expect, "{value}");
    }
    for (value, error) in [
        ("\"p95\"", "routes.default.hedge: expected false or a table"),
        ("{ after = \"800ms\", initial = \"1s\" }", "routes.default.hedge.initial: only"),
        ("{ afer = \"p95\" }", "routes.default.hedge: unknown field `afer`"),
    ] {
        let text = SPEC_EXAMPLE.replace("[routes.default]\n", &format!("[routes.default]\nhedge = {value}\n"));
        let err = parse(&text, ALL_KEYS).unwrap_err().to_string();
        assert!(err.starts_with(error), "{value}: {err}");
    }
    let text = SPEC_EXAMPLE.replace("[routes.default]\n", "[routes.default]\nhedge = { after = \"p99\" }\n");
    let err = parse(&text, ALL_KEYS).unwrap_err().to_string();
    assert!(err.starts_with("routes.default.hedge.after: \"p99\" is neither"), "{err}");
    assert_eq!(route.breaker, Some(BreakerConfig::new(3, Duration::from_secs(10))));
    assert_eq!(route.retry_budget, Some(BudgetConfig::RETRY));

    let route = &parse(SPEC_EXAMPLE, ALL_KEYS).unwrap().routes["default"];
    assert_eq!(route.breaker, Some(BreakerConfig::default()));
    assert_eq!(route.deadline, None);

    let text = SPEC_EXAMPLE.replace(
        "[routes.default]\n",
        "[routes.default]\nbreaker = { enabled = false }\nretry_budget = { enabled = false }\n",
    );
    let route = &parse(&text, ALL_KEYS).unwrap().routes["default"];
    assert_eq!((route.breaker.clone(), route.retry_budget), (None, None));

    let text =
        SPEC_EXAMPLE.replace("[routes.default]\n", "[routes.default]\nbreaker = { failures = 3, cooldwn = \"1s\" }\n");
    let err = parse(&text, ALL_KEYS).unwrap_err().to_string();
    assert!(err.starts_with("routes.default.breaker.cooldwn: unknown field"), "{err}");
}

#[test]
fn connection_limits_have_defaults_and_name_their_key_when_wrong() {
    let c = parse(SPEC_EXAMPLE, ALL_KEYS).unwrap();
    assert_eq!(c.server.connections, crate::conn::ConnectionLimits::default());
    assert_eq!(c.server.connections.header_timeout, Duration::from_secs(10));
    assert_eq!(c.server.connections.body_timeout, Duration::from_secs(30));
    assert_eq!(c.server.connections.idle_timeout, Duration::from_secs(60));
    assert_eq!(c.server.connections.max_connections, None);

    let with = |lines: &str| SPEC_EXAMPLE.replace("[server]\n", &format!("[server]\n{lines}\n"));
    let text = with("header_timeout = \"2s\"\nbody_timeout = \"1m\"\nidle_timeout = \"500ms\"\nmax_connections = 4000");
    let limits = parse(&text, ALL_KEYS).unwrap().server.connections;
    assert_eq!(
        (limits.header_timeout, limits.body_timeout, limits.idle_timeout, limits.max_connections),
        (Duration::from_secs(2), Duration::from_secs(60), Duration::from_millis(500), Some(4000))
    );
    for (lines, expect) in [
        ("idle_timeout = \"0s\"", "server.idle_timeout: must be greater than 0"),
        ("body_timeout = \"soon\"", "server.body_timeout: invalid duration \"soon\""),
        ("max_connections = 0", "server.max_connections: must be greater than 0"),
        ("max_connections = -1", "server.max_connections: invalid value"),
        ("header_timeut = \"1s\"", "server.header_timeut: unknown field"),
    ] {
        let err = parse(&with(lines), ALL_KEYS).unwrap_err().to_string();
        assert!(err.starts_with(expect), "{lines}: {err}");
    }
}

#[test]
fn listen_takes_a_host_name() {
    let base = "[providers.p]\nkind = \"openai\"\n[routes.r]\ntargets = [{ provider = \"p\", model = \"m\" }]\n";
    let c = parse(&format!("[server]\nlisten = \"localhost:8081\"\n{base}"), &[]).unwrap();
    assert!(c.server.listen.ip().is_loopback());
    assert_eq!(c.server.listen.port(), 8081);
    let err = parse(&format!("[server]\nlisten = \"no such host!:8081\"\n{base}"), &[]).unwrap_err().to_string();
    assert!(err.starts_with("server.listen: invalid address"), "{err}");
}

#[test]
fn every_problem_is_reported_one_a_line() {
    let text = r#"
[server]
max_body = "0B"
[providers.a]
kind = "openai"
base_url = "http://"
[providers.b]
kind = "openai"
[routes.r]
targets = [{ provider = "a", model = "m" }]
[routes.s]
targets = []
[routes.t]
targets = [{ provider = "b", model = "m" }]
"#;
    let err = parse(text, &[]).unwrap_err().to_string();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(lines[0].starts_with("server.max_body"), "{err}");
    assert!(lines[1].starts_with("providers.a.base_url: \"http://\" is not a valid URL"), "{err}");
    assert!(lines[2].starts_with("routes.s.targets"), "{err}");
}

#[test]
fn continuation_defaults_per_kind_and_a_target_key_overrides_its_providers() {
    use switchyard::types::ContinuationMode;
    let mode = |c: &Config, i: usize| c.routes["default"].targets[i].continuation;
    let c = parse(SPEC_EXAMPLE, ALL_KEYS).unwrap();
    assert_eq!((mode(&c, 0), mode(&c, 1)), (ContinuationMode::Prefill, ContinuationMode::Instruction));

    let text = SPEC_EXAMPLE
        .replace("kind = \"openai\"\n", "kind = \"openai\"\ncontinuation = \"prefill\"\n")
        .replace("context_window = 200000 }", "context_window = 200000, continuation = \"none\" }");
    let c = parse(&text, ALL_KEYS).unwrap();
    assert_eq!((mode(&c, 0), mode(&c, 1)), (ContinuationMode::None, ContinuationMode::Prefill));

    let text =
        SPEC_EXAMPLE.replace("context_window = 200000 }", "context_window = 200000, continuation = \"resume\" }");
    let err = parse(&text, ALL_KEYS).unwrap_err().to_string();
    assert!(err.starts_with("routes.default.targets[0].continuation: unknown variant `resume`"), "{err}");
    let text = SPEC_EXAMPLE.replace("kind = \"openai\"\n", "kind = \"openai\"\ncontinuation = true\n");
    let err = parse(&text, ALL_KEYS).unwrap_err().to_string();
    assert!(err.starts_with("providers.deepseek.continuation: invalid type"), "{err}");
}

#[test]
fn storage_is_on_by_default_and_its_path_is_taken_from_the_config_files_folder() {
    let config = parse(SPEC_EXAMPLE, ALL_KEYS).unwrap();
    let storage = config.storage.unwrap();
    assert_eq!(storage.path, std::path::PathBuf::from("switchyard.db"));
    assert_eq!(
        (storage.retention, storage.queue, storage.log_bodies),
        (Duration::from_secs(7 * 86_400), 50_000, false)
    );

    let off = format!("{SPEC_EXAMPLE}\n[storage]\nenabled = false\n");
    assert!(parse(&off, ALL_KEYS).unwrap().storage.is_none());
    let set =
        format!("{SPEC_EXAMPLE}\n[storage]\npath = \"logs/x.db\"\nretention = \"1d\"\nlog_bodies = true\nqueue = 10\n");
    let storage = parse(&set, ALL_KEYS).unwrap().storage.unwrap();
    assert_eq!((storage.retention, storage.queue, storage.log_bodies), (Duration::from_secs(86_400), 10, true));
    let mut resolved = Some(storage);
    super::storage::relative_to(&mut resolved, std::path::Path::new("/etc/switchyard/switchyard.toml"));
    assert_eq!(resolved.unwrap().path, std::path::PathBuf::from("/etc/switchyard/logs/x.db"));

    let bad = format!("{SPEC_EXAMPLE}\n[storage]\nqueue = 0\nretension = \"1d\"\n");
    let e = parse(&bad, ALL_KEYS).unwrap_err().to_string();
    assert!(e.contains("storage") && e.contains("retension"), "{e}");
    let zero = format!("{SPEC_EXAMPLE}\n[storage]\nqueue = 0\n");
    assert!(parse(&zero, ALL_KEYS).unwrap_err().to_string().contains("storage.queue: must be at least 1"));
}

#[test]
fn each_problem_carries_its_key_path_as_data() {
    let text = SPEC_EXAMPLE
        .replace("[routes.default]\n", "[routes.default]\ndeadline = \"0s\"\n")
        .replace("[server]\n", "[server]\nmax_body = \"0B\"\n");
    let err = parse(&text, ALL_KEYS).unwrap_err();
    let paths: Vec<&str> = err.problems().iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["server.max_body", "routes.default.deadline"], "{err}");
    assert_eq!(err.problems()[1].message, "must be greater than 0");
    // Serde's own errors (unknown keys, wrong types) carry their path too.
    let text = SPEC_EXAMPLE.replace("[routes.default]\n", "[routes.default]\nbreaker = { cooldwn = \"1s\" }\n");
    let err = parse(&text, ALL_KEYS).unwrap_err();
    assert_eq!(err.problems()[0].path.as_str(), "routes.default.breaker.cooldwn", "{err}");
}

#[test]
fn a_conflict_carries_both_key_paths() {
    let text = format!(
        "{SPEC_EXAMPLE}[routes.other]\nbreaker = {{ failures = 2 }}\n\
         targets = [{{ provider = \"anthropic\", model = \"claude-sonnet-4-5\" }}]\n"
    );
    let err = parse(&text, ALL_KEYS).unwrap_err();
    let [problem] = err.problems() else { panic!("one problem expected: {err}") };
    assert_eq!(problem.path.as_str(), "routes.default.breaker");
    assert_eq!(problem.also.as_ref().map(KeyPath::as_str), Some("routes.other.breaker"));
    assert!(err.to_string().starts_with("routes.default.breaker and routes.other.breaker: target "), "{err}");
}

#[test]
fn read_from_a_file_every_line_names_the_file_and_the_paths_stay_data() {
    let dir = std::env::temp_dir().join(format!("switchyard-config-error-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "[server]\nmax_body = \"0B\"\n").unwrap();
    let err = Config::load(&file, None).unwrap_err();
    let text = err.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines.iter().all(|l| l.starts_with(&format!("{}: ", file.display()))), "{text}");
    let paths: Vec<&str> = err.problems().iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["server.max_body", "routes"]);
    let missing = Config::load(&dir.join("missing.toml"), None).unwrap_err();
    assert!(matches!(missing, ConfigError::Read { .. }) && missing.problems().is_empty(), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_provider_header_value_that_cannot_be_sent_is_refused_at_load_with_its_key_path_and_not_shown() {
    let text = "[providers.p]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\
                headers = { x-team = \"secret-one\\nInjected: yes\" }\n\
                [routes.r]\ntargets = [{ provider = \"p\", model = \"m\" }]\n";
    let err = parse(text, &[]).unwrap_err();
    let problem = &err.problems()[0];
    assert_eq!(problem.path.as_str(), "providers.p.headers.x-team", "{err}");
    assert!(!err.to_string().contains("secret-one"), "the value stays hidden: {err}");
    let fine = text.replace("\\nInjected: yes", "");
    assert!(parse(&fine, &[]).is_ok());
}

#[test]
fn an_api_key_with_a_line_end_is_refused_at_load_with_its_key_path_and_not_shown() {
    let text = "[providers.p]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\napi_key = \"${P_KEY}\"\n\
                [routes.r]\ntargets = [{ provider = \"p\", model = \"m\" }]\n";
    let err = parse(text, &[("P_KEY", "sk-secret-one\r\n")]).unwrap_err();
    assert_eq!(err.problems()[0].path.as_str(), "providers.p.api_key", "{err}");
    assert!(!err.to_string().contains("sk-secret-one"), "the key stays hidden: {err}");
    assert!(parse(text, &[("P_KEY", "sk-secret-one")]).is_ok());
}
