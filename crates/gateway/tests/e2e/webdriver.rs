//! A small W3C WebDriver client for headless Chromium, over the reqwest the tests already use.
//!
//! Why not fantoccini: its 0.22 pulls a second `http` (0.2, through `webdriver`), a second `base64` and two
//! `cookie` majors; the dozen commands these tests send fit in this file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// The key W3C WebDriver puts an element reference under.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Flags that keep Chromium off the network: without the background ones it calls home.
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
];

/// A Chromium driven through its own chromedriver on a free loopback port; both end with it.
pub(crate) struct Browser {
    http: reqwest::Client,
    session: String,
    driver: Child,
    profile: PathBuf,
}

fn find(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium; fails (never skips) when either is missing.
    pub(crate) async fn start() -> Browser {
        let chromium = find("chromium").or_else(|| find("chromium-browser")).unwrap_or_else(|| {
            panic!("chromium is not installed: the dashboard tests need it (apt-get install -y chromium chromium-driver; .ci/run does this)")
        });
        let chromedriver = find("chromedriver").unwrap_or_else(|| {
            panic!("chromedriver is not installed: the dashboard tests need it (apt-get install -y chromium chromium-driver; .ci/run does this)")
        });
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let profile = std::env::temp_dir().join(format!("switchyard-chromium-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).unwrap();
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::new();
        let root = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = http.get(format!("{root}/status")).send().await.ok();
            if let Some(r) = ready
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not get ready on port {port} within 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut args: Vec<String> = FLAGS.iter().map(|f| (*f).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
            "goog:loggingPrefs": { "browser": "ALL", "performance": "ALL" },
        } } });
        let created: Value =
            http.post(format!("{root}/session")).json(&capabilities).send().await.unwrap().json().await.unwrap();
        let id = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver did not start a Chromium session: {created}"));
        Browser { http, session: format!("{root}/session/{id}"), driver, profile }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        if let Some(error) = answer["value"].get("error") {
            panic!("WebDriver {method} {path} failed: {error}: {}", answer["value"]["message"]);
        }
        answer["value"].clone()
    }

    /// Opens a URL.
    pub(crate) async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({ "url": url }))).await;
    }

    /// Runs a script (`return …`) in the page and returns its value.
    pub(crate) async fn js(&self, script: &str) -> Value {
        self.command(reqwest::Method::POST, "/execute/sync", Some(json!({ "script": script, "args": [] }))).await
    }

    /// Waits up to `timeout` until the script returns something truthy, and returns that.
    pub(crate) async fn wait(&self, what: &str, timeout: Duration, script: &str) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.js(script).await;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                let text = self.js("return document.body.innerText").await;
                panic!(
                    "timed out after {timeout:?} waiting for {what}; the page says:\n{}",
                    text.as_str().unwrap_or("")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The element matching a CSS selector (it must exist).
    async fn element(&self, css: &str) -> String {
        let v = self
            .command(reqwest::Method::POST, "/element", Some(json!({ "using": "css selector", "value": css })))
            .await;
        v[ELEMENT].as_str().unwrap().to_owned()
    }

    /// Clicks the element, as a user would.
    pub(crate) async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.command(reqwest::Method::POST, &format!("/element/{id}/click"), Some(json!({}))).await;
    }

    /// Types into the element.
    pub(crate) async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.command(reqwest::Method::POST, &format!("/element/{id}/value"), Some(json!({ "text": text }))).await;
    }

    /// Resizes the window (the viewport follows).
    pub(crate) async fn size(&self, width: u32, height: u32) {
        self.command(reqwest::Method::POST, "/window/rect", Some(json!({ "width": width, "height": height }))).await;
    }

    /// Opens a new tab and switches to it.
    pub(crate) async fn new_tab(&self) {
        let v = self.command(reqwest::Method::POST, "/window/new", Some(json!({ "type": "tab" }))).await;
        let handle = v["handle"].as_str().unwrap().to_owned();
        self.command(reqwest::Method::POST, "/window", Some(json!({ "handle": handle }))).await;
    }

    /// Saves a PNG of the viewport.
    pub(crate) async fn screenshot(&self, path: &Path) {
        let v = self.command(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// The log entries of one kind (`browser`: the console; `performance`: DevTools events) since the last read.
    pub(crate) async fn log(&self, kind: &str) -> Vec<Value> {
        let v = self.command(reqwest::Method::POST, "/se/log", Some(json!({ "type": kind }))).await;
        v.as_array().cloned().unwrap_or_default()
    }

    /// Ends the session (Chromium exits), then chromedriver.
    pub(crate) fn quit(self) {}
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Blocking on purpose: a failed assertion drops the browser too, and Chromium must not outlive the test.
        let url = self.session.trim_start_matches("http://");
        if let Some((host, path)) = url.split_once('/')
            && let Ok(mut stream) = std::net::TcpStream::connect(host)
        {
            use std::io::{Read, Write};
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                stream,
                "DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.read_to_end(&mut Vec::new());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
