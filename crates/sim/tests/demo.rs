//! The model-fallback walkthrough reaches the outcomes the seed's examples show.

use switchyard::{ErrorKind, attempt::AttemptOutcome};
use switchyard_sim::{DEMO_ANSWER, model_fallback_demo};

#[tokio::test(start_paused = true)]
async fn the_walkthrough_retries_falls_back_and_counts() {
    let mut report = String::new();
    let summary = model_fallback_demo(|text| report.push_str(text)).await.unwrap();

    assert_eq!(
        summary.served_by,
        [
            "anthropic/claude-sonnet-4-5",
            "anthropic/claude-sonnet-4-5",
            "openai/gpt-4o", // the primary was disabled
            "openai/gpt-4o", // the primary failed all 3 attempts
        ]
    );
    let attempts: Vec<(&str, u32, Option<ErrorKind>)> =
        summary.retry_attempts.iter().map(|a| (a.target.as_str(), a.retry, a.error_kind())).collect();
    assert_eq!(
        attempts,
        [
            ("anthropic/claude-sonnet-4-5", 0, Some(ErrorKind::Server)),
            ("anthropic/claude-sonnet-4-5", 1, Some(ErrorKind::Server)),
            ("anthropic/claude-sonnet-4-5", 2, Some(ErrorKind::Server)),
            ("openai/gpt-4o", 0, None),
        ]
    );
    assert_eq!(summary.retry_attempts.last().unwrap().outcome, AttemptOutcome::Succeeded);
    assert_eq!(summary.calls, [5, 2, 0], "a disabled primary is not called; deepseek is never needed");
    assert_eq!((summary.stats.total, summary.stats.success, summary.stats.failed), (4, 4, 0));
    assert_eq!(summary.stats.fallbacks, 1);

    for heading in ["Example 1", "Example 2", "Example 3", "Example 4", "Example 5", "=== Final stats ==="] {
        assert!(report.contains(heading), "missing {heading} in:\n{report}");
    }
    assert!(report.contains("[ModelFallback] Success with model anthropic/claude-sonnet-4-5 (stream, retry: 0)"));
    assert!(report.contains(&format!("Response: {DEMO_ANSWER}")), "streamed text is complete");
    assert!(report.contains("Disabling the primary model (anthropic/claude-sonnet-4-5)..."));
    assert!(report.contains("  [enabled] anthropic/claude-sonnet-4-5 - priority: 1, retries: 2 (current)"));
    assert!(report.contains("Success rate: 100.00%"));
}
