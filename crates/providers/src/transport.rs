//! How a request reaches the upstream: over a connection from the transport's own pool ([`Pool`]), made
//! directly or through the proxy the environment names for this URL (HTTP_PROXY / HTTPS_PROXY / ALL_PROXY /
//! NO_PROXY, see [`ProxyConnector`]). The rest of the crate sees one [`Transport`] and one [`Response`] type.
//!
//! A transport serves one origin (a provider's base URL): its pool needs no key. Always HTTP/1.1 (the
//! exchange itself is `h1_conn`, `h1_head` and `h1_body`), one connection per request in flight (kept alive
//! and reused), never HTTP/2: a shared HTTP/2 connection stops
//! at the server's stream limit (`SETTINGS_MAX_CONCURRENT_STREAMS`, often 100 to 256), past which a stream
//! would wait, without limit, for another to end: a busy gateway's long model streams would time out on a
//! healthy provider.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HOST, PROXY_AUTHORIZATION};
use http::uri::Scheme;
use http::{HeaderMap, HeaderValue, Method, Uri};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::rt::{Read, Write};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use rustls_platform_verifier::BuilderVerifierExt;
use tower_service::Service;

use crate::h1_body::H1Body;
use crate::h1_conn::Conn;
use crate::h1_head::{
    HeadError, KeptHeaders, ResponseHead, end_request_head, read_response_head, write_header, write_request_lines,
};
use crate::pool::Pool;
use crate::proxy_connector::ProxyConnector;

/// Any error a body or a send can end with.
pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

/// A response body, whichever transport carried it.
pub(crate) type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A response, whichever transport carried it.
pub(crate) type Response = http::Response<Body>;

/// One origin's connections; a clone shares them.
#[derive(Clone)]
pub(crate) struct Transport(Arc<Origin>);

/// What every request to the origin shares.
struct Origin {
    connector: Connector,
    pool: Arc<Pool>,
    /// `scheme://host[:port]/`: where new connections go (TLS names the host from it).
    dst: Uri,
    /// The port connections go to, the scheme's default when the URL names none.
    port: u16,
    /// `Host` when the request carries none: the port only when it is not the scheme's default.
    host: HeaderValue,
    /// Requests are written in absolute-form (plain http through a proxy), else in origin-form.
    absolute: bool,
    /// `Proxy-Authorization` for absolute-form requests (https targets send it in the CONNECT request).
    proxy_auth: Option<HeaderValue>,
    /// Which of an answer's headers are kept.
    kept: KeptHeaders,
}

/// A request's head without its length, from [`Transport::prepare`].
#[derive(Debug)]
pub(crate) struct PreparedHead {
    /// The request line and the headers, each line ended.
    lines: Vec<u8>,
    method: Method,
}

/// How a new connection is made.
enum Connector {
    /// The common case: TCP, then TLS for https.
    Direct(HttpsConnector<HttpConnector>),
    /// The environment sends this URL through a proxy (boxed: it is ten times the size of the other).
    Proxied(Box<ProxyConnector>),
}

/// A request that got no response.
#[derive(Debug)]
pub(crate) struct SendError {
    /// The connection could not be made within the connect timeout.
    pub(crate) connect_timeout: bool,
    /// What went wrong.
    pub(crate) source: BoxError,
}

/// Why a request got no response (the cause chain follows in the message).
#[derive(Debug, thiserror::Error)]
enum TransportError {
    /// No connection could be made.
    #[error("could not connect")]
    Connect(#[source] BoxError),
    /// Writing the request failed.
    #[error("sending the request failed")]
    Write(#[source] std::io::Error),
    /// The connection ended, or failed, before a whole response head came.
    #[error("the connection ended before a response came")]
    NoResponse {
        /// Some bytes of a response had come.
        received: bool,
        #[source]
        source: Option<std::io::Error>,
    },
    /// The response head could not be used.
    #[error(transparent)]
    Head(#[from] HeadError),
    /// The request is for another host than the one this transport was made for.
    #[error("the request's URL is not on this client's host")]
    OtherOrigin,
}

impl TransportError {
    /// Whether the exchange failed before any answer: the write failed, or the connection ended with nothing
    /// read. On a kept connection that is almost always a server ending it while it was idle, just as the
    /// request went out, and a new connection is worth one more try.
    fn unanswered(&self) -> bool {
        matches!(self, Self::Write(_) | Self::NoResponse { received: false, .. })
    }
}

impl Transport {
    /// A pool for requests to `uri`'s origin; `connect` bounds each connection attempt.
    pub(crate) fn new(uri: &Uri, connect: Option<Duration>, kept: KeptHeaders) -> Result<Self, String> {
        let tls = tls_config()?;
        let https = uri.scheme() == Some(&Scheme::HTTPS);
        let host = uri.host().ok_or("the URL has no host")?;
        let default_port = if https { 443 } else { 80 };
        let port = uri.port_u16().unwrap_or(default_port);
        // No userinfo: it is never sent as credentials, and would otherwise show in hyper's logs.
        let authority = match uri.port_u16() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let dst = Uri::builder()
            .scheme(if https { Scheme::HTTPS } else { Scheme::HTTP })
            .authority(authority)
            .path_and_query("/")
            .build()
            .map_err(|e| format!("the URL's host cannot be used: {e}"))?;
        let host_text = if port == default_port { host.to_owned() } else { format!("{host}:{port}") };
        let host_header =
            HeaderValue::from_str(&host_text).map_err(|e| format!("the URL's host cannot be sent: {e}"))?;
        let (connector, absolute, proxy_auth) = if let Some(intercept) = Matcher::from_system().intercept(uri) {
            let auth = intercept.basic_auth().cloned();
            let connector = ProxyConnector::new(intercept.uri().clone(), auth.clone(), tls, connect);
            // Plain http goes to the proxy itself, in absolute-form; https through a CONNECT tunnel.
            (Connector::Proxied(Box::new(connector)), !https, if https { None } else { auth })
        } else {
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            http.set_nodelay(true);
            http.set_connect_timeout(connect);
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls)
                .https_or_http()
                .enable_http1()
                .wrap_connector(http);
            (Connector::Direct(https), false, None)
        };
        let origin =
            Origin { connector, pool: Arc::default(), dst, port, host: host_header, absolute, proxy_auth, kept };
        Ok(Self(Arc::new(origin)))
    }

    /// True when requests go through a proxy from the environment.
    pub(crate) fn is_proxied(&self) -> bool {
        matches!(self.0.connector, Connector::Proxied(_))
    }

    /// Sends `request` (its URI absolute, on this transport's origin) and waits for the response headers.
    pub(crate) async fn send(&self, request: http::Request<Bytes>) -> Result<Response, SendError> {
        let (head, body) = request.into_parts();
        let prepared = self.prepare(head.method, &head.uri, &head.headers)?;
        self.send_prepared(&prepared, &body).await
    }

    /// The head of `method` requests to `uri` (absolute, on this transport's origin) with `headers`, written
    /// once for requests that differ only in their body (a provider's calls, `Host` included): writing it per
    /// call, from a copy of the provider's header map, cost 2.2k instructions a whole answer (`bench/instructions`).
    pub(crate) fn prepare(&self, method: Method, uri: &Uri, headers: &HeaderMap) -> Result<PreparedHead, SendError> {
        let origin = &*self.0;
        if !origin.serves(uri) {
            return Err(SendError { connect_timeout: false, source: Box::new(TransportError::OtherOrigin) });
        }
        // Absolute-form to a proxy (plain http through it), else origin-form: the path and query only.
        let target = if origin.absolute {
            Cow::Owned(uri.to_string())
        } else {
            Cow::Borrowed(uri.path_and_query().map_or("/", |path| path.as_str()))
        };
        let mut lines = Vec::with_capacity(256);
        write_request_lines(&mut lines, &method, &target, headers);
        if !headers.contains_key(HOST) {
            write_header(&mut lines, HOST.as_str(), &origin.host);
        }
        if let Some(auth) = origin.proxy_auth.as_ref().filter(|_| origin.absolute)
            && !headers.contains_key(PROXY_AUTHORIZATION)
        {
            write_header(&mut lines, PROXY_AUTHORIZATION.as_str(), auth);
        }
        Ok(PreparedHead { lines, method })
    }

    /// Sends a request with `prepared`'s head and `body` and waits for the response headers.
    pub(crate) async fn send_prepared(&self, prepared: &PreparedHead, body: &[u8]) -> Result<Response, SendError> {
        let origin = &*self.0;
        let mut request_head = Vec::with_capacity(prepared.lines.len() + 32);
        request_head.extend_from_slice(&prepared.lines);
        end_request_head(&mut request_head, &prepared.method, body.len());
        loop {
            let (mut conn, reused) = match origin.pool.checkout() {
                Some(conn) => (conn, true),
                None => (origin.connect().await?, false),
            };
            match exchange(&mut conn, &request_head, body, &prepared.method, origin.kept).await {
                Ok(answer) => {
                    let body = H1Body::new(conn, answer.body, answer.keep_alive, origin.pool.clone());
                    let mut response = http::Response::new(body.boxed_unsync());
                    *response.status_mut() = answer.status;
                    *response.version_mut() = answer.version;
                    *response.headers_mut() = answer.headers;
                    return Ok(response);
                }
                // A kept connection that failed the write or ended with nothing read back: the server closed it
                // while it was idle, as the request went out, so try once more. A new connection's failure is
                // final, which bounds the loop. (hyper retried only a request it had not written; with the
                // check at checkout this case is the narrow race left, and a server that read a request and
                // died without a byte of answer is the price: the engine would retry that error anyway.)
                Err(e) if reused && e.unanswered() => tracing::debug!("a kept upstream connection was closed: {e}"),
                Err(e) => return Err(SendError { connect_timeout: false, source: Box::new(e) }),
            }
        }
    }
}

/// Writes the request on `conn` and reads the response's head.
async fn exchange(
    conn: &mut Conn,
    head: &[u8],
    body: &[u8],
    method: &Method,
    kept: KeptHeaders,
) -> Result<ResponseHead, TransportError> {
    conn.write_request(head, body).await.map_err(TransportError::Write)?;
    let mut received = false;
    loop {
        if !conn.buf.is_empty()
            && let Some(answer) = read_response_head(&mut conn.buf, method, kept)?
        {
            return Ok(answer);
        }
        match conn.fill().await {
            Ok(0) => return Err(TransportError::NoResponse { received, source: None }),
            Ok(_) => received = true,
            Err(e) => return Err(TransportError::NoResponse { received, source: Some(e) }),
        }
    }
}

impl Origin {
    /// Whether `uri` is on this origin: same scheme, host and port (userinfo aside).
    fn serves(&self, uri: &Uri) -> bool {
        let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else { return false };
        if scheme != self.dst.scheme().unwrap_or(&Scheme::HTTP) {
            return false;
        }
        // The usual case, the very authority the transport was made for, without parsing it (that costs a
        // thousand instructions or more per request).
        if self.dst.authority() == Some(authority) {
            return true;
        }
        let default_port = if *scheme == Scheme::HTTPS { 443 } else { 80 };
        authority.port_u16().unwrap_or(default_port) == self.port
            && self.dst.host().is_some_and(|host| host.eq_ignore_ascii_case(authority.host()))
    }

    /// A new connection.
    async fn connect(&self) -> Result<Conn, SendError> {
        let dst = self.dst.clone();
        let opened = match &self.connector {
            Connector::Direct(connector) => open(connector.clone(), dst).await,
            Connector::Proxied(connector) => open((**connector).clone(), dst).await,
        };
        opened.map_err(|e| {
            let connect_timeout = matches!(&e, TransportError::Connect(cause) if has_timed_out_io(&**cause));
            SendError { connect_timeout, source: Box::new(e) }
        })
    }
}

/// Connects with `connector`.
async fn open<C>(mut connector: C, dst: Uri) -> Result<Conn, TransportError>
where
    C: Service<Uri>,
    C::Response: Read + Write + Unpin + Send + 'static,
    C::Error: Into<BoxError>,
{
    poll_fn(|cx| connector.poll_ready(cx)).await.map_err(|e| TransportError::Connect(e.into()))?;
    let io = connector.call(dst).await.map_err(|e| TransportError::Connect(e.into()))?;
    Ok(Conn::new(TokioIo::new(io)))
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

#[cfg(test)]
mod tests {
    //! The retry of a request a kept connection's server ended unanswered. The pool is reached from inside to
    //! hold a connection whose server ends it at exactly the wrong moment, which a real server cannot be made
    //! to do on demand.

    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    #[test]
    fn the_prepared_head_names_the_port_in_host_only_when_it_is_not_the_schemes_default() {
        let head = |url: &str| {
            let uri: Uri = url.parse().unwrap();
            let lines =
                Transport::new(&uri, None, KeptHeaders::All).unwrap().prepare(Method::POST, &uri, &HeaderMap::new());
            String::from_utf8(lines.unwrap().lines).unwrap()
        };
        assert_eq!(head("http://a.test/v1"), "POST /v1 HTTP/1.1\r\nhost: a.test\r\n");
        assert_eq!(head("http://a.test:80/v1"), "POST /v1 HTTP/1.1\r\nhost: a.test\r\n");
        assert_eq!(head("https://a.test/v1"), "POST /v1 HTTP/1.1\r\nhost: a.test\r\n");
        assert_eq!(head("https://a.test:443/v1"), "POST /v1 HTTP/1.1\r\nhost: a.test\r\n");
        assert_eq!(head("https://a.test:80/v1"), "POST /v1 HTTP/1.1\r\nhost: a.test:80\r\n");
        assert_eq!(head("http://a.test:443/v1"), "POST /v1 HTTP/1.1\r\nhost: a.test:443\r\n");
        assert_eq!(head("http://[::1]:8080/v1?q=1"), "POST /v1?q=1 HTTP/1.1\r\nhost: [::1]:8080\r\n");
    }

    #[test]
    fn a_host_the_caller_sets_is_the_one_sent() {
        let uri: Uri = "http://a.test/v1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("b.test"));
        let prepared = Transport::new(&uri, None, KeptHeaders::All).unwrap().prepare(Method::POST, &uri, &headers);
        assert_eq!(String::from_utf8(prepared.unwrap().lines).unwrap(), "POST /v1 HTTP/1.1\r\nhost: b.test\r\n");
    }

    /// An upstream on 127.0.0.1: the first connection reads a request's head and closes without an answer;
    /// the others answer every bodiless request with `ok`. Counts the requests answered.
    async fn upstream() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let answered = Arc::new(AtomicUsize::new(0));
        let counter = answered.clone();
        tokio::spawn(async move {
            let mut first = true;
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let (counter, hang_up) = (counter.clone(), std::mem::replace(&mut first, false));
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let mut head = Vec::new();
                    loop {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                        if head.windows(4).any(|w| w == b"\r\n\r\n") {
                            if hang_up {
                                return;
                            }
                            head.clear();
                            counter.fetch_add(1, Ordering::SeqCst);
                            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                            if socket.write_all(answer).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (addr, answered)
    }

    #[tokio::test]
    async fn a_request_a_kept_connection_ended_unanswered_goes_out_again_on_a_new_one() {
        let (addr, answered) = upstream().await;
        let uri: Uri = format!("http://{addr}/v1").parse().unwrap();
        let transport = Transport::new(&uri, None, KeptHeaders::All).unwrap();
        // The kept connection is open and idle when it is checked out; its server ends it on the request.
        transport.0.pool.put(Conn::new(TcpStream::connect(addr).await.unwrap()));

        let request = http::Request::get(format!("http://{addr}/v1/ping")).body(Bytes::new()).unwrap();
        let response = transport.send(request).await.expect("the request should have gone out again");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"ok");
        assert_eq!(answered.load(Ordering::SeqCst), 1, "answered once, on the new connection");
    }

    #[tokio::test]
    async fn a_new_connection_ended_unanswered_fails_the_request() {
        let (addr, answered) = upstream().await;
        let uri: Uri = format!("http://{addr}/v1").parse().unwrap();
        let transport = Transport::new(&uri, None, KeptHeaders::All).unwrap();
        let request = http::Request::get(format!("http://{addr}/v1/ping")).body(Bytes::new()).unwrap();
        let error = transport.send(request).await.expect_err("a new connection is not tried again");
        assert!(error.source.to_string().contains("ended before a response"), "{}", error.source);
        assert_eq!(answered.load(Ordering::SeqCst), 0);
    }
}
