//! A `redis-server` of the test's own on a free loopback port, persistence off; stopped when dropped.
//! [`RedisServer::start_tls`] also listens with TLS (the test CA of switchyard-sim's `tls/`) and wants a password.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub(crate) use switchyard_sim::tls_file;

/// The password of a [`RedisServer::start_tls`] server.
const PASSWORD: &str = "s3cret";

pub(crate) struct RedisServer {
    port: u16,
    /// The TLS port, for a server that wants TLS and [`PASSWORD`] too.
    tls_port: Option<u16>,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one; panics with what to install when `redis-server` is missing.
    pub(crate) async fn start() -> RedisServer {
        let mut server = RedisServer { port: free_port(), tls_port: None, child: None };
        server.restart().await;
        server
    }

    /// Starts one that wants a password and also listens with TLS (certificate `tls/server.pem`).
    pub(crate) async fn start_tls() -> RedisServer {
        let mut server = RedisServer { port: free_port(), tls_port: Some(free_port()), child: None };
        server.restart().await;
        server
    }

    /// `redis://127.0.0.1:PORT` (with the password when it wants one).
    pub(crate) fn url(&self) -> String {
        match self.tls_port {
            Some(_) => format!("redis://:{PASSWORD}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// `rediss://:PASSWORD@127.0.0.1:TLS_PORT` of a [`RedisServer::start_tls`] server.
    pub(crate) fn tls_url(&self) -> String {
        format!("rediss://:{PASSWORD}@127.0.0.1:{}", self.tls_port.unwrap())
    }

    /// Kills it (an outage: no goodbye to the clients).
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty, and waits until it accepts connections.
    pub(crate) async fn restart(&mut self) {
        self.stop();
        let mut args: Vec<String> =
            ["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
                .map(str::to_owned)
                .to_vec();
        if let Some(tls_port) = self.tls_port {
            let file = |name: &str| tls_file(name).to_str().unwrap().to_owned();
            args.extend([
                "--requirepass".to_owned(),
                PASSWORD.to_owned(),
                "--tls-port".to_owned(),
                tls_port.to_string(),
            ]);
            args.extend([
                "--tls-cert-file".to_owned(),
                file("server.pem"),
                "--tls-key-file".to_owned(),
                file("server.key"),
            ]);
            args.extend([
                "--tls-ca-cert-file".to_owned(),
                file("ca.pem"),
                "--tls-auth-clients".to_owned(),
                "no".to_owned(),
            ]);
        }
        let child = Command::new("redis-server")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}): install it (apt-get install -y redis-server); these tests need it"
                )
            });
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("redis-server did not listen on 127.0.0.1:{} within 2 s", self.port);
    }

    /// Every key stored now.
    pub(crate) async fn keys(&self) -> Vec<String> {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("KEYS").arg("*").query_async(&mut conn).await.unwrap()
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
