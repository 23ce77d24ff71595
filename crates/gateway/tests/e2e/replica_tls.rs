//! SPEC-2 section 9: `rediss://` with a password in the URL. A `switchyard serve` child that trusts the
//! test CA (`SSL_CERT_FILE`) shares state over TLS with a replica on the same Redis's plain port; one
//! that trusts another certificate refuses the server's and serves degraded.

use std::time::Duration;

use serde_json::Value;
use switchyard_sim::{Upstream, UpstreamConfig};

use crate::redis_server::{RedisServer, tls_file};
use crate::replica_process::{ServeChild, listed};
use crate::replicas::{Replica, within};

async fn health(child: &ServeChild) -> Value {
    reqwest::get(format!("http://{}/health", child.listen)).await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_shares_over_rediss_with_a_password_and_checks_the_certificate() {
    let redis = RedisServer::start_tls().await;
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    let observer = Replica::start(&upstream, &redis.url(), "sy").await;
    let ca = tls_file("ca.pem");
    let trusting =
        ServeChild::with_env("tls-trusting", &upstream, &redis.tls_url(), &[("SSL_CERT_FILE", ca.to_str().unwrap())])
            .await;
    assert_eq!(health(&trusting).await["state"], "ok", "{}", trusting.log());
    within("the replica on the plain port lists the one on TLS", Duration::from_secs(3), || async {
        listed(&observer).await.contains(&trusting.listen)
    })
    .await;

    // Trusting only a certificate that is not the server's issuer: the server's certificate is refused.
    let other = tls_file("server.pem");
    let doubting = ServeChild::with_env(
        "tls-doubting",
        &upstream,
        &redis.tls_url(),
        &[("SSL_CERT_FILE", other.to_str().unwrap())],
    )
    .await;
    assert_eq!(health(&doubting).await["state"], "degraded", "{}", doubting.log());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!listed(&observer).await.contains(&doubting.listen));
    assert!(doubting.log().contains("invalid peer certificate"), "{}", doubting.log());
}
