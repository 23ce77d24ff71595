//! A gateway on 127.0.0.1 in front of the simulated upstream, and helpers to call it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use switchyard::{ChatModel, ChatRequest, ChatResponse, ChatStream, Error, SharedModel, model::Fit};
use switchyard_gateway::config::{Config, ProviderConfig, TargetConfig};
use switchyard_gateway::server::Running;
use switchyard_gateway::state::{AppState, HttpProviders, ModelFactory};
use switchyard_sim::{Upstream, UpstreamConfig};

pub(crate) const CLIENT_KEY: &str = "client-key-123";
pub(crate) const ADMIN_KEY: &str = "admin-key-456";

/// Counts upstream streams that are still alive (not dropped).
#[derive(Debug, Default)]
pub(crate) struct LiveStreams(pub AtomicUsize);

struct Tracked {
    inner: SharedModel,
    live: Arc<LiveStreams>,
}

struct Guard(Arc<LiveStreams>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl ChatModel for Tracked {
    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, Error> {
        self.inner.complete(request).await
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, Error> {
        let stream = self.inner.stream(request).await?;
        self.live.0.fetch_add(1, Ordering::SeqCst);
        let guard = Guard(self.live.clone());
        Ok(stream.map_inner(move |inner| {
            inner
                .map(move |item| {
                    let _alive = &guard;
                    item
                })
                .boxed()
        }))
    }

    fn fit(&self, request: &ChatRequest, stream: bool) -> Fit {
        self.inner.fit(request, stream)
    }

    async fn count_tokens(&self, request: &ChatRequest) -> Result<Option<u64>, Error> {
        self.inner.count_tokens(request).await
    }
}

/// The real HTTP providers, each wrapped to count live upstream streams.
struct TrackingFactory(Arc<LiveStreams>, HttpProviders);

impl ModelFactory for TrackingFactory {
    fn build(&self, provider: &ProviderConfig, target: &TargetConfig) -> Result<SharedModel, String> {
        let inner = self.1.build(provider, target)?;
        Ok(Arc::new(Tracked { inner, live: self.0.clone() }))
    }
}

pub(crate) struct Harness {
    pub(crate) upstream: Upstream,
    pub(crate) gateway: Running,
    pub(crate) http: reqwest::Client,
    pub(crate) live_streams: Arc<LiveStreams>,
}

/// Server section and providers `oa` (OpenAI kind) and `an` (Anthropic kind) at the simulated upstream.
pub(crate) fn base_config(upstream: &Upstream, server_extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
{server_extra}

[providers.oa]
kind = "openai"
base_url = "{oa}"
api_key = "sim-key"
[providers.an]
kind = "anthropic"
base_url = "{an}"
api_key = "sim-key"
"#,
        oa = upstream.openai_base_url(),
        an = upstream.anthropic_base_url(),
    )
}

/// Starts an upstream and a gateway with client and admin keys and these routes.
pub(crate) async fn start(routes: &str) -> Harness {
    start_with(&format!("api_keys = [\"{CLIENT_KEY}\"]\nadmin_key = \"{ADMIN_KEY}\""), routes).await
}

/// Like [`start`] with this `[server]` body.
pub(crate) async fn start_with(server: &str, routes: &str) -> Harness {
    start_draining(server, routes, Duration::from_secs(5)).await
}

/// Like [`start_with`], draining for `drain` on shutdown.
pub(crate) async fn start_draining(server: &str, routes: &str, drain: Duration) -> Harness {
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    let text = format!("{}\n{routes}", base_config(&upstream, server));
    let config = Config::parse(&text, &|_| None, None).unwrap();
    let live_streams = Arc::new(LiveStreams::default());
    let state =
        Arc::new(AppState::build(&config, &TrackingFactory(live_streams.clone(), HttpProviders::default())).unwrap());
    let gateway = Running::start(state, "127.0.0.1:0", drain).await.unwrap();
    Harness { upstream, gateway, http: reqwest::Client::new(), live_streams }
}

/// A parsed reply: status, headers and JSON body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    pub(crate) fn target(&self) -> &str {
        self.header("x-switchyard-target")
    }

    pub(crate) fn attempts(&self) -> &str {
        self.header("x-switchyard-attempts")
    }

    pub(crate) fn fallback(&self) -> &str {
        self.header("x-switchyard-fallback")
    }
}

/// A streamed reply: status, headers and the raw SSE text.
#[derive(Debug)]
pub(crate) struct StreamReply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) text: String,
}

impl StreamReply {
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The `data:` payloads, in order.
    pub(crate) fn data(&self) -> Vec<String> {
        self.text.lines().filter_map(|l| l.strip_prefix("data: ")).map(str::to_owned).collect()
    }

    /// The `event:` names, in order.
    pub(crate) fn events(&self) -> Vec<String> {
        self.text.lines().filter_map(|l| l.strip_prefix("event: ")).map(str::to_owned).collect()
    }

    /// Concatenated OpenAI text deltas.
    pub(crate) fn openai_text(&self) -> String {
        self.data()
            .iter()
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter_map(|v| v["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
            .collect()
    }

    /// Concatenated Anthropic text deltas.
    pub(crate) fn anthropic_text(&self) -> String {
        self.data()
            .iter()
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter_map(|v| v["delta"]["text"].as_str().map(str::to_owned))
            .collect()
    }
}

impl Harness {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway.url())
    }

    /// POSTs raw bytes with the client key.
    pub(crate) async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> Reply {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(CLIENT_KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        reply(response).await
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> Reply {
        self.post_raw(path, body.to_string()).await
    }

    /// An OpenAI chat completion for `model` saying `text`.
    pub(crate) async fn chat(&self, model: &str, text: &str) -> Reply {
        self.post("/v1/chat/completions", &json!({ "model": model, "messages": [{ "role": "user", "content": text }] }))
            .await
    }

    /// An Anthropic message for `model` saying `text`.
    pub(crate) async fn message(&self, model: &str, text: &str) -> Reply {
        self.post(
            "/v1/messages",
            &json!({ "model": model, "max_tokens": 200, "messages": [{ "role": "user", "content": text }] }),
        )
        .await
    }

    /// POSTs a streaming request and reads the whole SSE body.
    pub(crate) async fn stream(&self, path: &str, body: &Value) -> StreamReply {
        let response = self.http.post(self.url(path)).bearer_auth(CLIENT_KEY).json(body).send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        StreamReply { status, headers, text }
    }

    pub(crate) async fn admin_get(&self, path: &str) -> Reply {
        reply(self.http.get(self.url(path)).bearer_auth(ADMIN_KEY).send().await.unwrap()).await
    }

    pub(crate) async fn admin_patch(&self, path: &str, body: &Value) -> Reply {
        reply(self.http.patch(self.url(path)).bearer_auth(ADMIN_KEY).json(body).send().await.unwrap()).await
    }

    pub(crate) async fn admin_delete(&self, path: &str) -> Reply {
        reply(self.http.delete(self.url(path)).bearer_auth(ADMIN_KEY).send().await.unwrap()).await
    }

    pub(crate) async fn admin_post(&self, path: &str) -> Reply {
        reply(self.http.post(self.url(path)).bearer_auth(ADMIN_KEY).send().await.unwrap()).await
    }

    pub(crate) async fn metrics(&self) -> String {
        self.http.get(self.url("/metrics")).send().await.unwrap().text().await.unwrap()
    }
}

pub(crate) async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    Reply { status, headers, body }
}

/// Waits (bounded) until `cond` holds.
pub(crate) async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// A fresh folder for a test's files.
pub(crate) fn temp_folder(name: &str) -> std::path::PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("switchyard-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The request log's settings: database `path`, a queue of `queue` rows.
pub(crate) fn storage_config(path: std::path::PathBuf, queue: usize) -> switchyard_gateway::storage::StorageConfig {
    switchyard_gateway::storage::StorageConfig {
        path,
        retention: Duration::from_secs(7 * 86_400),
        log_bodies: false,
        queue,
    }
}

/// Like [`start`], recording requests in the database `storage` names.
pub(crate) async fn start_logged(routes: &str, storage: &switchyard_gateway::storage::StorageConfig) -> Harness {
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    let server = format!("api_keys = [\"{CLIENT_KEY}\"]\nadmin_key = \"{ADMIN_KEY}\"");
    let text = format!("{}\n{routes}", base_config(&upstream, &server));
    let config = Config::parse(&text, &|_| None, None).unwrap();
    let live_streams = Arc::new(LiveStreams::default());
    let storage = Arc::new(switchyard_gateway::storage::Storage::open(storage));
    let state = AppState::build(&config, &TrackingFactory(live_streams.clone(), HttpProviders::default()))
        .unwrap()
        .with_storage(storage);
    let gateway = Running::start(Arc::new(state), "127.0.0.1:0", Duration::from_secs(5)).await.unwrap();
    Harness { upstream, gateway, http: reqwest::Client::new(), live_streams }
}

/// Collects a child process's standard error, line by line, as it writes it.
pub(crate) fn stderr_log(child: &mut std::process::Child) -> Arc<std::sync::Mutex<String>> {
    use std::io::{BufRead, BufReader};
    let log = Arc::new(std::sync::Mutex::new(String::new()));
    let stderr = child.stderr.take().expect("the child's stderr is piped");
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    log
}

/// Starts `switchyard serve --config CONFIG` with the extra environment `env`; returns the child, its address
/// and its log.
pub(crate) async fn spawn_serve(
    config: &std::path::Path,
    env: &[(&str, &str)],
) -> (std::process::Child, String, Arc<std::sync::Mutex<String>>) {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = stderr_log(&mut child);
    let mut addr = None;
    for _ in 0..500 {
        addr = log.lock().unwrap().lines().find_map(|l| {
            l.split("listening on http://").nth(1).and_then(|a| a.split_whitespace().next()).map(str::to_owned)
        });
        if addr.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (child, addr.expect("the gateway listens"), log)
}

/// Runs a Python script of this folder with `args` (it drives the gateway with a vendor SDK) and returns its
/// output; `package` is the pinned SDK the failure message asks to install.
pub(crate) async fn run_python_sdk(script: &str, args: Vec<String>, package: &'static str) -> String {
    let path = format!("{}/tests/e2e/{script}", env!("CARGO_MANIFEST_DIR"));
    // The SDK blocks; the gateway keeps serving on the test's runtime meanwhile.
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(&path)
            .args(&args)
            .output()
            .expect("python3 is needed to run the SDK tests (.ci/run installs their packages)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let module = package.split("==").next().unwrap_or(package);
    assert!(
        !stderr.contains(&format!("No module named '{module}'")),
        "the SDK is missing: pip install {package} (.ci/run does)"
    );
    assert!(out.status.success(), "{script} failed against the gateway:\n{stdout}{stderr}");
    stdout
}
