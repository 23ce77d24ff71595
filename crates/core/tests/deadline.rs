//! One deadline for the whole chain: attempts shrink to what is left, no wait runs past it, and the
//! caller hears back by the deadline with every attempt listed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{MS, SEC, shared};
use switchyard::{Backoff, ChatModel, ChatRequest, Error, ErrorKind, FallbackManager, ModelFallback};
use switchyard_sim::{Behavior, SimModel};
use tokio::time::Instant;

fn hanging(name: &str) -> SimModel {
    SimModel::new(name).then_default(Behavior::Hang)
}

fn manager(primary: &SimModel, secondary: &SimModel, deadline: Option<std::time::Duration>) -> FallbackManager {
    let mut b = FallbackManager::builder()
        .target(
            ModelFallback::new("sim", "primary").with_max_retries(3).with_first_chunk_timeout(MS * 400),
            shared(primary),
        )
        .target(
            ModelFallback::new("sim", "secondary").with_max_retries(3).with_first_chunk_timeout(SEC * 20),
            shared(secondary),
        )
        .backoff(Backoff::Constant { delay: MS * 100 })
        .retry_timeouts(true);
    if let Some(d) = deadline {
        b = b.deadline(d);
    }
    b.build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn hanging_targets_with_retries_answer_by_a_one_second_deadline() {
    let (primary, secondary) = (hanging("primary"), hanging("secondary"));
    let m = manager(&primary, &secondary, Some(SEC));
    let start = Instant::now();
    let err = m.complete(ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(start.elapsed(), SEC, "the deadline, to the millisecond, on paused time");
    assert_eq!(err.kind(), ErrorKind::Deadline);
    // 0–400 ms first try, 100 ms wait, 500–900 ms retry; a second retry would start at 1 s: none left.
    let kinds: Vec<_> = err.attempts().iter().map(|a| (a.target.as_str(), a.error_kind())).collect();
    assert_eq!(
        kinds,
        [
            ("sim/primary", Some(ErrorKind::Timeout)),
            ("sim/primary", Some(ErrorKind::Timeout)),
            ("sim/secondary", Some(ErrorKind::Deadline)),
        ]
    );
    assert!(err.to_string().contains("sim/secondary"), "{err}");

    // Streams too.
    let start = Instant::now();
    let err = m.stream(ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!((start.elapsed(), err.kind()), (SEC, ErrorKind::Deadline));
}

#[tokio::test(start_paused = true)]
async fn the_sooner_of_the_route_deadline_and_the_requests_wins() {
    let (primary, secondary) = (hanging("primary"), hanging("secondary"));
    let m = manager(&primary, &secondary, Some(SEC * 10));
    let mut request = ChatRequest::user("hi");
    request.deadline = Some(Instant::now() + MS * 700);
    let start = Instant::now();
    assert_eq!(m.complete(request).await.unwrap_err().kind(), ErrorKind::Deadline);
    assert_eq!(start.elapsed(), MS * 700);

    let mut request = ChatRequest::user("hi");
    request.deadline = Some(Instant::now() + SEC * 60);
    let start = Instant::now();
    assert_eq!(m.complete(request).await.unwrap_err().kind(), ErrorKind::Deadline);
    assert_eq!(start.elapsed(), SEC * 10);
}

#[tokio::test(start_paused = true)]
async fn a_wait_that_cannot_end_in_time_is_skipped_for_the_next_target() {
    let primary =
        SimModel::failing("primary", Error::RateLimited { message: "wait".into(), retry_after: Some(SEC * 2) });
    let secondary = SimModel::replying("secondary", "from secondary");
    let m = manager(&primary, &secondary, Some(SEC));
    let start = Instant::now();
    let r = m.complete(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.served_by.as_deref(), Some("sim/secondary"));
    assert_eq!(start.elapsed(), std::time::Duration::ZERO, "no 2 s wait inside a 1 s deadline");
    assert_eq!(primary.calls(), 1);
}
