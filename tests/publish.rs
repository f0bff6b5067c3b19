//! The publisher against a private redis-server: what lands in the stream is exactly what was
//! published, under the documented key, whatever the publishing pattern.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use opsc_events::prelude::*;
use opsc_events::{ConfigError, Error, WireFormat, error::ConfigProblem};
use opsc_events_testkit::RedisServer;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "assets", name = "asset_created", version = 1)]
struct AssetCreated {
    asset_id: u64,
    hostname: String,
    #[serde(default)]
    tags: Vec<String>,
}

fn asset(i: u64) -> AssetCreated {
    AssetCreated {
        asset_id: i,
        hostname: format!("host-{i}"),
        tags: vec![format!("rack-{}", i % 7)],
    }
}

type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// Every entry of `key`, in stream order, fields in wire order.
async fn xrange(url: &str, key: &str) -> Vec<(MessageId, Fields)> {
    let mut conn = common::conn(url).await;
    let raw: Vec<(String, Vec<Vec<u8>>)> = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .expect("XRANGE");
    raw.into_iter()
        .map(|(id, flat)| {
            let fields = flat
                .chunks(2)
                .map(|kv| (kv[0].clone(), kv[1].clone()))
                .collect();
            (id.parse().expect("entry id"), fields)
        })
        .collect()
}

fn decode(fields: &Fields) -> (Envelope, AssetCreated) {
    let env = Envelope::from_fields(fields.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))
        .expect("envelope decodes");
    let event = envelope::decode_event::<AssetCreated>(&env).expect("event decodes");
    (env, event)
}

async fn runtime(server: &RedisServer) -> Runtime {
    Runtime::builder()
        .service("inventory")
        .redis(server.url())
        .no_handlers()
        .build()
        .await
        .expect("runtime builds")
}

#[tokio::test]
async fn publish_all_of_10_000_lands_in_order_and_decodes() {
    let server = RedisServer::start();
    let rt = runtime(&server).await;
    let events: Vec<AssetCreated> = (0..10_000).map(asset).collect();
    let ids = rt
        .publisher()
        .publish_all(&events)
        .await
        .expect("publish_all");
    assert_eq!(ids.len(), events.len());

    let entries = xrange(&server.url(), "opsconductor:{assets}:events").await;
    assert_eq!(entries.len(), events.len());
    for ((entry_id, fields), (id, expected)) in entries.iter().zip(ids.iter().zip(&events)) {
        assert_eq!(entry_id, id, "publish_all returns the ids in order");
        let (env, event) = decode(fields);
        assert_eq!(&event, expected);
        assert_eq!(env.meta.service, "inventory");
        assert_eq!(
            env.meta.correlation_id, env.meta.event_id,
            "a new event starts its conversation"
        );
        assert_eq!(
            env.meta.event_id.get_version_num(),
            7,
            "event ids are UUIDv7"
        );
        assert_eq!(env.fingerprint, AssetCreated::FINGERPRINT);
    }
    let distinct: std::collections::HashSet<_> = entries
        .iter()
        .map(|(_, f)| decode(f).0.meta.event_id)
        .collect();
    assert_eq!(distinct.len(), events.len(), "every event has its own id");
}

#[tokio::test]
async fn concurrent_publish_of_10_000_from_64_tasks_lands_once_each() {
    let server = RedisServer::start();
    let rt = runtime(&server).await;
    let mut tasks = Vec::new();
    for t in 0..64u64 {
        let publisher = rt.publisher();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in (t..10_000).step_by(64) {
                ids.push((i, publisher.publish(&asset(i)).await.expect("publish")));
            }
            ids
        }));
    }
    let mut published = HashMap::new();
    for t in tasks {
        for (i, id) in t.await.expect("task") {
            assert!(published.insert(id, i).is_none(), "id {id} returned twice");
        }
    }
    assert_eq!(published.len(), 10_000);

    let entries = xrange(&server.url(), "opsconductor:{assets}:events").await;
    assert_eq!(entries.len(), 10_000);
    let mut seen = vec![false; 10_000];
    for (id, fields) in &entries {
        let (_, event) = decode(fields);
        assert_eq!(
            published.get(id),
            Some(&event.asset_id),
            "entry {id} holds what was published under it"
        );
        assert_eq!(event, asset(event.asset_id));
        seen[event.asset_id as usize] = true;
    }
    assert!(seen.iter().all(|s| *s), "every event arrived");
}

#[tokio::test]
async fn publish_with_carries_ids_and_headers() {
    let server = RedisServer::start();
    let rt = Runtime::builder()
        .service("inventory")
        .prefix("tenant-a")
        .redis(server.url())
        .no_handlers()
        .build()
        .await
        .expect("runtime builds");
    let correlation = uuid::Uuid::now_v7();
    let cause = uuid::Uuid::now_v7();
    let event_id = uuid::Uuid::now_v7();
    let opts = PublishOptions::new()
        .event_id(event_id)
        .correlation_id(correlation)
        .causation_id(cause)
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        );
    let id = rt
        .publisher()
        .publish_with(&asset(1), &opts)
        .await
        .expect("publish");

    let entries = xrange(&server.url(), "tenant-a:{assets}:events").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, id);
    let (env, _) = decode(&entries[0].1);
    assert_eq!(env.meta.event_id, event_id);
    assert_eq!(env.meta.correlation_id, correlation);
    assert_eq!(env.meta.causation_id, Some(cause));
    assert_eq!(
        env.meta.headers.get("traceparent").map(String::as_str),
        Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    );
    let names: Vec<&[u8]> = entries[0].1.iter().map(|(k, _)| k.as_slice()).collect();
    assert_eq!(
        names,
        [&b"asset_created@1"[..]],
        "wire format v2: one field, named by type and version"
    );
}

/// A runtime set to write wire format v1 (a fleet in the middle of an upgrade) writes the v1
/// fields; a default runtime reads them, and v2 entries, alike.
#[tokio::test]
async fn v1_writers_and_v2_writers_share_a_stream() {
    let server = RedisServer::start();
    let old = Runtime::builder()
        .service("old")
        .redis(server.url())
        .wire_format(WireFormat::V1)
        .no_handlers()
        .build()
        .await
        .expect("runtime builds");
    assert_eq!(old.publisher().wire_format(), WireFormat::V1);
    let new = runtime(&server).await;
    assert_eq!(new.publisher().wire_format(), WireFormat::V2);
    let cause = uuid::Uuid::now_v7();
    let opts = PublishOptions::new()
        .causation_id(cause)
        .header("tenant", "acme");
    old.publisher()
        .publish_with(&asset(1), &opts)
        .await
        .expect("publish v1");
    new.publisher()
        .publish_with(&asset(2), &opts)
        .await
        .expect("publish v2");

    let entries = xrange(&server.url(), "opsconductor:{assets}:events").await;
    let names = |i: usize| -> Vec<String> {
        entries[i]
            .1
            .iter()
            .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
            .collect()
    };
    assert_eq!(
        names(0),
        [
            "event_type",
            "version",
            "schema",
            "event_id",
            "service",
            "timestamp",
            "correlation_id",
            "causation_id",
            "headers",
            "data"
        ],
        "the documented v1 fields, in the documented order"
    );
    assert_eq!(names(1), ["asset_created@1"]);
    let (v1, e1) = decode(&entries[0].1);
    let (v2, e2) = decode(&entries[1].1);
    assert_eq!((e1, e2), (asset(1), asset(2)));
    assert_eq!(v1.meta.service, "old");
    assert_eq!(v2.meta.service, "inventory");
    for env in [&v1, &v2] {
        assert_eq!(env.meta.causation_id, Some(cause));
        assert_eq!(
            env.meta.headers.get("tenant").map(String::as_str),
            Some("acme")
        );
    }
    // The payload bytes are the same in both formats: the event's own MessagePack.
    assert_eq!(v1.data, rmp_serde::to_vec_named(&asset(1)).expect("encode"));
    assert_eq!(v2.data, rmp_serde::to_vec_named(&asset(2)).expect("encode"));
}

/// A zero trim interval would spin, a zero timeout would fail every call: `build()` refuses
/// them, naming the setting.
#[tokio::test]
async fn zero_intervals_are_refused() {
    let err = Runtime::builder()
        .service("s")
        .memory()
        .no_handlers()
        .trim_interval(Duration::ZERO)
        .response_timeout(Duration::ZERO)
        .build()
        .await
        .expect_err("must not build");
    let Error::Config(ConfigError { problems }) = &err else {
        panic!("expected a configuration error, got {err}");
    };
    assert_eq!(
        problems,
        &[
            ConfigProblem::ZeroDuration {
                setting: "trim_interval"
            },
            ConfigProblem::ZeroDuration {
                setting: "response_timeout"
            }
        ]
    );
    assert!(
        err.to_string()
            .contains("`trim_interval` must be longer than zero")
    );
}

#[tokio::test]
async fn build_reports_every_problem_at_once() {
    let err = Runtime::builder()
        .prefix("bad prefix!")
        .redis("redis://:hunter2@127.0.0.1:1")
        .connect_timeout(Duration::from_millis(500))
        .build()
        .await
        .expect_err("must not build");
    let Error::Config(ConfigError { problems }) = &err else {
        panic!("expected a configuration error, got {err}");
    };
    assert!(problems.contains(&ConfigProblem::MissingService), "{err}");
    assert!(
        problems.iter().any(|p| matches!(
            p,
            ConfigProblem::InvalidName {
                what: "key prefix",
                ..
            }
        )),
        "{err}"
    );
    assert!(problems.contains(&ConfigProblem::NoHandlers), "{err}");
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, ConfigProblem::Unreachable { .. })),
        "{err}"
    );
    let text = err.to_string();
    assert!(!text.contains("hunter2"), "the password leaks: {text}");
    assert!(text.contains("redis://:***@127.0.0.1:1"), "{text}");
}

#[tokio::test]
async fn build_fails_within_the_connect_timeout_when_redis_is_unreachable() {
    // A port that accepts nothing: bind it, then close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let err = Runtime::builder()
        .service("inventory")
        .redis(format!("redis://127.0.0.1:{port}"))
        .connect_timeout(Duration::from_millis(300))
        .no_handlers()
        .build()
        .await
        .expect_err("nothing listens there");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(&err, Error::Config(c) if matches!(c.problems[..], [ConfigProblem::Unreachable { .. }])),
        "{err}"
    );
}

#[tokio::test]
async fn publish_fails_fast_while_redis_is_down_and_resumes_after_restart() {
    let mut server = RedisServer::start();
    let rt = Runtime::builder()
        .service("inventory")
        .redis(server.url())
        .response_timeout(Duration::from_secs(1))
        .no_handlers()
        .build()
        .await
        .expect("runtime builds");
    let publisher = rt.publisher();
    publisher.publish(&asset(1)).await.expect("first publish");

    server.kill();
    let started = Instant::now();
    let err = publisher
        .publish(&asset(2))
        .await
        .expect_err("redis is down");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            err,
            Error::Redis {
                command: "XADD",
                ..
            } | Error::Timeout { .. }
        ),
        "{err}"
    );

    server.restart();
    // The connection is re-established in the background; publishing resumes within a bound.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match publisher.publish(&asset(3)).await {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("publishing did not resume: {e}"),
        }
    }
    let entries = xrange(&server.url(), "opsconductor:{assets}:events").await;
    // The server kept nothing (no persistence): only the event published after the restart.
    assert_eq!(entries.len(), 1);
    assert_eq!(decode(&entries[0].1).1, asset(3));
}
