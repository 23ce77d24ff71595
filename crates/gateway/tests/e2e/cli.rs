//! The binary: `check` names the bad key path, `--help` everywhere, the admin commands against a live gateway.

use std::process::Command;

use crate::common::*;

fn switchyard(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_switchyard")).args(args).env("NO_COLOR", "1").output().unwrap()
}

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("switchyard-test-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_validates_without_serving_and_names_the_key_path() {
    let good = temp_file(
        "good.toml",
        "[providers.p]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n[routes.r]\ntargets = [{ provider = \"p\", model = \"m\" }]\n",
    );
    let out = switchyard(&["check", "--config", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("route r: p/m ready"), "{stdout}");

    let bad = temp_file(
        "bad.toml",
        "[providers.p]\nkind = \"openai\"\n[routes.r]\ntargets = [{ provider = \"p\", model = \"m\" }, { provider = \"x\", model = \"m\" }]\n",
    );
    let out = switchyard(&["check", "--config", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("routes.r.targets[1].provider: unknown provider \"x\""), "{stderr}");

    let unbuilt = temp_file(
        "unbuilt.toml",
        "[providers.p]\nkind = \"openai\"\n[routes.r]\nafter_commit = \"splice\"\ntargets = [{ provider = \"p\", model = \"m\" }]\n",
    );
    let out = switchyard(&["check", "--config", unbuilt.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("routes.r.after_commit: unknown variant `splice`"));
    for path in [good, bad, unbuilt] {
        let _ = std::fs::remove_file(path);
    }
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["check", "--help"],
        vec!["demo", "--help"],
        vec!["chat", "--help"],
        vec!["models", "--help"],
        vec!["models", "disable", "--help"],
        vec!["models", "set-priority", "--help"],
        vec!["stats", "--help"],
        vec!["mock-upstream", "--help"],
    ] {
        let out = switchyard(&args);
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage:"), "{args:?}");
    }
}

#[tokio::test]
async fn models_and_stats_commands_drive_a_running_gateway() {
    let h = start("[routes.main]\ntargets = [{ provider = \"an\", model = \"claude-ok\" }, { provider = \"oa\", model = \"gpt-ok\" }]").await;
    let url = h.gateway.url();
    let run = move |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            switchyard(&args)
        })
    };
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        v.extend(["--url".to_owned(), url.clone(), "--admin-key".to_owned(), ADMIN_KEY.to_owned()]);
        v
    };
    let out = run(args(&["models", "disable", "an/claude-ok"])).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("route main: an/claude-ok is now disabled"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("direct requests: an/claude-ok is now disabled"));
    assert_eq!(h.chat("main", "hi").await.target(), "oa/gpt-ok");

    let out = run(args(&["models", "list"])).await.unwrap();
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    let line = table.lines().find(|l| l.contains("an/claude-ok")).unwrap();
    assert!(line.contains(" no ") && line.contains("disabled"), "{table}");

    let out = run(args(&["stats"])).await.unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 total, 1 succeeded"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let out = run(vec![
        "chat".into(),
        "--url".into(),
        url.clone(),
        "--api-key".into(),
        CLIENT_KEY.into(),
        "--route".into(),
        "main".into(),
        "hello there".into(),
    ])
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("gpt-ok answering"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("answered by oa/gpt-ok after 1 attempt"));

    let out =
        run(vec!["stats".into(), "--url".into(), url.clone(), "--admin-key".into(), "wrong".into()]).await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("401") && !stderr.contains("wrong"), "{stderr}");
}

#[tokio::test]
async fn check_probe_calls_every_target_and_reports_failures() {
    let upstream = switchyard_sim::Upstream::start(switchyard_sim::UpstreamConfig::default()).await.unwrap();
    let text = format!(
        "{}\n[routes.r]\ntargets = [{{ provider = \"oa\", model = \"gpt-ok\" }}, {{ provider = \"an\", model = \"claude-500\" }}]\n",
        base_config(&upstream, "")
    );
    let path = temp_file("probe.toml", &text);
    let arg = path.to_str().unwrap().to_owned();
    let out = tokio::task::spawn_blocking(move || switchyard(&["check", "--config", &arg, "--probe"])).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("probe oa/gpt-ok: ok"), "{stdout}");
    assert!(stdout.contains("probe an/claude-500: FAILED"), "{stdout}");
    assert_eq!(upstream.calls("gpt-ok"), 1);
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn check_and_serve_refuse_the_same_bad_base_urls_naming_the_key_and_check_lists_every_problem() {
    let text = r#"
[providers.spaced]
kind = "openai"
base_url = "http://exa mple:99999/v1"
[providers.empty]
kind = "anthropic"
base_url = "http://"
[routes.a]
targets = [{ provider = "spaced", model = "m" }]
[routes.b]
targets = [{ provider = "empty", model = "m" }]
[routes.c]
targets = [{ provider = "nope", model = "m" }]
"#;
    let path = temp_file("badurls.toml", text);
    let arg = path.to_str().unwrap().to_owned();
    let check = {
        let arg = arg.clone();
        tokio::task::spawn_blocking(move || switchyard(&["check", "--config", &arg])).await.unwrap()
    };
    let serve =
        tokio::task::spawn_blocking(move || switchyard(&["serve", "--config", &arg, "--listen", "127.0.0.1:0"]))
            .await
            .unwrap();
    for (what, out) in [("check", &check), ("serve", &serve)] {
        assert!(!out.status.success(), "{what} must refuse");
        let stderr = String::from_utf8_lossy(&out.stderr);
        for key in ["providers.spaced.base_url", "providers.empty.base_url", "routes.c.targets[0].provider"] {
            assert!(stderr.contains(key), "{what} names {key}:\n{stderr}");
        }
    }
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn demo_numbers_say_what_they_count() {
    let out = tokio::task::spawn_blocking(|| switchyard(&["demo"])).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    // Each fallback count names its scope, so "0" and "1" do not read as a contradiction.
    assert!(stdout.contains("Route `default`: 3 requests, success rate 100.00%, 0 with a fallback"), "{stdout}");
    assert!(
        stdout
            .contains("Whole gateway (routes default, flaky and failing): 5 requests, 5 succeeded, 1 with a fallback"),
        "{stdout}"
    );
    assert!(stdout.contains("Route `default`:\nTotal requests: 2"), "{stdout}");
}

/// The binary with its output piped (no terminal) and no colour preference set.
fn piped(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    command.args(args).env_remove("NO_COLOR").env_remove("RUST_LOG");
    command
}

#[test]
fn cli_errors_are_plain_lines_without_colour_when_not_a_terminal() {
    let bad =
        temp_file("plain.toml", "[providers.p]\nkind = \"openai\"\nbase_url = \"http://\"\n[routes.r]\ntargets = []\n");
    let out = piped(&["serve", "--config", bad.to_str().unwrap()]).output().unwrap();
    let _ = std::fs::remove_file(&bad);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains('\u{1b}'), "no escape codes: {stderr:?}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "one line per problem: {stderr}");
    for line in lines {
        assert!(line.starts_with("error: ") && line.contains("plain.toml: "), "{stderr}");
    }
}

#[test]
fn each_start_up_warning_is_logged_once_without_colour() {
    use std::io::BufRead;
    let mut child = piped(&["serve", "--listen", "127.0.0.1:0"])
        .env("ANTHROPIC_API_KEY", "placeholder")
        .env_remove("OPENAI_API_KEY")
        .env_remove("DEEPSEEK_API_KEY")
        .env_remove("SWITCHYARD_API_KEY")
        .env_remove("SWITCHYARD_ADMIN_KEY")
        .current_dir(std::env::temp_dir())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = String::new();
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.contains("listening on") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!log.contains('\u{1b}'), "no escape codes: {log:?}");
    for target in ["openai/gpt-4o", "deepseek/deepseek-chat"] {
        assert_eq!(log.matches(&format!("{target} unavailable")).count(), 1, "{target} once:\n{log}");
        assert_eq!(log.lines().filter(|l| l.contains(target)).count(), 1, "{target} once:\n{log}");
    }
}

#[test]
fn help_does_not_show_unset_variables_and_mock_upstream_lists_its_words() {
    let out = piped(&["stats", "--help"]).env_remove("SWITCHYARD_URL").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("SWITCHYARD_URL") && !help.contains("SWITCHYARD_URL="), "{help}");
    let out = piped(&["mock-upstream", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains(switchyard_sim::DEFAULT_API_KEY), "{help}");
    for (words, _) in switchyard_sim::FAULT_WORDS {
        assert!(help.contains(words), "{words} in:\n{help}");
    }
    // The default port is the one the README shows.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    assert!(help.contains("[default: 127.0.0.1:9099]") && readme.contains("mock-upstream` (default `127.0.0.1:9099`)"));
}

#[tokio::test]
async fn a_403_from_a_gateway_without_an_admin_key_says_how_to_start_one() {
    let h = start_with("", "[routes.main]\ntargets = [{ provider = \"oa\", model = \"gpt-ok\" }]").await;
    let url = h.gateway.url();
    let out = tokio::task::spawn_blocking(move || piped(&["stats", "--url", &url]).output().unwrap()).await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: ") && stderr.lines().count() == 1, "{stderr}");
    assert!(stderr.contains("403") && stderr.contains("SWITCHYARD_ADMIN_KEY=<key> switchyard serve"), "{stderr}");
}

#[test]
fn check_reports_two_routes_giving_one_target_different_breakers() {
    let conflict = temp_file(
        "conflict.toml",
        "[providers.p]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\
         [routes.a]\ntargets = [{ provider = \"p\", model = \"m\" }]\n\
         [routes.b]\nbreaker = { failures = 2, cooldown = \"5s\" }\ntargets = [{ provider = \"p\", model = \"m\" }]\n",
    );
    let out = switchyard(&["check", "--config", conflict.to_str().unwrap()]);
    let _ = std::fs::remove_file(conflict);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("routes.a.breaker and routes.b.breaker"), "{stderr}");
}
