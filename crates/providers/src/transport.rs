//! How a request reaches the upstream: hyper-util's pooled client, or reqwest when the environment routes this
//! URL through a proxy (HTTP_PROXY / HTTPS_PROXY / ALL_PROXY / NO_PROXY). The rest of the crate sees one
//! [`Transport`] and one [`Response`] type.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls_platform_verifier::BuilderVerifierExt;

/// Any error a body or a send can end with.
pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

/// A response body, whichever transport carried it.
pub(crate) type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A response, whichever transport carried it.
pub(crate) type Response = http::Response<Body>;

/// Idle pooled connections are closed after this long (reqwest's default, kept).
const POOL_IDLE: Duration = Duration::from_secs(90);

/// One provider's connection pool.
#[derive(Clone)]
pub(crate) enum Transport {
    /// The common case: hyper-util's client, no per-request URL parsing or middleware.
    Direct(Box<Client<HttpsConnector<HttpConnector>, Full<Bytes>>>),
    /// The environment sends this URL through a proxy: reqwest implements proxying (CONNECT, auth).
    Proxied(reqwest::Client),
}

/// A request that got no response.
#[derive(Debug)]
pub(crate) struct SendError {
    /// The connection could not be made within the connect timeout.
    pub(crate) connect_timeout: bool,
    /// What went wrong.
    pub(crate) source: BoxError,
}

impl Transport {
    /// A pool for requests to `uri`; `connect` bounds each connection attempt.
    pub(crate) fn new(uri: &Uri, connect: Option<Duration>) -> Result<Self, String> {
        if Matcher::from_system().intercept(uri).is_some() {
            let mut builder = reqwest::Client::builder().pool_idle_timeout(POOL_IDLE);
            if let Some(connect) = connect {
                builder = builder.connect_timeout(connect);
            }
            return builder.build().map(Self::Proxied).map_err(|e| e.to_string());
        }
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(connect);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config()?)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(https);
        Ok(Self::Direct(Box::new(client)))
    }

    /// True when requests go through a proxy from the environment.
    pub(crate) fn is_proxied(&self) -> bool {
        matches!(self, Self::Proxied(_))
    }

    /// Sends `request` and waits for the response headers.
    pub(crate) async fn send(&self, request: http::Request<Bytes>) -> Result<Response, SendError> {
        match self {
            Self::Direct(client) => {
                let response = client.request(request.map(Full::new)).await.map_err(|e| {
                    let connect_timeout = e.is_connect() && has_timed_out_io(&e);
                    SendError { connect_timeout, source: Box::new(e) }
                })?;
                Ok(response.map(|body| body.map_err(BoxError::from).boxed_unsync()))
            }
            Self::Proxied(client) => {
                // The caller names the URL (credentials redacted); reqwest's own message would show it whole.
                let fail = |e: reqwest::Error| SendError {
                    connect_timeout: e.is_connect() && e.is_timeout(),
                    source: e.without_url().into(),
                };
                let request = reqwest::Request::try_from(request).map_err(fail)?;
                let response = client.execute(request).await.map_err(fail)?;
                let response = http::Response::<reqwest::Body>::from(response);
                Ok(response.map(|body| body.map_err(BoxError::from).boxed_unsync()))
            }
        }
    }
}

/// TLS as reqwest sets it up: the process's crypto provider (else aws-lc-rs), the platform's verifier, and
/// ALPN offering h2 and http/1.1 (the connector builder adds ALPN).
fn tls_config() -> Result<rustls::ClientConfig, String> {
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_platform_verifier()
        .map_err(|e| format!("TLS certificate verifier setup failed: {e}"))?
        .with_no_client_auth();
    Ok(config)
}

/// HttpConnector reports its connect timeout as an io::Error of kind TimedOut somewhere in the chain.
fn has_timed_out_io(e: &(dyn StdError + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(cause) = source {
        if cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut) {
            return true;
        }
        source = cause.source();
    }
    false
}
