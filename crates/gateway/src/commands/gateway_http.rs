//! The command line's HTTP calls to a running gateway, over the providers' plain client: TLS and the
//! environment's proxy are set up where the providers set them up, not a second time here.

use anyhow::Context;
use bytes::Bytes;
use http::{HeaderValue, Method, header};
use http_body_util::{BodyDataStream, BodyExt};
use serde_json::Value;
use switchyard_providers::{PlainBody, PlainClient};

/// A response from the gateway, its body not read yet.
pub type GatewayResponse = http::Response<PlainBody>;

/// Calls to one gateway.
#[derive(Clone)]
pub struct GatewayHttp {
    client: PlainClient,
    url: String,
}

impl std::fmt::Debug for GatewayHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayHttp").field("url", &self.url).finish_non_exhaustive()
    }
}

impl GatewayHttp {
    /// Calls to the gateway at `url` (e.g. `http://127.0.0.1:8080`).
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let url = url.trim_end_matches('/').to_owned();
        let client = PlainClient::new(&url).with_context(|| format!("cannot call the gateway at {url}"))?;
        Ok(Self { client, url })
    }

    /// The gateway's URL, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends `method` to `path_and_query` with `key` as the bearer token and `body` as JSON; waits for the headers.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<GatewayResponse> {
        let mut request = http::Request::builder().method(method).uri(format!("{}{path_and_query}", self.url));
        if let Some(key) = key {
            let mut value =
                HeaderValue::from_str(&format!("Bearer {key}")).context("the key cannot be sent in a header")?;
            value.set_sensitive(true);
            request = request.header(header::AUTHORIZATION, value);
        }
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(body)?)
            }
            None => Bytes::new(),
        };
        let request =
            request.body(body).with_context(|| format!("`{}{path_and_query}` is not a valid URL", self.url))?;
        self.client.send(request).await.with_context(|| format!("cannot reach the gateway at {}", self.url))
    }
}

/// The whole body of `response`, parsed as JSON.
pub async fn json_of(response: GatewayResponse) -> anyhow::Result<Value> {
    let bytes = response.into_body().collect().await.map_err(anyhow::Error::from_boxed)?.to_bytes();
    serde_json::from_slice(&bytes).context("the gateway's answer is not JSON")
}

/// The body of `response` as a stream of byte chunks, as they arrive.
pub fn data_of(response: GatewayResponse) -> BodyDataStream<PlainBody> {
    BodyDataStream::new(response.into_body())
}
