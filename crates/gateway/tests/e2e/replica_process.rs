//! SPEC-2 section 9, the replica list with real `switchyard serve` processes: one killed with SIGKILL
//! drops off `/admin/instances` once its heartbeat has been silent for 10 s; one stopped with SIGTERM
//! drops off at once.

use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchyard_sim::{Upstream, UpstreamConfig};

use crate::common::{ADMIN_KEY, CLIENT_KEY, base_config, spawn_serve};
use crate::redis_server::RedisServer;
use crate::replicas::{Replica, SLACK, within};

/// How long a silent replica stays listed (SPEC-2 section 9; not configurable).
const SILENCE: Duration = Duration::from_secs(10);

/// A `switchyard serve` child sharing state through a Redis; killed when dropped.
pub(crate) struct ServeChild {
    child: Child,
    log: Arc<Mutex<String>>,
    config: std::path::PathBuf,
    /// Where it listens.
    pub(crate) listen: String,
}

impl ServeChild {
    /// Starts one in front of `upstream` sharing state through the Redis at `url`.
    async fn start(name: &str, upstream: &Upstream, url: &str) -> ServeChild {
        ServeChild::with_env(name, upstream, url, &[]).await
    }

    /// Like [`ServeChild::start`] with these environment variables set too.
    pub(crate) async fn with_env(name: &str, upstream: &Upstream, url: &str, env: &[(&str, &str)]) -> ServeChild {
        let text = format!(
            "{}\n[state]\nbackend = \"redis\"\nurl = \"{url}\"\nprefix = \"sy\"\n[storage]\nenabled = false\n\
             [routes.main]\ntargets = [{{ provider = \"oa\", model = \"gpt-ok\" }}]\n",
            base_config(upstream, &format!("api_keys = [\"{CLIENT_KEY}\"]\nadmin_key = \"{ADMIN_KEY}\""))
        );
        let config = std::env::temp_dir().join(format!("switchyard-test-{}-{name}.toml", std::process::id()));
        std::fs::write(&config, text).unwrap();
        let (child, listen, log) = spawn_serve(&config, env).await;
        ServeChild { child, log, config, listen }
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits until it has exited.
    async fn terminate(&mut self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        let exit = loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                break exit;
            }
            assert!(Instant::now() < deadline, "still running 10 s after SIGTERM:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert!(exit.success(), "SIGTERM stops it cleanly: {exit:?}\n{}", self.log());
    }
}

impl Drop for ServeChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

/// The `listen` of every replica `observer` lists.
pub(crate) async fn listed(observer: &Replica) -> Vec<String> {
    let list = observer.admin("/admin/instances").await.body;
    list["instances"].as_array().unwrap().iter().map(|i| i["listen"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_drops_off_the_list_after_ten_silent_seconds() {
    let redis = RedisServer::start().await;
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    let observer = Replica::start(&upstream, &redis.url(), "sy").await;
    let mut doomed = ServeChild::start("killed", &upstream, &redis.url()).await;
    within("the child is listed", Duration::from_secs(3), || async {
        listed(&observer).await.contains(&doomed.listen)
    })
    .await;

    doomed.child.kill().unwrap();
    doomed.child.wait().unwrap();
    let killed = Instant::now();
    assert!(listed(&observer).await.contains(&doomed.listen), "still listed until its heartbeat expires");
    within("the killed child drops off", SILENCE + Duration::from_secs(3), || async {
        !listed(&observer).await.contains(&doomed.listen)
    })
    .await;
    let took = killed.elapsed();
    // Its last heartbeat was written up to 1 s before the kill.
    assert!(took >= SILENCE - Duration::from_secs(1) - SLACK, "dropped off after only {took:?}");
    assert_eq!(listed(&observer).await, vec![observer.gateway.addr.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_stopped_cleanly_drops_off_the_list_at_once() {
    let redis = RedisServer::start().await;
    let upstream = Upstream::start(UpstreamConfig::default()).await.unwrap();
    let observer = Replica::start(&upstream, &redis.url(), "sy").await;
    let mut leaving = ServeChild::start("stopped", &upstream, &redis.url()).await;
    let listen = leaving.listen.clone();
    within("the child is listed", Duration::from_secs(3), || async { listed(&observer).await.contains(&listen) }).await;

    leaving.terminate().await;
    assert_eq!(listed(&observer).await, vec![observer.gateway.addr.to_string()], "gone as soon as it exited");
    // And no late heartbeat brings it back.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!listed(&observer).await.contains(&listen));
}
