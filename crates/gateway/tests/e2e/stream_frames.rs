//! How a stream's events become body frames: the events that are ready together leave as one frame, and an
//! event never waits for one that is not here yet.

use std::time::Duration;

use http_body_util::BodyExt;
use serde_json::json;
use switchyard_sim::SimModel;
use tower::ServiceExt;

use crate::in_process::{CLIENT_KEY, keys, request, router};

const ROUTES: &str = "[routes.main]\ntargets = [{ provider = \"oa\", model = \"talker\" }]\n";

/// The answer's body frames, each as text, for a stream from `model`.
async fn frames(model: SimModel) -> Vec<String> {
    let router = router(&keys(), ROUTES, vec![model]);
    let body = json!({ "model": "main", "stream": true, "messages": [{ "role": "user", "content": "hi" }] });
    let response =
        router.oneshot(request("POST", "/v1/chat/completions", Some(CLIENT_KEY), Some(&body))).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut frames = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            frames.push(String::from_utf8(data.to_vec()).unwrap());
        }
    }
    frames
}

/// The `data:` events in the frames, in order.
fn events(frames: &[String]) -> Vec<String> {
    frames.concat().split("\n\n").filter(|e| !e.is_empty()).map(str::to_owned).collect()
}

#[tokio::test]
async fn events_ready_together_leave_as_one_frame() {
    let frames = frames(SimModel::replying("talker", "one two three four five")).await;
    let events = events(&frames);
    // Five texts, the finish, [DONE].
    assert_eq!(events.len(), 7, "{events:?}");
    assert!(events.last().is_some_and(|e| e == "data: [DONE]"), "{events:?}");
    assert!(frames.len() < events.len(), "the ready events were sent one frame each: {frames:?}");
    assert!(frames.iter().all(|f| f.ends_with("\n\n")), "a frame holds whole events: {frames:?}");
}

#[tokio::test(start_paused = true)]
async fn an_event_never_waits_for_the_next_one() {
    let model = SimModel::replying("talker", "one two three").chunk_delay(Duration::from_secs(1));
    let frames = frames(model).await;
    let texts: Vec<&String> = frames.iter().filter(|f| f.contains("\"content\":")).collect();
    assert_eq!(texts.len(), 3, "each text arrives a second after the one before, in its own frame: {frames:?}");
    for (text, word) in texts.iter().zip(["one ", "two ", "three"]) {
        // The finish comes with no delay after the last text, so it may share that text's frame.
        assert_eq!(text.matches("\"content\":").count(), 1, "{text}");
        assert!(text.contains(&format!("\"content\":\"{word}\"")), "{text}");
    }
}
