//! The official Anthropic Python SDK's structured-output helpers through the gateway, on routes whose primary
//! fails and whose fallback is either kind of target (SPEC-2 section 14).

use crate::common::*;

const ROUTES: &str = r#"
[routes.to_openai]
targets = [{ provider = "an", model = "claude-500" }, { provider = "oa", model = "gpt-ok" }]
[routes.to_anthropic]
targets = [{ provider = "oa", model = "gpt-500" }, { provider = "an", model = "claude-ok" }]
"#;

/// The version `.ci/run` installs.
const ANTHROPIC_SDK: &str = "anthropic==2.15.0";

#[tokio::test]
async fn the_official_anthropic_python_sdk_parses_structured_output_over_either_kind_of_target() {
    let h = start(ROUTES).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/anthropic_sdk.py");
    // The Anthropic SDK appends /v1/messages to its base URL itself.
    let base_url = h.url("");
    // The SDK blocks; the gateway keeps serving on this test's runtime meanwhile.
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args([script, &base_url, CLIENT_KEY, "to_openai", "to_anthropic"])
            .output()
            .expect("python3 is needed to run the Anthropic SDK (.ci/run installs it)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'anthropic'"),
        "the Anthropic SDK is missing: pip install {ANTHROPIC_SDK} (.ci/run does)"
    );
    assert!(out.status.success(), "the Anthropic SDK failed against the gateway:\n{stdout}{stderr}");
    assert_eq!(stdout.lines().filter(|l| l.starts_with("ok ")).count(), 2, "{stdout}");
    // Every call went through the failing primary first.
    assert!(h.upstream.calls("claude-500") > 0 && h.upstream.calls("gpt-500") > 0);
}
