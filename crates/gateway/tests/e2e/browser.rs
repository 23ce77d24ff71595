//! The dashboard (`/ui`) in a real browser: headless Chromium over WebDriver against a running gateway in
//! front of the simulated upstream. Each test saves a screenshot of its page (into docs/ui/ for the README with
//! `SWITCHYARD_SCREENSHOTS=docs`, else under target/screenshots/).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;
use crate::webdriver::Browser;

const ROUTES: &str = r#"
[routes.chat]
targets = [{ provider = "oa", model = "gpt-4o" }, { provider = "an", model = "claude-sonnet" }]

[routes.flaky]
breaker = { failures = 2, cooldown = "60s" }
hedge = false
targets = [{ provider = "an", model = "claude-500", max_retries = 0 }, { provider = "oa", model = "gpt-mini" }]
"#;

/// Long enough for a loaded 2-core CI machine; the dashboard itself refreshes every 5 s at most.
const PATIENCE: Duration = Duration::from_secs(20);

/// Where a page's screenshot goes: the README's `docs/ui/` when `SWITCHYARD_SCREENSHOTS=docs` (to refresh them),
/// else the target folder, so an ordinary test run leaves the working tree clean.
fn shot(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let folder = match std::env::var("SWITCHYARD_SCREENSHOTS").as_deref() {
        Ok("docs") => root.join("docs/ui"),
        _ => root.join("target/screenshots"),
    };
    std::fs::create_dir_all(&folder).unwrap();
    folder.join(name)
}

/// JavaScript that returns the trimmed text of the first element matching `css`, or "".
fn text_of(css: &str) -> String {
    format!("const e = document.querySelector({css:?}); return e ? e.textContent.trim() : '';", css = css)
}

/// Opens the dashboard and logs in with the right key.
async fn log_in(h: &Harness, b: &Browser, page: &str) {
    b.goto(&h.url(&format!("/ui#/{page}"))).await;
    b.wait("the log-in form", PATIENCE, "return document.querySelector('#admin-key')").await;
    b.type_into("#admin-key", ADMIN_KEY).await;
    b.click("#login-submit").await;
    b.wait("the navigation after log-in", PATIENCE, "return !document.querySelector('#nav').hidden").await;
}

/// A gateway with client and admin keys and the request log on, in front of the simulated upstream.
async fn gateway(routes: &str) -> Harness {
    start_logged(routes, &storage_config(temp_folder("ui").join("log.db"), 50_000)).await
}

/// Waits until the request log has written the request (it writes in batches, at most 1 s apart).
async fn logged(h: &Harness, id: &str) {
    let deadline = Instant::now() + PATIENCE;
    while h.admin_get(&format!("/admin/requests/{id}")).await.status != 200 {
        assert!(Instant::now() < deadline, "request {id} never reached the request log");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// No console errors (the refused key checks excepted) and no request to anything but the gateway.
async fn assert_clean(b: &Browser, gateway: &str) {
    for entry in b.log("browser").await {
        let message = entry["message"].as_str().unwrap_or("");
        let key_check = entry["source"] == "network"
            && message.contains("/admin/stats")
            && (message.contains("status of 401") || message.contains("status of 403"));
        assert!(entry["level"] != "SEVERE" || key_check, "console error: {entry}");
    }
    let mut requests = 0;
    for entry in b.log("performance").await {
        let Ok(event) = serde_json::from_str::<Value>(entry["message"].as_str().unwrap_or("")) else { continue };
        if event["message"]["method"] != "Network.requestWillBeSent" {
            continue;
        }
        let url = event["message"]["params"]["request"]["url"].as_str().unwrap_or("");
        // chrome://, data: and about: are the browser's own, not the network.
        let network = ["http:", "https:", "ws:", "wss:", "ftp:"].iter().any(|s| url.starts_with(s));
        assert!(!network || url.starts_with(gateway), "the page requested {url}");
        requests += usize::from(network);
    }
    assert!(requests > 0, "the performance log saw the page's own requests");
}

#[tokio::test]
async fn log_in_refuses_a_wrong_key_and_keeps_the_right_one_in_the_tab_only() {
    let h = gateway(ROUTES).await;
    let b = Browser::start().await;
    b.goto(&h.url("/ui")).await;
    b.wait("the log-in form", PATIENCE, "return document.querySelector('#admin-key')").await;
    b.screenshot(&shot("login.png")).await;

    b.type_into("#admin-key", "not-the-key").await;
    b.click("#login-submit").await;
    let error = b.wait("the refusal", PATIENCE, &text_of("#login-error")).await;
    assert!(error.as_str().unwrap().contains("refused"), "{error}");
    assert_eq!(b.js("return document.querySelector('#nav').hidden").await, true, "still logged out");

    b.type_into("#admin-key", ADMIN_KEY).await;
    b.click("#login-submit").await;
    b.wait("the overview", PATIENCE, "return document.querySelector('#totals')").await;
    let where_kept = b
        .js("return { url: location.href, local: localStorage.length, cookie: document.cookie, \
             session: sessionStorage.getItem('switchyard.admin_key') }")
        .await;
    assert!(!where_kept["url"].as_str().unwrap().contains(ADMIN_KEY), "{where_kept}");
    assert_eq!((&where_kept["local"], &where_kept["cookie"]), (&json!(0), &json!("")), "{where_kept}");
    assert_eq!(where_kept["session"], ADMIN_KEY, "kept for this tab");

    // Switching pages never asks again.
    b.click("#nav a[data-page=routes]").await;
    b.wait("the routes page", PATIENCE, "return document.querySelector('section.route')").await;
    assert_eq!(b.js("return document.querySelector('#admin-key')").await, Value::Null);
    assert_clean(&b, &h.gateway.url()).await;

    // A new tab asks again.
    b.new_tab().await;
    b.goto(&h.url("/ui")).await;
    b.wait("the log-in form in a new tab", PATIENCE, "return document.querySelector('#admin-key')").await;
    b.quit();
}

#[tokio::test]
async fn without_an_admin_key_the_page_says_how_to_set_one() {
    let h = start_with(&format!("api_keys = [\"{CLIENT_KEY}\"]"), ROUTES).await;
    let b = Browser::start().await;
    b.goto(&h.url("/ui")).await;
    let text = b.wait("the admin-key-missing page", PATIENCE, &text_of("#admin-disabled")).await;
    let text = text.as_str().unwrap();
    for needle in ["admin_key", "[server]", "SWITCHYARD_ADMIN_KEY"] {
        assert!(text.contains(needle), "{needle} in {text}");
    }
    assert_clean(&b, &h.gateway.url()).await;
    b.quit();
}

#[tokio::test]
async fn overview_numbers_match_admin_stats() {
    let h = gateway(ROUTES).await;
    for i in 0..5 {
        assert_eq!(h.chat("chat", &format!("hello {i}")).await.status, 200);
    }
    for _ in 0..2 {
        assert_eq!(h.chat("flaky", "hello").await.fallback(), "true");
    }
    let stats = h.admin_get("/admin/stats").await.body;
    assert_eq!((stats["total"].as_u64(), stats["fallbacks"].as_u64()), (Some(7), Some(2)));
    let b = Browser::start().await;
    log_in(&h, &b, "overview").await;
    // The request log is written in batches: the page, refreshing every 5 s, catches up.
    let total = stats["total"].to_string();
    b.wait(
        "the requests of /admin/stats on the page",
        PATIENCE,
        &format!("const e = document.querySelector('[data-stat=requests]'); return e && e.textContent === '{total}'"),
    )
    .await;
    let shown = b
        .js("const t = (n) => document.querySelector(`[data-stat=${n}]`).textContent; \
             return { requests: t('requests'), fallbacks: t('fallbacks'), success: t('success_rate') }")
        .await;
    assert_eq!(shown["requests"], stats["total"].to_string(), "{shown}");
    assert_eq!(shown["fallbacks"], stats["fallbacks"].to_string(), "{shown}");
    assert_eq!(shown["success"], "100.0 %", "{shown}");
    // Every target's breaker, as text: the failing primary's opened after its two failures.
    let breakers = b
        .js("return Object.fromEntries([...document.querySelectorAll('#breakers tbody tr')]\
             .map((r) => [r.dataset.route + ' ' + r.dataset.target, r.querySelector('[data-breaker]').textContent]))")
        .await;
    assert_eq!(
        breakers,
        json!({ "chat oa/gpt-4o": "closed", "chat an/claude-sonnet": "closed",
                "flaky an/claude-500": "open", "flaky oa/gpt-mini": "closed" })
    );
    b.screenshot(&shot("overview.png")).await;
    b.size(390, 844).await;
    b.wait("the phone layout", PATIENCE, "return window.innerWidth <= 400").await;
    b.screenshot(&shot("overview-phone.png")).await;
    assert_clean(&b, &h.gateway.url()).await;
    b.quit();
}

const CHAT_PRIMARY: &str = "tr[data-route=chat][data-target='oa/gpt-4o']";

/// Flips the chat route's primary off from the Routes page and waits until the admin API says so.
async fn disable_from_the_page(h: &Harness, b: &Browser) {
    log_in(h, b, "routes").await;
    b.wait("the chat route", PATIENCE, &format!("return document.querySelector(\"{CHAT_PRIMARY}\")")).await;
    b.click(&format!("{CHAT_PRIMARY} input[data-field=enabled]")).await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let t = h.admin_get("/admin/routes").await.body["routes"][0]["targets"][0].clone();
        if t["enabled"] == false {
            assert_eq!(t["id"], "oa/gpt-4o");
            return;
        }
        assert!(Instant::now() < deadline, "the switch did not disable the target: {t}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn routes_page_disables_a_target_and_traffic_moves() {
    let h = gateway(ROUTES).await;
    assert_eq!(h.chat("chat", "hi").await.target(), "oa/gpt-4o");
    let b = Browser::start().await;
    disable_from_the_page(&h, &b).await;
    let r = h.chat("chat", "hi").await;
    assert_eq!((r.status, r.target()), (200, "an/claude-sonnet"), "traffic moved to the next target");
    let switch = b
        .wait(
            "the switch showing off",
            PATIENCE,
            &format!(
                "const e = document.querySelector(\"{CHAT_PRIMARY} .switch\"); return e && e.textContent === 'off'"
            ),
        )
        .await;
    assert_eq!(switch, true);
    b.screenshot(&shot("routes.png")).await;
    assert_clean(&b, &h.gateway.url()).await;
    b.quit();
}

#[tokio::test]
async fn routes_page_shows_a_change_as_an_override_and_resets_it() {
    let h = gateway(ROUTES).await;
    h.chat("chat", "hi").await;
    let b = Browser::start().await;
    disable_from_the_page(&h, &b).await;
    b.wait("the override", PATIENCE, &format!("return document.querySelector(\"{CHAT_PRIMARY} [data-action=reset]\")"))
        .await;
    b.click(&format!("{CHAT_PRIMARY} [data-action=reset]")).await;
    b.wait(
        "the reset",
        PATIENCE,
        &format!(
            "const r = document.querySelector(\"{CHAT_PRIMARY}\"); return r && !r.querySelector('[data-action=reset]')"
        ),
    )
    .await;
    let t = h.admin_get("/admin/routes").await.body["routes"][0]["targets"][0].clone();
    assert_eq!((&t["enabled"], &t["override"]), (&json!(true), &Value::Null), "{t}");
    assert_eq!(h.chat("chat", "hi").await.target(), "oa/gpt-4o");
    assert_clean(&b, &h.gateway.url()).await;
    b.quit();
}

#[tokio::test]
async fn routes_page_shows_an_open_breaker_as_open() {
    let h = gateway(ROUTES).await;
    for _ in 0..2 {
        h.chat("flaky", "hi").await;
    }
    let b = Browser::start().await;
    log_in(&h, &b, "routes").await;
    let state = b
        .wait(
            "the flaky route's breaker",
            PATIENCE,
            &text_of("tr[data-route=flaky][data-target='an/claude-500'] [data-breaker]"),
        )
        .await;
    assert_eq!(state, "open");
    let other = b.js(&text_of("tr[data-route=flaky][data-target='oa/gpt-mini'] [data-breaker]")).await;
    assert_eq!(other, "closed");
    assert_clean(&b, &h.gateway.url()).await;
    b.quit();
}

/// Opens a request's page and returns the texts of its timeline entries once it shows `id`.
async fn open_request(b: &Browser, id: &str) -> Vec<String> {
    b.js(&format!("location.hash = '#/requests/{id}'; return null")).await;
    b.wait(
        "the request's timeline",
        PATIENCE,
        &format!(
            "const f = document.querySelector('#request-facts'); \
             return f && f.textContent.includes('{id}') && document.querySelector('#timeline')"
        ),
    )
    .await;
    let entries = b.js("return [...document.querySelectorAll('#timeline li')].map((li) => li.textContent)").await;
    entries.as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_request_with_a_fallback_opens_into_one_timeline_entry_per_attempt() {
    let h = gateway(ROUTES).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(h.chat("flaky", "fall back").await.header("x-request-id").to_owned());
    }
    for id in &ids {
        logged(&h, id).await;
    }
    let b = Browser::start().await;
    log_in(&h, &b, "requests").await;
    let row = format!("tr[data-request='{}']", ids[0]);
    b.wait("the request in the log", PATIENCE, &format!("return document.querySelector(\"{row}\")")).await;
    b.screenshot(&shot("requests.png")).await;

    // A click opens it: one entry per attempt.
    b.click(&row).await;
    b.wait("the timeline", PATIENCE, "return document.querySelector('#timeline')").await;
    let entries = open_request(&b, &ids[0]).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(entries[0].contains("an/claude-500") && entries[0].contains("failed"), "{entries:?}");
    assert!(entries[1].contains("oa/gpt-mini") && entries[1].contains("success"), "{entries:?}");
    b.screenshot(&shot("request-timeline.png")).await;

    // The breaker opened after two failures: the third request skipped the primary, labelled with the reason.
    let entries = open_request(&b, &ids[2]).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(entries[0].contains("an/claude-500") && entries[0].contains("skipped: "), "{entries:?}");
    let labelled = b.js("return document.querySelector('#timeline li.skipped .tag.skipped').textContent").await;
    assert_eq!(labelled, "skipped");
    assert_clean(&b, &h.gateway.url()).await;
    b.quit();
}

/// A route whose slow primary is hedged after 100 ms.
const HEDGED: &str = r#"
[routes.hedged]
hedge = { after = "100ms" }
targets = [{ provider = "oa", model = "gpt-slow3000" }, { provider = "an", model = "claude-haiku" }]
"#;

#[tokio::test]
async fn a_hedged_attempt_is_labelled_hedge_in_the_timeline() {
    let h = gateway(HEDGED).await;
    let r = h.chat("hedged", "hedge").await;
    assert_eq!(r.target(), "an/claude-haiku");
    let id = r.header("x-request-id").to_owned();
    logged(&h, &id).await;
    let b = Browser::start().await;
    log_in(&h, &b, "requests").await;
    let entries = open_request(&b, &id).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(entries[0].contains("oa/gpt-slow3000"), "{entries:?}");
    let hedge = b.js("const e = document.querySelector('#timeline li.hedge'); return e && e.textContent").await;
    let hedge = hedge.as_str().unwrap_or_else(|| panic!("no attempt is labelled hedge: {entries:?}"));
    assert!(hedge.contains("an/claude-haiku") && hedge.contains("hedge") && hedge.contains("success"), "{hedge}");
    assert_clean(&b, &h.gateway.url()).await;
    b.quit();
}

#[tokio::test]
async fn live_shows_requests_within_three_seconds_without_reload() {
    let h = gateway(ROUTES).await;
    let b = Browser::start().await;
    log_in(&h, &b, "live").await;
    b.wait("the event stream", PATIENCE, "return document.querySelector('#live-state').textContent === 'live'").await;
    b.js("window.loadedOnce = true; return null").await;
    for (route, text) in [("chat", "one"), ("flaky", "two"), ("chat", "three")] {
        let r = h.chat(route, text).await;
        let sent = Instant::now();
        let id = r.header("x-request-id").to_owned();
        b.wait(
            "the request on the Live page",
            Duration::from_secs(3),
            &format!("return document.querySelector(\"#live-requests tr[data-request='{id}']\")"),
        )
        .await;
        assert!(sent.elapsed() <= Duration::from_secs(3), "{id} appeared after {:?}", sent.elapsed());
    }
    assert_eq!(b.js("return window.loadedOnce === true").await, true, "no reload");
    b.screenshot(&shot("live.png")).await;
    assert_clean(&b, &h.gateway.url()).await;
    b.quit();
}

#[tokio::test]
async fn a_cold_load_of_all_four_pages_transfers_under_300_kb() {
    let h = gateway(ROUTES).await;
    let b = Browser::start().await;
    log_in(&h, &b, "overview").await;
    for page in ["routes", "requests", "live", "overview"] {
        b.click(&format!("#nav a[data-page={page}]")).await;
        b.wait(page, PATIENCE, &format!("return location.hash === '#/{page}' && document.querySelector('#main h1')"))
            .await;
    }
    // Bytes on the wire (headers included) per request, for the dashboard's own files; the admin API's
    // answers are not counted (SPEC-2 section 11).
    let mut urls = std::collections::HashMap::new();
    let mut bytes = 0.0;
    let mut files = 0;
    for entry in b.log("performance").await {
        let Ok(event) = serde_json::from_str::<Value>(entry["message"].as_str().unwrap_or("")) else { continue };
        let params = &event["message"]["params"];
        match event["message"]["method"].as_str() {
            Some("Network.requestWillBeSent") => {
                urls.insert(
                    params["requestId"].to_string(),
                    params["request"]["url"].as_str().unwrap_or("").to_owned(),
                );
            }
            Some("Network.loadingFinished") => {
                let url = urls.get(&params["requestId"].to_string()).cloned().unwrap_or_default();
                if url.starts_with(&h.url("/ui")) {
                    bytes += params["encodedDataLength"].as_f64().unwrap_or(0.0);
                    files += 1;
                }
            }
            _ => {}
        }
    }
    assert!(files >= 10, "the page and its files were loaded: {files}");
    assert!(bytes > 10_000.0 && bytes < 300_000.0, "a cold load transferred {bytes} bytes in {files} files");
    eprintln!("cold load of the four pages: {bytes} bytes in {files} files");
}

#[tokio::test]
async fn the_page_says_no_data_yet_and_then_that_the_gateway_is_unreachable() {
    let h = gateway(ROUTES).await;
    let b = Browser::start().await;
    log_in(&h, &b, "overview").await;
    let empty = b.wait("the no-data state", PATIENCE, &text_of("#no-data")).await;
    assert!(empty.as_str().unwrap().starts_with("No data yet"), "{empty}");
    assert_clean(&b, &h.gateway.url()).await;

    let Harness { gateway, upstream, .. } = h;
    gateway.shutdown().await.unwrap();
    // The page refreshes every 5 s and says so when nothing answers.
    let banner = b
        .wait(
            "the unreachable state",
            PATIENCE,
            "const e = document.querySelector('#banner'); return !e.hidden && e.textContent",
        )
        .await;
    assert!(banner.as_str().unwrap().starts_with("Gateway unreachable"), "{banner}");
    drop(upstream);
    b.quit();
}
