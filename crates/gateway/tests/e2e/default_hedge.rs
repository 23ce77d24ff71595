//! A route without a `hedge` key hedges a slow first token (SPEC-2 section 15): after 10 s while the primary has
//! fewer than 20 answers, then after its observed p95; the primary's call is cancelled when the hedge wins.
//! Through the router with in-process models and tokio's paused clock: sockets would add nothing here.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::Request;
use serde_json::{Value, json};
use switchyard::SharedModel;
use switchyard_gateway::config::{Config, ProviderConfig, TargetConfig};
use switchyard_gateway::server;
use switchyard_gateway::state::{AppState, ModelFactory};
use switchyard_sim::{Behavior, SimModel};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::common::{ADMIN_KEY, CLIENT_KEY};

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

/// Builds each target from these simulated models, by model name.
struct Models(Vec<SimModel>);

impl ModelFactory for Models {
    fn build(&self, _provider: &ProviderConfig, target: &TargetConfig) -> Result<SharedModel, String> {
        let model = self.0.iter().find(|m| m.name() == target.model).ok_or("no such model")?;
        Ok(Arc::new(model.clone()))
    }
}

fn router(models: Vec<SimModel>) -> axum::Router {
    let text = format!(
        r#"
[server]
api_keys = ["{CLIENT_KEY}"]
admin_key = "{ADMIN_KEY}"
[providers.sim]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
[routes.main]
targets = [{{ provider = "sim", model = "primary" }}, {{ provider = "sim", model = "fallback" }}]
"#
    );
    let config = Config::parse(&text, &|_| None, None).unwrap();
    server::router(Arc::new(AppState::build(&config, &Models(models)).unwrap()))
}

/// Asks the route once: how long the whole answer took (paused clock), the serving target and the text.
async fn ask(router: &axum::Router, path: &str, stream: bool) -> (Duration, String, String) {
    let body = json!({ "model": "main", "stream": stream, "max_tokens": 50, "messages": [{ "role": "user", "content": "hi" }] });
    let request = Request::post(path)
        .header("authorization", format!("Bearer {CLIENT_KEY}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let start = Instant::now();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let target = response.headers()["x-switchyard-target"].to_str().unwrap().to_owned();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (start.elapsed(), target, String::from_utf8_lossy(&bytes).into_owned())
}

async fn admin_stats(router: &axum::Router) -> Value {
    let request = Request::get("/admin/stats")
        .header("authorization", format!("Bearer {ADMIN_KEY}"))
        .body(Body::empty())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    serde_json::from_slice(&axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn without_a_hedge_key_a_slow_first_token_is_hedged_after_ten_seconds_then_at_the_p95() {
    for (path, stream) in [("/v1/chat/completions", true), ("/v1/messages", true), ("/v1/chat/completions", false)] {
        let reply = |delay| Behavior::Delayed(delay, Box::new(Behavior::Reply("from the primary".into())));
        // The primary's first chunk comes after 20 s, then after 100 ms twenty times, then after 20 s again.
        let primary = SimModel::new("primary")
            .script(std::iter::once(reply(SEC * 20)).chain((0..20).map(|_| reply(MS * 100))).chain([reply(SEC * 20)]));
        let fallback = SimModel::replying("fallback", "from the fallback").latency(MS * 50);
        let router = router(vec![primary.clone(), fallback.clone()]);
        let case = format!("{path}, stream: {stream}");

        // Fewer than 20 samples: the fallback is called after 10 s and answers; the primary is cancelled.
        let (took, target, text) = ask(&router, path, stream).await;
        assert_eq!((took, target.as_str()), (SEC * 10 + MS * 50, "sim/fallback"), "{case}");
        assert!(text.contains(r#""model":"fallback""#), "{case}: the answer names its model: {text}");
        for _ in 0..20 {
            let (took, target, _) = ask(&router, path, stream).await;
            assert_eq!((took, target.as_str()), (MS * 100, "sim/primary"), "{case}");
        }
        // Twenty answers: the hedge starts at the primary's p95 (100 ms).
        let (took, target, _) = ask(&router, path, stream).await;
        assert_eq!((took, target.as_str()), (MS * 150, "sim/fallback"), "{case}");

        assert_eq!((primary.calls(), fallback.calls()), (22, 2), "{case}");
        let primary_stats = &admin_stats(&router).await["routes"]["main"]["targets"]["sim/primary"];
        assert_eq!(primary_stats["cancelled"], 2, "{case}: {primary_stats}");
    }
}
