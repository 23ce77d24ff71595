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
