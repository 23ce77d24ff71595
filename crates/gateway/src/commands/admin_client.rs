//! A small client for a running gateway's admin API.

use anyhow::bail;
use http::Method;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use super::gateway_http::{GatewayHttp, GatewayResponse, json_of};

/// Talks to `/admin/*` with the admin key.
#[derive(Debug, Clone)]
pub struct AdminClient {
    http: GatewayHttp,
    key: Option<String>,
}

impl AdminClient {
    /// A client for the gateway at `url`.
    pub fn new(url: &str, key: Option<String>) -> anyhow::Result<Self> {
        Ok(Self { http: GatewayHttp::new(url)?, key })
    }

    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let response = self.http.send(method, path, self.key.as_deref(), body).await?;
        let status = response.status();
        let body = json_of(response).await.unwrap_or(Value::Null);
        if !status.is_success() {
            let message = body["error"]["message"].as_str().unwrap_or("no message");
            let hint = match status.as_u16() {
                401 => " (pass --admin-key or set SWITCHYARD_ADMIN_KEY)",
                403 => {
                    " (the gateway has no admin key: start it with SWITCHYARD_ADMIN_KEY=<key> switchyard serve, or \
                     set server.admin_key in its config; then pass --admin-key <key> or set SWITCHYARD_ADMIN_KEY here)"
                }
                _ => "",
            };
            bail!("the gateway answered {status}: {message}{hint}");
        }
        Ok(body)
    }

    /// `GET /admin/routes`.
    pub async fn routes(&self) -> anyhow::Result<Value> {
        self.send(Method::GET, "/admin/routes", None).await
    }

    /// `PATCH /admin/routes/{route}/targets/{id}`.
    pub async fn patch(&self, route: &str, id: &str, body: &Value) -> anyhow::Result<Value> {
        let path = format!(
            "/admin/routes/{}/targets/{}",
            utf8_percent_encode(route, NON_ALPHANUMERIC),
            utf8_percent_encode(id, NON_ALPHANUMERIC)
        );
        self.send(Method::PATCH, &path, Some(body)).await
    }

    /// `PATCH /admin/targets/{id}`: the change in every route listing the target and for direct requests.
    pub async fn patch_everywhere(&self, id: &str, body: &Value) -> anyhow::Result<Value> {
        let path = format!("/admin/targets/{}", utf8_percent_encode(id, NON_ALPHANUMERIC));
        self.send(Method::PATCH, &path, Some(body)).await
    }

    /// `DELETE /admin/routes/{route}/targets/{id}/override`.
    pub async fn clear_override(&self, route: &str, id: &str) -> anyhow::Result<Value> {
        let path = format!(
            "/admin/routes/{}/targets/{}/override",
            utf8_percent_encode(route, NON_ALPHANUMERIC),
            utf8_percent_encode(id, NON_ALPHANUMERIC)
        );
        self.send(Method::DELETE, &path, None).await
    }

    /// `GET` of an admin path with its query (e.g. `/admin/requests?limit=5`).
    pub async fn get(&self, path_and_query: &str) -> anyhow::Result<Value> {
        self.send(Method::GET, path_and_query, None).await
    }

    /// `GET /admin/events`: the open event stream.
    pub async fn events(&self) -> anyhow::Result<GatewayResponse> {
        let response = self.http.send(Method::GET, "/admin/events", self.key.as_deref(), None).await?;
        if !response.status().is_success() {
            bail!(
                "the gateway answered {} to /admin/events (pass --admin-key or set SWITCHYARD_ADMIN_KEY)",
                response.status()
            );
        }
        Ok(response)
    }

    /// `GET /admin/config`: the running config, secrets redacted.
    pub async fn config(&self) -> anyhow::Result<Value> {
        self.send(Method::GET, "/admin/config", None).await
    }

    /// `GET /admin/stats`.
    pub async fn stats(&self) -> anyhow::Result<Value> {
        self.send(Method::GET, "/admin/stats", None).await
    }

    /// `POST /admin/stats/reset`.
    pub async fn reset_stats(&self) -> anyhow::Result<Value> {
        self.send(Method::POST, "/admin/stats/reset", None).await
    }
}
