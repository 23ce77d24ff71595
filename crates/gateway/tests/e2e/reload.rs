//! SPEC-2 section 13: config changes without a restart. `POST /admin/reload`, `SIGHUP` and `watch_config`
//! swap a new config in atomically; unchanged targets keep health, stats and overrides; an invalid file
//! changes nothing; `/admin/config` shows the running config without its secrets.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchyard::SharedModel;
use switchyard_gateway::config::{Config, ProviderConfig, TargetConfig};
use switchyard_gateway::overrides::OverrideSink;
use switchyard_gateway::server::Running;
use switchyard_gateway::state::{AppState, HttpProviders, ModelFactory};
use switchyard_gateway::storage::{Storage, restore_overrides};
use switchyard_sim::{Upstream, UpstreamConfig};

use crate::common::*;

/// A gateway started from a config file it can reload, and that file.
struct FileHarness {
    h: Harness,
    path: PathBuf,
    /// `[server]` and `[providers]`, which every version of the file keeps.
    base: String,
}

impl FileHarness {
    /// Writes `routes` (after the base sections) as the new file content.
    fn write(&self, routes: &str) {
        std::fs::write(&self.path, format!("{}\n{routes}", self.base)).unwrap();
    }

    async fn reload(&self) -> Reply {
        self.h.admin_post("/admin/reload").await
    }
}

/// An upstream (streams paced by `chunk_delay`) and a gateway reading `routes` from a file, with client and
/// admin keys, plus `server_extra` in `[server]`.
async fn start_file(routes: &str, server_extra: &str, chunk_delay: Duration) -> FileHarness {
    let upstream = Upstream::start(UpstreamConfig { chunk_delay, ..UpstreamConfig::default() }).await.unwrap();
    let server = format!("api_keys = [\"{CLIENT_KEY}\"]\nadmin_key = \"{ADMIN_KEY}\"\n{server_extra}");
    let base = format!("{}\n[storage]\nenabled = false\n", base_config(&upstream, &server));
    let path = temp_folder("reload").join("switchyard.toml");
    std::fs::write(&path, format!("{base}\n{routes}")).unwrap();
    let state = reloadable_state(&path);
    let gateway = Running::start(state, "127.0.0.1:0", Duration::from_secs(5)).await.unwrap();
    let h = Harness { upstream, gateway, http: reqwest::Client::new(), live_streams: Arc::default() };
    FileHarness { h, path, base }
}

fn reloadable_state(path: &Path) -> Arc<AppState> {
    let config = Config::load(path, None).unwrap();
    let factory = Arc::new(RefusingBad(HttpProviders::default()));
    Arc::new(AppState::build(&config, factory.as_ref()).unwrap().reloadable(path.to_path_buf(), None, factory))
}

/// The real factory, except that provider `bad` cannot be built: every mistake in a file that would make a real
/// build fail is refused when the file loads, so a build failure needs a factory that refuses.
struct RefusingBad(HttpProviders);

impl ModelFactory for RefusingBad {
    fn build(&self, provider: &ProviderConfig, target: &TargetConfig) -> Result<SharedModel, String> {
        if provider.name == "bad" {
            return Err("refused by the test".to_owned());
        }
        self.0.build(provider, target)
    }

    fn retain_used(&self, config: &Config) {
        self.0.retain_used(config);
    }
}

/// sha256 in hex, computed here (not with the gateway's helper) so a wrong hash cannot pass.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn reloads(metrics: &str, result: &str) -> u64 {
    let prefix = format!("switchyard_config_reloads_total{{result=\"{result}\"}} ");
    metrics.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap().parse().unwrap()
}

const ROUTES: &str = r#"
[routes.a]
targets = [{ provider = "oa", model = "gpt-ok" }, { provider = "an", model = "claude-ok" }]
[routes.b]
targets = [{ provider = "oa", model = "gpt-ok" }]
"#;

// Route a reordered, b removed, c added.
const CHANGED: &str = r#"
[routes.a]
targets = [{ provider = "an", model = "claude-ok" }, { provider = "oa", model = "gpt-ok" }]
[routes.c]
targets = [{ provider = "an", model = "claude-ok" }]
"#;

#[tokio::test]
async fn admin_reload_adds_removes_and_reorders_and_says_what_changed() {
    let f = start_file(ROUTES, "", Duration::ZERO).await;
    assert_eq!(f.h.chat("a", "hi").await.target(), "oa/gpt-ok");
    assert_eq!(f.h.chat("c", "hi").await.status, 404);

    f.write(CHANGED);
    let r = f.reload().await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["reloaded"], true);
    let changed: Vec<&str> = r.body["changed"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert_eq!(
        changed,
        [
            "routes.a.targets[0].model",
            "routes.a.targets[0].provider",
            "routes.a.targets[1].model",
            "routes.a.targets[1].provider",
            "routes.b",
            "routes.c"
        ]
    );
    assert_eq!(r.body["ignored"], json!([]));
    let file_hash = sha256_hex(&std::fs::read(&f.path).unwrap());
    assert_eq!(r.body["hash"], file_hash);

    assert_eq!(f.h.chat("a", "hi").await.target(), "an/claude-ok", "the new order serves");
    assert_eq!(f.h.chat("c", "hi").await.status, 200, "the new route serves");
    let gone = f.h.chat("b", "hi").await;
    assert_eq!(gone.status, 404, "a removed route is unknown: {:?}", gone.body);
    let models = f.h.http.get(f.h.url("/v1/models")).bearer_auth(CLIENT_KEY).send().await.unwrap();
    let models: Value = models.json().await.unwrap();
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"c") && !ids.contains(&"b"), "{ids:?}");
    let metrics = f.h.metrics().await;
    assert_eq!((reloads(&metrics, "ok"), reloads(&metrics, "error")), (1, 0));
}

#[tokio::test]
async fn an_invalid_file_changes_nothing_and_answers_400_with_the_key_path() {
    let f = start_file(ROUTES, "", Duration::ZERO).await;
    let before = f.h.admin_get("/admin/config").await.body;
    f.write("[routes.a]\ntargets = [{ provider = \"nope\", model = \"m\" }]\n");
    let r = f.reload().await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("routes.a.targets[0].provider"), "{message}");
    // The same text as `switchyard check`.
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["check", "--config", f.path.to_str().unwrap()])
        .output()
        .unwrap();
    let check_text = String::from_utf8_lossy(&check.stderr);
    assert!(check_text.starts_with(message), "check said:\n{check_text}\nreload said:\n{message}");

    assert_eq!(f.h.chat("a", "hi").await.status, 200, "the old config still serves");
    assert_eq!(f.h.chat("b", "hi").await.status, 200);
    assert_eq!(f.h.admin_get("/admin/config").await.body["hash"], before["hash"]);
    let metrics = f.h.metrics().await;
    assert_eq!((reloads(&metrics, "ok"), reloads(&metrics, "error")), (0, 1));
}

const HEALTH: &str = r#"
[routes.a]
breaker = { failures = 2, cooldown = "60s" }
targets = [
  { provider = "an", model = "claude-500", max_retries = 1 },
  { provider = "oa", model = "gpt-ok" },
  { provider = "an", model = "claude-ok" },
]
"#;

const HEALTH_PLUS: &str = r#"
[routes.z]
targets = [{ provider = "oa", model = "gpt-new" }]
"#;

const HEALTH_WITHOUT_SICK: &str = r#"
[routes.a]
breaker = { failures = 2, cooldown = "60s" }
targets = [{ provider = "oa", model = "gpt-ok" }, { provider = "an", model = "claude-ok" }]
"#;

fn target<'a>(routes: &'a Value, route: &str, id: &str) -> &'a Value {
    let route = routes["routes"].as_array().unwrap().iter().find(|r| r["name"] == route).unwrap();
    route["targets"].as_array().unwrap().iter().find(|t| t["id"] == id).unwrap()
}

#[tokio::test]
async fn unchanged_targets_keep_health_stats_and_overrides_and_a_removed_then_readded_one_starts_fresh() {
    let f = start_file(HEALTH, "", Duration::ZERO).await;
    assert_eq!(f.h.chat("a", "hi").await.target(), "oa/gpt-ok");
    let patch = f.h.admin_patch("/admin/routes/a/targets/an%2Fclaude-ok", &json!({ "enabled": false })).await;
    assert_eq!(patch.status, 200, "{:?}", patch.body);
    let stats = f.h.admin_get("/admin/stats").await.body;
    assert_eq!(stats["routes"]["a"]["targets"]["an/claude-500"]["attempts"], 2, "{stats}");

    f.write(&format!("{HEALTH}{HEALTH_PLUS}"));
    let r = f.reload().await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let routes = f.h.admin_get("/admin/routes").await.body;
    assert_eq!(target(&routes, "a", "an/claude-500")["breaker"], "open", "health survives: {routes}");
    assert_eq!(target(&routes, "a", "an/claude-ok")["enabled"], false, "the override still wins over the file");
    let stats = f.h.admin_get("/admin/stats").await.body;
    assert_eq!(stats["routes"]["a"]["targets"]["an/claude-500"]["attempts"], 2, "stats survive: {stats}");
    assert_eq!(stats["routes"]["a"]["targets"]["oa/gpt-ok"]["successes"], 1, "{stats}");
    let r = f.h.chat("a", "hi").await;
    assert_eq!((r.target(), r.attempts()), ("oa/gpt-ok", "1"), "the open breaker is still skipped");
    assert_eq!(f.h.upstream.calls("claude-500"), 2);

    f.write(HEALTH_WITHOUT_SICK);
    assert_eq!(f.reload().await.status, 200);
    f.write(HEALTH);
    assert_eq!(f.reload().await.status, 200);
    let routes = f.h.admin_get("/admin/routes").await.body;
    assert_eq!(target(&routes, "a", "an/claude-500")["breaker"], "closed", "re-added: fresh health: {routes}");
    let stats = f.h.admin_get("/admin/stats").await.body;
    assert_eq!(stats["routes"]["a"]["targets"]["an/claude-500"]["attempts"], 0, "re-added: fresh stats: {stats}");
    assert_eq!(stats["routes"]["a"]["targets"]["oa/gpt-ok"]["successes"], 2, "kept all along: {stats}");
}

#[tokio::test]
async fn admin_config_shows_the_running_config_with_no_secret() {
    let secrets = ["sk-provider-secret", "hdr-secret-value", "client-secret-1", "admin-secret-2"];
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\napi_keys = [\"{}\"]\nadmin_key = \"{}\"\n\
         [providers.p]\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"{}\"\nheaders = {{ x-extra = \"{}\" }}\n\
         [routes.r]\ntargets = [{{ provider = \"p\", model = \"m\" }}]\n[storage]\nenabled = false\n",
        secrets[2],
        secrets[3],
        upstream.openai_base_url(),
        secrets[0],
        secrets[1]
    );
    let path = temp_folder("reload-config").join("switchyard.toml");
    std::fs::write(&path, &text).unwrap();
    let gateway = Running::start(reloadable_state(&path), "127.0.0.1:0", Duration::from_secs(5)).await.unwrap();
    let response =
        reqwest::Client::new().get(format!("{}/admin/config", gateway.url())).bearer_auth(secrets[3]).send().await;
    let response = response.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    for secret in secrets {
        assert!(!body.contains(secret), "{secret} shows in {body}");
    }
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["config"]["providers"]["p"]["api_key"], "<redacted>");
    assert_eq!(body["config"]["providers"]["p"]["headers"]["x-extra"], "<redacted>");
    assert_eq!(body["config"]["routes"]["r"]["targets"][0]["model"], "m", "the rest is shown");
    assert_eq!(body["hash"], sha256_hex(text.as_bytes()));
    assert!(body["loaded_at"].as_str().unwrap().ends_with('Z'), "{body}");
}

/// A client sending `stream` or plain requests to route a until `stop`; returns the failures it saw.
async fn client(h: Arc<FileHarness>, stream: bool, stop: Arc<AtomicBool>) -> (usize, Vec<String>) {
    let mut sent = 0;
    let mut failures = Vec::new();
    // Bounded: the reloads end long before.
    for _ in 0..100_000 {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        sent += 1;
        let body = json!({ "model": "a", "stream": stream, "messages": [{ "role": "user", "content": "hi" }] });
        if stream {
            let r = h.h.stream("/v1/chat/completions", &body).await;
            if r.status != 200 || !r.text.contains("[DONE]") || r.text.contains("\"error\"") {
                failures.push(format!("stream {}: {}", r.status, r.text));
            }
        } else {
            let r = h.h.post("/v1/chat/completions", &body).await;
            if r.status != 200 {
                failures.push(format!("{}: {}", r.status, r.body));
            }
        }
    }
    (sent, failures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_reloads_under_concurrent_load_fail_no_request() {
    // Paced streams, so some are in flight across each reload.
    let f = Arc::new(start_file(ROUTES, "", Duration::from_millis(2)).await);
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..8).map(|i| tokio::spawn(client(f.clone(), i % 2 == 0, stop.clone()))).collect();
    for i in 0..20 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        f.write(if i % 2 == 0 { CHANGED } else { ROUTES });
        let r = f.reload().await;
        assert_eq!(r.status, 200, "reload {i}: {:?}", r.body);
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    stop.store(true, Ordering::SeqCst);
    let mut total = 0;
    for c in clients {
        let (sent, failures) = c.await.unwrap();
        assert!(failures.is_empty(), "{} failed of {sent}: {:?}", failures.len(), &failures[..failures.len().min(3)]);
        assert!(sent > 0);
        total += sent;
    }
    assert!(total >= 8, "{total}");
    assert_eq!(reloads(&f.h.metrics().await, "ok"), 20);
}

/// Waits (bounded, generously) until route `model` answers 200.
async fn until_served(h: &Harness, model: &str) {
    for _ in 0..100 {
        if h.chat(model, "hi").await.status == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("route {model} never served");
}

#[tokio::test]
async fn watch_config_applies_a_symlink_swap_and_an_editor_style_rename() {
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    let server = format!("api_keys = [\"{CLIENT_KEY}\"]\nadmin_key = \"{ADMIN_KEY}\"\nwatch_config = true");
    let base = format!("{}\n[storage]\nenabled = false\n", base_config(&upstream, &server));
    let dir = temp_folder("reload-watch");
    let path = dir.join("switchyard.toml");
    std::fs::write(dir.join("v1.toml"), format!("{base}\n{ROUTES}")).unwrap();
    std::os::unix::fs::symlink(dir.join("v1.toml"), &path).unwrap();
    let state = reloadable_state(&path);
    switchyard_gateway::config_watch::spawn(Arc::downgrade(&state), path.clone());
    let gateway = Running::start(state, "127.0.0.1:0", Duration::from_secs(5)).await.unwrap();
    let h = Harness { upstream, gateway, http: reqwest::Client::new(), live_streams: Arc::default() };
    assert_eq!(h.chat("c", "hi").await.status, 404);

    // A symlink swap (as Kubernetes ConfigMaps do): a new link renamed over the old.
    std::fs::write(dir.join("v2.toml"), format!("{base}\n{CHANGED}")).unwrap();
    std::os::unix::fs::symlink(dir.join("v2.toml"), dir.join("link.tmp")).unwrap();
    std::fs::rename(dir.join("link.tmp"), &path).unwrap();
    until_served(&h, "c").await;
    assert_eq!(h.chat("b", "hi").await.status, 404);

    // An editor writing a new file and renaming it over the old.
    std::fs::write(dir.join("edit.tmp"), format!("{base}\n{ROUTES}")).unwrap();
    std::fs::rename(dir.join("edit.tmp"), &path).unwrap();
    until_served(&h, "b").await;
    assert_eq!(reloads(&h.metrics().await, "ok"), 2);
}

#[tokio::test]
async fn sighup_reloads_a_running_process_with_a_key_from_the_environment() {
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    let dir = temp_folder("reload-sighup");
    let path = dir.join("switchyard.toml");
    let file = |key: &str, routes: &str| {
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[providers.oa]\nkind = \"openai\"\nbase_url = \"{}\"\n\
             api_key = \"{key}\"\n{routes}\n[storage]\nenabled = false\n",
            upstream.openai_base_url()
        )
    };
    std::fs::write(&path, file("wrong-key", "[routes.r]\ntargets = [{ provider = \"oa\", model = \"gpt-ok\" }]"))
        .unwrap();
    let env = [("SWITCHYARD_TEST_RELOAD_KEY", switchyard_sim::DEFAULT_API_KEY)];
    let (mut child, addr, log) = spawn_serve(&path, &env).await;
    let url = format!("http://{addr}/v1/chat/completions");
    let http = reqwest::Client::new();
    let chat = |model: &'static str| {
        let request =
            http.post(&url).json(&json!({ "model": model, "messages": [{ "role": "user", "content": "hi" }] }));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_ne!(chat("r").await, 200, "the upstream refuses the wrong key");

    let routes = "[routes.r]\ntargets = [{ provider = \"oa\", model = \"gpt-ok\" }]\n\
                  [routes.fresh]\ntargets = [{ provider = \"oa\", model = \"gpt-ok\" }]";
    std::fs::write(&path, file("${SWITCHYARD_TEST_RELOAD_KEY}", routes)).unwrap();
    let kill = std::process::Command::new("kill").args(["-HUP", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let mut served = false;
    for _ in 0..100 {
        if chat("fresh").await == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let old_route = chat("r").await;
    let text = log.lock().unwrap().clone();
    let _ = child.kill();
    let _ = child.wait();
    assert!(served, "the new route never served:\n{text}");
    assert_eq!(old_route, 200, "the key from the environment now applies to the old route too");
    assert!(text.contains("config reloaded"), "{text}");
}

#[tokio::test]
async fn check_diff_prints_what_a_reload_would_change_in_a_running_gateway() {
    let f = start_file(ROUTES, "", Duration::ZERO).await;
    let new = f.path.with_file_name("new.toml");
    std::fs::write(&new, format!("{}\n{CHANGED}", f.base.replace("127.0.0.1:0", "127.0.0.1:9"))).unwrap();
    let args = ["check", "--config", new.to_str().unwrap(), "--diff", "--url", &f.h.gateway.url()].map(str::to_owned);
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
                .args(args)
                .env("SWITCHYARD_ADMIN_KEY", ADMIN_KEY)
                .output()
                .unwrap()
        })
    };
    let output = run(args.to_vec()).await.unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{out}{}", String::from_utf8_lossy(&output.stderr));
    for line in ["~ routes.b\n", "~ routes.c\n", "~ routes.a.targets[0].model\n"] {
        assert!(out.contains(line), "{line:?} missing from:\n{out}");
    }
    assert!(out.contains("~ server.listen (applies only after a restart)"), "{out}");
    assert_eq!(f.h.chat("b", "hi").await.status, 200, "a diff changes nothing");

    let same =
        ["check", "--config", f.path.to_str().unwrap(), "--diff", "--url", &f.h.gateway.url()].map(str::to_owned);
    let output = run(same.to_vec()).await.unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(out.contains("no change: the gateway runs this very file"), "{out}");
}

#[tokio::test]
async fn changed_breaker_settings_start_a_targets_health_fresh_but_keep_its_stats() {
    let f = start_file(HEALTH, "", Duration::ZERO).await;
    assert_eq!(f.h.chat("a", "hi").await.target(), "oa/gpt-ok");
    let routes = f.h.admin_get("/admin/routes").await.body;
    assert_eq!(target(&routes, "a", "an/claude-500")["breaker"], "open");

    f.write(&HEALTH.replace("failures = 2", "failures = 3"));
    let r = f.reload().await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["changed"], json!(["routes.a.breaker.failures"]));
    let routes = f.h.admin_get("/admin/routes").await.body;
    assert_eq!(target(&routes, "a", "an/claude-500")["breaker"], "closed", "new settings, fresh breaker: {routes}");
    let stats = f.h.admin_get("/admin/stats").await.body;
    assert_eq!(stats["routes"]["a"]["targets"]["an/claude-500"]["attempts"], 2, "the counters go on: {stats}");
}

/// A route whose only provider the factory refuses ([`RefusingBad`]): the file is valid, but building the route
/// fails (a reload's 400 found only at build time).
fn unbuildable(upstream: &Upstream) -> String {
    format!(
        "[providers.bad]\nkind = \"openai\"\nbase_url = \"{}\"\n\
         [routes.broken]\ntargets = [{{ provider = \"bad\", model = \"gpt-ok\" }}]\n",
        upstream.openai_base_url()
    )
}

#[tokio::test]
async fn a_reload_that_fails_to_build_keeps_the_health_of_targets_whose_settings_it_would_change() {
    let f = start_file(HEALTH, "", Duration::ZERO).await;
    assert_eq!(f.h.chat("a", "hi").await.target(), "oa/gpt-ok");
    let routes = f.h.admin_get("/admin/routes").await.body;
    assert_eq!(target(&routes, "a", "an/claude-500")["breaker"], "open");

    // New breaker settings for claude-500, and a route that cannot be built.
    f.write(&format!("{}{}", HEALTH.replace("failures = 2", "failures = 3"), unbuildable(&f.h.upstream)));
    let r = f.reload().await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("routes.broken"), "{message}");

    // The running file again: nothing changed, so the breaker opened before is still open.
    f.write(HEALTH);
    let r = f.reload().await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let routes = f.h.admin_get("/admin/routes").await.body;
    assert_eq!(target(&routes, "a", "an/claude-500")["breaker"], "open", "the failed reload kept it: {routes}");
    let r = f.h.chat("a", "hi").await;
    assert_eq!((r.target(), r.attempts()), ("oa/gpt-ok", "1"), "the open breaker is still skipped");
    assert_eq!(f.h.upstream.calls("claude-500"), 2);
}

/// A gateway running the config file at `path` with its `[storage]`: overrides stored there and restored
/// at start, as `switchyard serve` does.
async fn start_stored(path: &Path) -> (Running, Arc<Storage>) {
    let config = Config::load(path, None).unwrap();
    let factory = Arc::new(HttpProviders::default());
    let storage = Arc::new(Storage::open(config.storage.as_ref().unwrap()));
    let sink: Arc<dyn OverrideSink> = storage.clone();
    let state = AppState::build(&config, factory.as_ref())
        .unwrap()
        .reloadable(path.to_path_buf(), None, factory)
        .with_storage(storage.clone())
        .with_override_sink(sink);
    restore_overrides(&storage, &state);
    (Running::start(Arc::new(state), "127.0.0.1:0", Duration::from_secs(5)).await.unwrap(), storage)
}

#[tokio::test]
async fn a_target_a_reload_drops_loses_its_stored_override_and_starts_fresh_after_a_restart_too() {
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    let folder = temp_folder("reload-stored");
    let server = format!("api_keys = [\"{CLIENT_KEY}\"]\nadmin_key = \"{ADMIN_KEY}\"");
    let db = folder.join("log.db");
    let base = format!("{}\n[storage]\npath = \"{}\"\n", base_config(&upstream, &server), db.display());
    let path = folder.join("switchyard.toml");
    std::fs::write(&path, format!("{base}\n{ROUTES}")).unwrap();
    let http = reqwest::Client::new();
    let admin = |gateway: &Running, method: reqwest::Method, at: &str| {
        http.request(method, format!("{}{at}", gateway.url())).bearer_auth(ADMIN_KEY)
    };
    let claude = |routes: Value| target(&routes, "a", "an/claude-ok").clone();

    let (gateway, storage) = start_stored(&path).await;
    let r = admin(&gateway, reqwest::Method::PATCH, "/admin/routes/a/targets/an%2Fclaude-ok")
        .json(&json!({ "priority": 7 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Route a without claude-ok, then with it again: it starts fresh.
    for routes in [ROUTES.replace(r#", { provider = "an", model = "claude-ok" }"#, ""), ROUTES.to_owned()] {
        std::fs::write(&path, format!("{base}\n{routes}")).unwrap();
        let r = admin(&gateway, reqwest::Method::POST, "/admin/reload").send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let get = admin(&gateway, reqwest::Method::GET, "/admin/routes").send().await.unwrap();
    let re_added = claude(get.json().await.unwrap());
    assert_eq!((&re_added["override"], &re_added["priority"]), (&Value::Null, &json!(2)), "fresh: {re_added}");
    gateway.shutdown().await.unwrap();
    storage.close();

    // A restart on the same file and database: the dropped override does not come back either.
    let (gateway, _storage) = start_stored(&path).await;
    let get = admin(&gateway, reqwest::Method::GET, "/admin/routes").send().await.unwrap();
    let restarted = claude(get.json().await.unwrap());
    assert_eq!((&restarted["override"], &restarted["priority"]), (&Value::Null, &json!(2)), "{restarted}");
}

#[tokio::test]
async fn restart_only_settings_are_reported_as_ignored_until_restart_and_the_rest_applies() {
    let f = start_file(ROUTES, "", Duration::ZERO).await;
    let base = f.base.replace("127.0.0.1:0", "127.0.0.1:9").replace("enabled = false", "enabled = false\nqueue = 10");
    std::fs::write(&f.path, format!("{base}\n{CHANGED}")).unwrap();
    let r = f.reload().await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["ignored"], json!(["server.listen", "storage.queue"]));
    assert!(!r.body["changed"].as_array().unwrap().contains(&json!("server.listen")), "{:?}", r.body);
    assert_eq!(f.h.chat("c", "hi").await.status, 200, "the rest applies");
    // Still listed at the next reload: the process runs on its start-up value until restarted.
    let again = f.reload().await;
    assert_eq!((again.body["changed"].clone(), again.body["ignored"].clone()), (json!([]), r.body["ignored"].clone()));
}

#[tokio::test]
async fn a_gateway_without_a_config_file_refuses_a_reload_and_counts_it() {
    let h = start(ROUTES).await;
    let r = h.admin_post("/admin/reload").await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("--config FILE"), "{:?}", r.body);
    assert_eq!(h.chat("a", "hi").await.status, 200);
    assert_eq!(reloads(&h.metrics().await, "error"), 1);
    let anonymous = h.http.post(h.url("/admin/reload")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401, "the admin key is needed");
}

#[tokio::test]
async fn a_named_keys_window_survives_a_reload_unless_its_limits_change() {
    let keys = "[server.keys.team]\nkey = \"team-secret\"\nrpm = 2\n";
    let f = start_file(ROUTES, keys, Duration::ZERO).await;
    let chat = || async {
        let body = json!({ "model": "a", "messages": [{ "role": "user", "content": "hi" }] });
        let response =
            f.h.http.post(f.h.url("/v1/chat/completions")).bearer_auth("team-secret").json(&body).send().await.unwrap();
        response.status().as_u16()
    };
    assert_eq!((chat().await, chat().await), (200, 200));
    f.write(CHANGED);
    assert_eq!(f.reload().await.status, 200);
    assert_eq!(chat().await, 429, "the reload did not give the key a fresh minute");
    // New limits are a new window.
    let raised = f.base.replace("rpm = 2", "rpm = 3");
    std::fs::write(&f.path, format!("{raised}\n{CHANGED}")).unwrap();
    assert_eq!(f.reload().await.status, 200);
    assert_eq!(chat().await, 200);
}

/// The text of an SSE chat stream: every `delta.content` joined.
fn streamed_text(sse: &str) -> String {
    sse.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .filter_map(|event| event["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_stream_that_spans_a_reload_finishes_whole_on_the_config_it_started_with() {
    let f = start_file(ROUTES, "", Duration::from_millis(50)).await;
    let whole = f.h.chat("b", "hi").await.body["choices"][0]["message"]["content"].as_str().unwrap().to_owned();
    // On route b, which the reload removes.
    let body = json!({ "model": "b", "stream": true, "messages": [{ "role": "user", "content": "hi" }] });
    let mut response =
        f.h.http.post(f.h.url("/v1/chat/completions")).bearer_auth(CLIENT_KEY).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-switchyard-target"], "oa/gpt-ok");
    let mut sse = String::from_utf8_lossy(&response.chunk().await.unwrap().unwrap()).into_owned();
    assert!(!sse.contains("[DONE]"), "the stream is still under way: {sse}");

    // Route a now starts with claude-ok, route b is gone.
    f.write(CHANGED);
    assert_eq!(f.reload().await.status, 200);
    assert_eq!(f.h.chat("a", "hi").await.target(), "an/claude-ok", "new requests run on the new config");
    assert_eq!(f.h.chat("b", "hi").await.status, 404);
    while let Some(chunk) = response.chunk().await.unwrap() {
        sse.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(sse.trim_end().ends_with("data: [DONE]"), "{sse}");
    assert!(!sse.contains("\"error\""), "{sse}");
    assert_eq!(streamed_text(&sse), whole, "the whole answer of the target it started on");
}
