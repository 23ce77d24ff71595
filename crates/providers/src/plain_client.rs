//! A plain HTTP client for callers outside the providers (the command line calling a running gateway). It is
//! the providers' transport, so TLS and the environment's proxy are set up in one place for both.

use std::error::Error as StdError;

use bytes::Bytes;
use http::Uri;
use http_body_util::combinators::UnsyncBoxBody;

use crate::h1_head::KeptHeaders;
use crate::transport::Transport;

/// A response body: its frames as they arrive.
pub type PlainBody = UnsyncBoxBody<Bytes, Box<dyn StdError + Send + Sync>>;

/// Pooled requests to the host of one base URL, directly or through the proxy the environment names for it.
#[derive(Clone)]
pub struct PlainClient {
    transport: Transport,
}

/// Why a [`PlainClient`] could not be built or got no response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlainClientError {
    /// The base URL is not an absolute http(s) URL.
    #[error("`{0}` is not an absolute http(s) URL")]
    InvalidUrl(String),
    /// TLS could not be set up.
    #[error("{0}")]
    Setup(String),
    /// The request got no response (connecting, sending or waiting for the headers failed).
    #[error(transparent)]
    Send(Box<dyn StdError + Send + Sync>),
}

impl PlainClient {
    /// A client for `base_url`: its scheme and host decide whether the environment's proxy is used. There is no
    /// time limit; the caller sets one if it wants.
    pub fn new(base_url: &str) -> Result<Self, PlainClientError> {
        let invalid = || PlainClientError::InvalidUrl(crate::redact_url(base_url));
        let uri = base_url.parse::<Uri>().map_err(|_| invalid())?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(invalid());
        }
        let transport = Transport::new(&uri, None, KeptHeaders::All).map_err(PlainClientError::Setup)?;
        Ok(Self { transport })
    }

    /// Sends `request` (its URI absolute, on the base URL's host) and waits for the response headers.
    pub async fn send(&self, request: http::Request<Bytes>) -> Result<http::Response<PlainBody>, PlainClientError> {
        self.transport.send(request).await.map_err(|e| PlainClientError::Send(e.source))
    }
}
