//! The `[server]` section: listen address, client keys, admin key, limits.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use serde::Deserialize;

use super::Problem;
use super::client_keys::{ClientKeyConfig, ClientKeySection, check_distinct};
use super::duration::{ByteSize, Dur};
use super::secret::Secret;
use crate::conn::ConnectionLimits;

/// `[server]` as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Address to listen on; default `127.0.0.1:8080`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Client keys; absent or empty: no client auth.
    #[serde(default)]
    pub api_keys: Vec<Secret>,
    /// Named client keys with limits and routes (`[server.keys.NAME]`).
    #[serde(default)]
    pub keys: BTreeMap<String, ClientKeySection>,
    /// Key for `/admin/*`; absent: `/admin/*` answers 403.
    #[serde(default)]
    pub admin_key: Option<Secret>,
    /// Allows a non-loopback listen address without `api_keys`.
    #[serde(default)]
    pub allow_unauthenticated: bool,
    /// Largest request body accepted; default `"10MiB"`.
    #[serde(default = "default_max_body")]
    pub max_body: ByteSize,
    /// How long a shutdown waits for in-flight requests and streams; default `"30s"`.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: Dur,
    /// Time to receive a request's headers; default `"10s"`.
    #[serde(default = "default_header_timeout")]
    pub header_timeout: Dur,
    /// Time to receive a request's whole body; default `"30s"`.
    #[serde(default = "default_body_timeout")]
    pub body_timeout: Dur,
    /// Time a kept-alive connection may wait for its next request; default `"60s"`.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: Dur,
    /// Most connections open at once; default 80% of the file descriptor limit.
    #[serde(default)]
    pub max_connections: Option<u64>,
    /// Reload the config when its file changes (checked every second); default false.
    #[serde(default)]
    pub watch_config: bool,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            api_keys: Vec::new(),
            keys: BTreeMap::new(),
            admin_key: None,
            allow_unauthenticated: false,
            max_body: default_max_body(),
            shutdown_timeout: default_shutdown_timeout(),
            header_timeout: default_header_timeout(),
            body_timeout: default_body_timeout(),
            idle_timeout: default_idle_timeout(),
            max_connections: None,
            watch_config: false,
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".to_owned()
}

fn default_max_body() -> ByteSize {
    ByteSize(10 * 1024 * 1024)
}

fn default_shutdown_timeout() -> Dur {
    Dur(Duration::from_secs(30))
}

fn default_header_timeout() -> Dur {
    Dur(Duration::from_secs(10))
}

fn default_body_timeout() -> Dur {
    Dur(Duration::from_secs(30))
}

fn default_idle_timeout() -> Dur {
    Dur(Duration::from_secs(60))
}

/// The validated server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Unnamed client keys (empty, with no named keys: no client auth).
    pub api_keys: Vec<Secret>,
    /// Named client keys; their `routes` are checked against the routes by [`super::Config`].
    pub keys: Vec<ClientKeyConfig>,
    /// Admin key (`None`: admin API answers 403).
    pub admin_key: Option<Secret>,
    /// Largest request body, in bytes.
    pub max_body: usize,
    /// Drain timeout on shutdown.
    pub shutdown_timeout: Duration,
    /// Whether a non-loopback address without client keys was explicitly allowed.
    pub allow_unauthenticated: bool,
    /// Timeouts and the cap of the connection layer.
    pub connections: ConnectionLimits,
    /// Whether a change of the file reloads it.
    pub watch_config: bool,
}

/// `HOST:PORT` with an IP address or a host name (e.g. `localhost:8081`), resolved once at start-up; a name
/// that resolves to several addresses listens on the first IPv4 one.
fn resolve_listen(text: &str) -> Result<SocketAddr, Problem> {
    let invalid = || {
        Problem::at(
            "server.listen",
            format!("invalid address {text:?}; write e.g. \"127.0.0.1:8080\" or \"localhost:8080\""),
        )
    };
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let addrs: Vec<SocketAddr> = text.to_socket_addrs().map_err(|_| invalid())?.collect();
    addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()).copied().ok_or_else(invalid)
}

impl ServerSection {
    /// Checks the section; `listen_override` is `--listen` from the command line.
    pub fn validate(mut self, listen_override: Option<&str>) -> Result<ServerConfig, Problem> {
        let listen_text = listen_override.unwrap_or(&self.listen);
        let listen = resolve_listen(listen_text)?;
        for (i, key) in self.api_keys.iter().enumerate() {
            if key.expose().trim().is_empty() {
                return Err(Problem::at(format!("server.api_keys[{i}]"), "empty key; remove it or set a value"));
            }
        }
        if let Some(key) = &self.admin_key
            && key.expose().trim().is_empty()
        {
            return Err(Problem::at("server.admin_key", "empty key; remove the key to disable the admin API"));
        }
        let keys = std::mem::take(&mut self.keys);
        let keys = keys.into_iter().map(|(name, key)| key.validate(&name)).collect::<Result<Vec<_>, _>>()?;
        check_distinct(&self.api_keys, &keys)?;
        if !listen.ip().is_loopback() && self.api_keys.is_empty() && keys.is_empty() && !self.allow_unauthenticated {
            return Err(Problem::at(
                "server.listen",
                format!(
                    "{listen} is reachable from other machines but server.api_keys is empty; \
                 set api_keys, listen on 127.0.0.1, or set server.allow_unauthenticated = true"
                ),
            ));
        }
        let max_body = usize::try_from(self.max_body.0).map_err(|_| Problem::at("server.max_body", "too large"))?;
        if max_body == 0 {
            return Err(Problem::at("server.max_body", "must be greater than 0"));
        }
        let connections = self.connection_limits()?;
        Ok(ServerConfig {
            listen,
            api_keys: self.api_keys,
            keys,
            admin_key: self.admin_key,
            max_body,
            shutdown_timeout: self.shutdown_timeout.0,
            allow_unauthenticated: self.allow_unauthenticated,
            connections,
            watch_config: self.watch_config,
        })
    }

    fn connection_limits(&self) -> Result<ConnectionLimits, Problem> {
        for (key, value) in [
            ("header_timeout", self.header_timeout),
            ("body_timeout", self.body_timeout),
            ("idle_timeout", self.idle_timeout),
        ] {
            if value.0.is_zero() {
                return Err(Problem::at(format!("server.{key}"), "must be greater than 0; write e.g. \"10s\""));
            }
        }
        let max_connections = match self.max_connections {
            None => None,
            Some(0) => {
                return Err(Problem::at(
                    "server.max_connections",
                    "must be greater than 0; remove the key for the default",
                ));
            }
            Some(n) => Some(usize::try_from(n).map_err(|_| Problem::at("server.max_connections", "too large"))?),
        };
        Ok(ConnectionLimits {
            header_timeout: self.header_timeout.0,
            body_timeout: self.body_timeout.0,
            idle_timeout: self.idle_timeout.0,
            max_connections,
        })
    }
}
