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
    // The Anthropic SDK appends /v1/messages to its base URL itself.
    let args = vec![h.url(""), CLIENT_KEY.to_owned(), "to_openai".to_owned(), "to_anthropic".to_owned()];
    let stdout = run_python_sdk("anthropic_sdk.py", args, ANTHROPIC_SDK).await;
    assert_eq!(stdout.lines().filter(|l| l.starts_with("ok ")).count(), 2, "{stdout}");
    // Every call went through the failing primary first.
    assert!(h.upstream.calls("claude-500") > 0 && h.upstream.calls("gpt-500") > 0);
}
