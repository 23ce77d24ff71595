//! A small client for a running gateway's admin API.

use anyhow::{Context, bail};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

/// Talks to `/admin/*` with the admin key.
#[derive(Debug, Clone)]
pub struct AdminClient {
    http: reqwest::Client,
    url: String,
    key: Option<String>,
}

impl AdminClient {
    /// A client for the gateway at `url`.
    pub fn new(url: &str, key: Option<String>) -> Self {
        Self { http: reqwest::Client::new(), url: url.trim_end_matches('/').to_owned(), key }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let request = match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        };
        let response = request.send().await.with_context(|| format!("cannot reach the gateway at {}", self.url))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
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
        self.send(self.http.get(format!("{}/admin/routes", self.url))).await
    }

    /// `PATCH /admin/routes/{route}/targets/{id}`.
    pub async fn patch(&self, route: &str, id: &str, body: &Value) -> anyhow::Result<Value> {
        let url = format!(
            "{}/admin/routes/{}/targets/{}",
            self.url,
            utf8_percent_encode(route, NON_ALPHANUMERIC),
            utf8_percent_encode(id, NON_ALPHANUMERIC)
        );
        self.send(self.http.patch(url).json(body)).await
    }

    /// `PATCH /admin/targets/{id}`: the change in every route listing the target and for direct requests.
    pub async fn patch_everywhere(&self, id: &str, body: &Value) -> anyhow::Result<Value> {
        let url = format!("{}/admin/targets/{}", self.url, utf8_percent_encode(id, NON_ALPHANUMERIC));
        self.send(self.http.patch(url).json(body)).await
    }

    /// `DELETE /admin/routes/{route}/targets/{id}/override`.
    pub async fn clear_override(&self, route: &str, id: &str) -> anyhow::Result<Value> {
        let url = format!(
            "{}/admin/routes/{}/targets/{}/override",
            self.url,
            utf8_percent_encode(route, NON_ALPHANUMERIC),
            utf8_percent_encode(id, NON_ALPHANUMERIC)
        );
        self.send(self.http.delete(url)).await
    }

    /// `GET` of an admin path with its query (e.g. `/admin/requests?limit=5`).
    pub async fn get(&self, path_and_query: &str) -> anyhow::Result<Value> {
        self.send(self.http.get(format!("{}{path_and_query}", self.url))).await
    }

    /// `GET /admin/events`: the open event stream.
    pub async fn events(&self) -> anyhow::Result<reqwest::Response> {
        let request = self.http.get(format!("{}/admin/events", self.url));
        let request = match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        };
        let response = request.send().await.with_context(|| format!("cannot reach the gateway at {}", self.url))?;
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
        self.send(self.http.get(format!("{}/admin/config", self.url))).await
    }

    /// `GET /admin/stats`.
    pub async fn stats(&self) -> anyhow::Result<Value> {
        self.send(self.http.get(format!("{}/admin/stats", self.url))).await
    }

    /// `POST /admin/stats/reset`.
    pub async fn reset_stats(&self) -> anyhow::Result<Value> {
        self.send(self.http.post(format!("{}/admin/stats/reset", self.url))).await
    }
}
