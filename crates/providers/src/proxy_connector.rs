//! Connections through a proxy the environment names (HTTP_PROXY / HTTPS_PROXY / ALL_PROXY): https targets
//! through an HTTP CONNECT tunnel, then TLS to the target; http targets over a connection to the proxy itself
//! (the transport then writes requests in absolute-form).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use http::uri::Scheme;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::transport::BoxError;

/// Plain TCP to an `http://` proxy, TLS to an `https://` one.
type ToProxy = HttpsConnector<HttpConnector>;

/// The connection to the proxy, then maybe TLS to the target inside it.
pub(crate) type ProxyStream = MaybeHttpsStream<MaybeHttpsStream<TokioIo<TcpStream>>>;

/// A connector for every target of one proxy.
#[derive(Clone)]
pub(crate) struct ProxyConnector {
    /// https targets: CONNECT through the proxy, then TLS to the target.
    tunnel: HttpsConnector<Tunnel<ToProxy>>,
    /// http targets: the proxy itself.
    to_proxy: ToProxy,
    /// The proxy's URI, credentials removed (they go in `Proxy-Authorization`).
    proxy: Uri,
    /// Bounds the whole connection: TCP to the proxy, the tunnel and TLS (as reqwest's connect timeout did).
    connect: Option<Duration>,
}

impl ProxyConnector {
    /// A connector through `proxy`; `auth` is its `Proxy-Authorization` for the CONNECT request.
    pub(crate) fn new(
        proxy: Uri,
        auth: Option<http::HeaderValue>,
        tls: rustls::ClientConfig,
        connect: Option<Duration>,
    ) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        // The CONNECT request is HTTP/1.1: offer only that to an https proxy.
        let to_proxy = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls.clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let mut tunnel = Tunnel::new(proxy.clone(), to_proxy.clone());
        if let Some(auth) = auth {
            tunnel = tunnel.with_auth(auth);
        }
        let tunnel = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .wrap_connector(tunnel);
        Self { tunnel, to_proxy, proxy, connect }
    }
}

impl tower_service::Service<Uri> for ProxyConnector {
    type Response = ProxyStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<ProxyStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Both inner connectors are always ready (HttpConnector is).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        if !matches!(self.proxy.scheme_str(), Some("http" | "https")) {
            let message = format!(
                "the proxy from the environment has the scheme {}: only http:// and https:// proxies are supported",
                self.proxy.scheme_str().unwrap_or("(none)")
            );
            return Box::pin(async move { Err(io::Error::other(message).into()) });
        }
        let forward = dst.scheme() == Some(&Scheme::HTTP);
        let connecting: Pin<Box<dyn Future<Output = Result<ProxyStream, BoxError>> + Send>> = if forward {
            let connecting = self.to_proxy.call(self.proxy.clone());
            Box::pin(async move { connecting.await.map(MaybeHttpsStream::Http) })
        } else {
            self.tunnel.call(dst)
        };
        let limit = self.connect;
        Box::pin(async move {
            match limit {
                // An io::Error of kind TimedOut: what the transport reports as a connect timeout.
                Some(limit) => tokio::time::timeout(limit, connecting)
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connecting through the proxy timed out"))?,
                None => connecting.await,
            }
        })
    }
}
