//! How a request reaches the upstream: hyper-util's pooled client, directly or through the proxy the
//! environment names for this URL (HTTP_PROXY / HTTPS_PROXY / ALL_PROXY / NO_PROXY, see [`ProxyConnector`]).
//! The rest of the crate sees one [`Transport`] and one [`Response`] type.
//!
//! Always HTTP/1.1, one connection per request in flight (kept alive and reused), never HTTP/2: hyper-util's
//! pool shares one HTTP/2 connection per host and does not open another when the server's stream limit
//! (`SETTINGS_MAX_CONCURRENT_STREAMS`, often 100 to 256) is reached, so past it a stream would wait, without
//! limit, for another to end: a busy gateway's long model streams would time out on a healthy provider.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::PROXY_AUTHORIZATION;
use http::uri::Scheme;
use http::{HeaderValue, Uri};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls_platform_verifier::BuilderVerifierExt;

use crate::proxy_connector::ProxyConnector;

/// Any error a body or a send can end with.
pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

/// A response body, whichever transport carried it.
pub(crate) type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A response, whichever transport carried it.
pub(crate) type Response = http::Response<Body>;

/// Idle pooled connections are closed after this long (reqwest's default, kept from when it was the client).
const POOL_IDLE: Duration = Duration::from_secs(90);

/// One provider's connection pool.
#[derive(Clone)]
pub(crate) enum Transport {
    /// The common case: hyper-util's client, no per-request URL parsing or middleware.
    Direct(Box<Client<HttpsConnector<HttpConnector>, Full<Bytes>>>),
    /// The environment sends this URL through a proxy.
    Proxied(Box<Proxied>),
}

/// The pool of connections through a proxy.
#[derive(Clone)]
pub(crate) struct Proxied {
    client: Client<ProxyConnector, Full<Bytes>>,
    /// `Proxy-Authorization` for http targets (https ones send it in the CONNECT request).
    auth: Option<HeaderValue>,
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
        let tls = tls_config()?;
        if let Some(intercept) = Matcher::from_system().intercept(uri) {
            let auth = intercept.basic_auth().cloned();
            let connector = ProxyConnector::new(intercept.uri().clone(), auth.clone(), tls, connect);
            let client = pool().build(connector);
            return Ok(Self::Proxied(Box::new(Proxied { client, auth })));
        }
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(connect);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = pool().build(https);
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
                let response = client.request(request.map(Full::new)).await.map_err(send_failed)?;
                Ok(response.map(|body| body.map_err(BoxError::from).boxed_unsync()))
            }
            Self::Proxied(proxied) => {
                let mut request = request.map(Full::new);
                if let Some(auth) = &proxied.auth
                    && request.uri().scheme() == Some(&Scheme::HTTP)
                {
                    request.headers_mut().entry(PROXY_AUTHORIZATION).or_insert_with(|| auth.clone());
                }
                let response = proxied.client.request(request).await.map_err(send_failed)?;
                Ok(response.map(|body| body.map_err(BoxError::from).boxed_unsync()))
            }
        }
    }
}

/// A request that got no response; a connect timeout is told apart (the engine names it as such).
fn send_failed(e: hyper_util::client::legacy::Error) -> SendError {
    let connect_timeout = e.is_connect() && has_timed_out_io(&e);
    SendError { connect_timeout, source: Box::new(e) }
}

/// The pool's settings, the same with or without a proxy.
fn pool() -> hyper_util::client::legacy::Builder {
    let mut builder = Client::builder(TokioExecutor::new());
    builder.pool_idle_timeout(POOL_IDLE).pool_timer(TokioTimer::new()).timer(TokioTimer::new());
    builder
}

/// TLS: the process's crypto provider (else ring) and the platform's verifier; ALPN offers http/1.1 only (the
/// connector builder adds it).
fn tls_config() -> Result<rustls::ClientConfig, String> {
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
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
