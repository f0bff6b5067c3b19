//! The durability option: with `wait_for_replicas(n, timeout)` a publish returns only once `n`
//! replicas acknowledged it (`WAIT`); when they do not in time, the call fails with
//! `Error::NotReplicated` naming the entries written — never a silent "acknowledged" that a
//! failover could undo. A primary and a replica, both private `redis-server`s.

mod common;

use std::time::Duration;

use common::wait_until;
use opsc_events::Error;
use opsc_events::prelude::*;
use opsc_events_testkit::{RedisServer, ServerOptions};
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "replicated")]
pub struct Order {
    pub n: u64,
}

async fn replicas_in_sync(url: &str) -> bool {
    let mut c = common::conn(url).await;
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut c)
        .await
        .unwrap();
    info.lines()
        .any(|l| l.starts_with("slave0:") && l.contains("state=online"))
}

#[tokio::test]
async fn a_publish_waits_for_its_replicas_or_says_it_was_not_replicated() {
    let primary = RedisServer::start();
    let mut replica = RedisServer::start_with(ServerOptions {
        extra: vec![("replicaof".into(), format!("127.0.0.1 {}", primary.port()))],
        ..ServerOptions::default()
    });
    wait_until("the replica is online", Duration::from_secs(20), || async {
        replicas_in_sync(&primary.url()).await
    })
    .await;
    // A generous bound while the replica is up: `WAIT` returns as soon as it has acknowledged,
    // and a loaded machine may take longer than a production timeout would allow.
    let rt = Runtime::builder()
        .service("durable")
        .redis(primary.url())
        .no_handlers()
        .wait_for_replicas(1, Duration::from_secs(10))
        .build()
        .await
        .unwrap();
    let p = rt.publisher();
    let id = p
        .publish(&Order { n: 1 })
        .await
        .expect("one replica acknowledged");
    let ids = p
        .publish_all(&[Order { n: 2 }, Order { n: 3 }])
        .await
        .expect("a batch too");
    // It is on the replica already (WAIT returned after the replica had it).
    let mut r = common::conn(&replica.url()).await;
    let len: u64 = redis::cmd("XLEN")
        .arg("opsconductor:{replicated}:events")
        .query_async(&mut r)
        .await
        .unwrap();
    assert_eq!(len, 3, "{id} {ids:?}");

    // Without its replica, the publish is written but not confirmed: a typed error says so.
    replica.kill();
    let rt = Runtime::builder()
        .service("durable")
        .redis(primary.url())
        .no_handlers()
        .wait_for_replicas(1, Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    let p = rt.publisher();
    let err = p
        .publish(&Order { n: 4 })
        .await
        .expect_err("no replica left");
    match &err {
        Error::NotReplicated {
            acked, wanted, ids, ..
        } => {
            assert_eq!((*acked, *wanted), (0, 1));
            assert!(!ids.is_empty());
        }
        other => panic!("expected NotReplicated, got {other:?}"),
    }
    assert_eq!(
        rt.stream_info("replicated").await.unwrap().length,
        4,
        "{err}"
    );

    // Asking for nothing, or waiting no time, is refused at build.
    for (n, t) in [(0, Duration::from_secs(1)), (1, Duration::ZERO)] {
        let e = Runtime::builder()
            .service("durable")
            .redis(primary.url())
            .no_handlers()
            .wait_for_replicas(n, t)
            .build()
            .await
            .expect_err("refused");
        assert!(e.to_string().contains("wait_for_replicas"), "{e}");
    }
}
