//! Proxies from the environment (HTTP_PROXY, NO_PROXY, lower case too) are honoured. The variables are read
//! when a provider is built, so each case runs in a child process of this test binary with its own
//! environment; the simulated upstream serves absolute-form requests, so it plays the proxy, and its call
//! counts show which requests went through it.

#![allow(clippy::unwrap_used)]

mod common;

use switchyard::{ChatModel, ErrorKind};
use switchyard_providers::{ApiKey, ProviderConfig, ProviderKind, build_model};
use switchyard_sim::DEFAULT_API_KEY;

use common::child::run_child;
use common::{KINDS, drain, hello, text_of};

/// Nothing listens on the discard port: a request that reaches the upstream went through the proxy.
const UNREACHABLE: &str = "127.0.0.1:9";

fn model(kind: ProviderKind, host: &str, model: &str) -> switchyard::SharedModel {
    let mut config = ProviderConfig::new(kind, "proxied", model);
    config.base_url = match kind {
        ProviderKind::OpenAi => format!("http://{host}/v1"),
        ProviderKind::Anthropic => format!("http://{host}"),
    };
    config.api_key = Some(ApiKey::new(DEFAULT_API_KEY));
    build_model(config).unwrap()
}

fn model_name(kind: ProviderKind, case: &str) -> String {
    format!("{case}-{kind}-ok")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_proxy_from_the_environment_carries_whole_and_streamed_calls() {
    let upstream = common::upstream().await;
    run_child("child_calls_through_http_proxy", vec![("HTTP_PROXY", upstream.url())]).await;
    for kind in KINDS {
        assert_eq!(upstream.calls(&model_name(kind, "upper")), 2, "{kind}: one whole and one streamed call");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lower_case_variables_work_and_no_proxy_hosts_are_called_directly() {
    let upstream = common::upstream().await;
    let env = vec![("http_proxy", upstream.url()), ("no_proxy", "127.0.0.1".to_owned())];
    run_child("child_skips_the_proxy_for_no_proxy_hosts", env).await;
    for kind in KINDS {
        assert_eq!(upstream.calls(&model_name(kind, "direct")), 0, "{kind}: no_proxy host went through the proxy");
        assert_eq!(upstream.calls(&model_name(kind, "lower")), 1, "{kind}: proxied host was not proxied");
    }
}

#[tokio::test]
#[ignore = "a child of http_proxy_from_the_environment_carries_whole_and_streamed_calls, which sets its environment"]
async fn child_calls_through_http_proxy() {
    for kind in KINDS {
        let model = model(kind, UNREACHABLE, &model_name(kind, "upper"));
        let answer = model.complete(hello()).await.unwrap();
        assert!(!answer.message.text().is_empty(), "{kind}");
        let (chunks, error) = drain(&*model, hello()).await;
        assert!(error.is_none(), "{kind}: {error:?}");
        assert!(!text_of(&chunks).is_empty(), "{kind}");
    }
}

#[tokio::test]
#[ignore = "a child of lower_case_variables_work_and_no_proxy_hosts_are_called_directly, which sets its environment"]
async fn child_skips_the_proxy_for_no_proxy_hosts() {
    for kind in KINDS {
        let error = model(kind, UNREACHABLE, &model_name(kind, "direct")).complete(hello()).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Connection, "{kind}: {error}");
        // `localhost` is not in no_proxy: it goes to the proxy, which answers (nothing resolves it here).
        let answer = model(kind, "localhost:9", &model_name(kind, "lower")).complete(hello()).await.unwrap();
        assert!(!answer.message.text().is_empty(), "{kind}");
    }
}
