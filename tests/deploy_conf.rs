//! `deploy/redis.conf` is a configuration Redis accepts, its settings take effect (append-only
//! file with fsync every second, no eviction, no RDB snapshots, protected mode), and a service
//! publishes and handles events on a server started from it.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::wait_until;
use opsc_events::prelude::*;
use opsc_events_testkit::{RedisServer, ServerOptions};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "deploy_conf")]
pub struct Deployed {
    pub n: u64,
}

#[derive(Clone, Default)]
pub struct Seen(Arc<AtomicU64>);

#[handler(stream = "deploy_conf")]
async fn count(event: Deployed, State(seen): State<Seen>) {
    seen.0.fetch_add(event.n, Ordering::SeqCst);
}

fn deploy_conf() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/redis.conf")
}

async fn config_get(url: &str, name: &str) -> String {
    let mut c = common::conn(url).await;
    let (_, value): (String, String) = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query_async(&mut c)
        .await
        .unwrap_or_else(|e| panic!("CONFIG GET {name}: {e}"));
    value
}

#[tokio::test]
async fn the_deployment_config_takes_effect_and_runs_a_service() {
    let server = RedisServer::start_with(ServerOptions {
        config: Some(deploy_conf()),
        ..ServerOptions::default()
    });
    let url = server.url();
    for (name, want) in [
        ("appendonly", "yes"),
        ("appendfsync", "everysec"),
        ("maxmemory-policy", "noeviction"),
        ("save", ""),
        ("protected-mode", "yes"),
        ("stream-node-max-entries", "100"),
    ] {
        assert_eq!(config_get(&url, name).await, want, "CONFIG GET {name}");
    }

    let seen = Seen::default();
    let rt = Runtime::builder()
        .service("deploy")
        .redis(&url)
        .state(seen.clone())
        .only(|h| h.stream() == "deploy_conf")
        .shutdown_timeout(Duration::from_secs(2))
        .build()
        .await
        .expect("the runtime builds on the deployment config");
    rt.publisher()
        .publish(&Deployed { n: 42 })
        .await
        .expect("publish");
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(rt.run_until(async move {
        let _ = stopped.await;
    }));
    wait_until("the event handled", Duration::from_secs(15), || async {
        seen.0.load(Ordering::SeqCst) == 42
    })
    .await;
    let _ = stop.send(());
    running
        .await
        .expect("runtime task")
        .expect("the runtime ran without error");

    // The writes went to the append-only file (in the test's directory, not the file's).
    let mut c = common::conn(&url).await;
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query_async(&mut c)
        .await
        .expect("INFO persistence");
    assert!(info.contains("aof_enabled:1"), "{info}");
}
