//! The schema registry (`<prefix>:{schemas}:registry`): at `build()` every runtime records the
//! event types it publishes and handles, and warns about producers and consumers that do not
//! fit — on Redis and on the embedded broker.

use std::io::Write;
use std::sync::{Arc, Mutex};

use opsc_events::contracts::{Mismatch, RegistryEntry, Role};
use opsc_events::prelude::*;
use opsc_events_testkit::RedisServer;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "reg_assets", name = "reg_asset_created", version = 1)]
pub struct AssetCreatedV1 {
    pub asset_id: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "reg_assets", name = "reg_asset_created", version = 2, upcast_from = AssetCreatedV1)]
pub struct AssetCreated {
    pub asset_id: u64,
    #[serde(default)]
    pub tags: Vec<String>,
}

impl From<AssetCreatedV1> for AssetCreated {
    fn from(v1: AssetCreatedV1) -> Self {
        AssetCreated {
            asset_id: v1.asset_id,
            tags: Vec::new(),
        }
    }
}

/// Published only: no handler in this binary reads it.
#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "reg_assets", name = "reg_asset_deleted", version = 1)]
pub struct AssetDeleted {
    pub asset_id: u64,
}

#[handler(stream = "reg_assets", group = "inventory.index", retries = 5)]
pub async fn index(_e: AssetCreated) {}

#[derive(Clone, Copy)]
enum Broker {
    Redis,
    Memory,
}

struct Env {
    server: Option<RedisServer>,
    memory: opsc_events::MemoryBroker,
}

impl Env {
    fn new(broker: Broker) -> Env {
        Env {
            server: matches!(broker, Broker::Redis).then(RedisServer::start),
            memory: opsc_events::MemoryBroker::new(),
        }
    }

    fn builder(&self, service: &str) -> opsc_events::RuntimeBuilder {
        let b = Runtime::builder().service(service);
        match &self.server {
            Some(s) => b.redis(s.url()),
            None => b.memory_with(self.memory.clone()),
        }
    }

    /// Writes a registry field as another service (in any language) would.
    async fn put(&self, entry: &RegistryEntry) {
        let json = serde_json::to_string(entry).expect("encode");
        match &self.server {
            Some(s) => {
                let client = redis::Client::open(s.url()).expect("url");
                let mut c = client
                    .get_multiplexed_async_connection()
                    .await
                    .expect("connect");
                let () = redis::cmd("HSET")
                    .arg("opsconductor:{schemas}:registry")
                    .arg(entry.field())
                    .arg(json)
                    .query_async(&mut c)
                    .await
                    .expect("HSET");
            }
            None => self.memory.put_hash_field_for_tests(
                "opsconductor:{schemas}:registry",
                &entry.field(),
                &json,
            ),
        }
    }
}

async fn producer_and_consumer_are_recorded(broker: Broker) {
    let env = Env::new(broker);
    let api = env
        .builder("api")
        .no_handlers()
        .publishes::<AssetCreatedV1>()
        .build()
        .await
        .expect("api");
    let inventory = env
        .builder("inventory")
        .only(|h| h.group() == "inventory.index")
        .build()
        .await
        .expect("inventory");
    let (all, bad) = inventory.schema_registry().await.expect("registry");
    assert!(bad.is_empty(), "{bad:?}");

    let find = |service: &str, role: Role, name: &str| -> &RegistryEntry {
        all.iter()
            .find(|e| e.service == service && e.role == role && e.name == name)
            .unwrap_or_else(|| panic!("no {role:?} {name} of {service} in {all:#?}"))
    };
    let v1 = find("api", Role::Producer, "reg_asset_created");
    assert_eq!(
        (v1.version, v1.fingerprint),
        (1, <AssetCreatedV1 as Event>::FINGERPRINT)
    );
    assert_eq!(v1.stream, "reg_assets");
    assert_eq!(v1.shape["fields"][0]["name"], "asset_id");
    assert!(v1.last_seen_ms > 0);
    // Published only, so recorded without being declared.
    find("api", Role::Producer, "reg_asset_deleted");

    let c = find("inventory", Role::Consumer, "reg_asset_created");
    assert_eq!(
        (c.version, c.fingerprint),
        (2, <AssetCreated as Event>::FINGERPRINT)
    );
    assert!(c.can_read(1, <AssetCreatedV1 as Event>::FINGERPRINT));
    let policy = c.handler.as_ref().expect("a consumer has its handler");
    assert_eq!(
        (policy.group.as_str(), policy.retries),
        ("inventory.index", 5)
    );
    // A consumer service does not publish the event it handles, nor the one it upcasts from.
    assert!(
        !all.iter().any(|e| e.service == "inventory"
            && e.role == Role::Producer
            && e.name == "reg_asset_created"),
        "{all:#?}"
    );
    assert_eq!(api.schemas().len() + inventory.schemas().len(), {
        let ours = all
            .iter()
            .filter(|e| e.service == "api" || e.service == "inventory");
        ours.count()
    });
    // v1 is read by upcasting: no mismatch.
    assert_eq!(inventory.schema_mismatches(), [], "{all:#?}");
}

/// A capture of the log lines written while it is the default subscriber of this thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn a_mismatch_is_warned_about_at_start(broker: Broker) {
    let env = Env::new(broker);
    // Another service writes v2 with a payload that differs from ours (changed without a
    // version bump).
    env.put(&RegistryEntry {
        service: "legacy".into(),
        role: Role::Producer,
        stream: "reg_assets".into(),
        name: "reg_asset_created".into(),
        version: 2,
        fingerprint: 0x0123_4567_89ab_cdef,
        shape: serde_json::json!({"type": "unit"}),
        reads: Vec::new(),
        handler: None,
        last_seen_ms: 1,
    })
    .await;

    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .with_writer(move || sink.clone())
        .finish();
    let guard = tracing_subscriber::util::SubscriberInitExt::set_default(subscriber);
    let rt = env
        .builder("inventory")
        .only(|h| h.group() == "inventory.index")
        .build()
        .await
        .expect("a mismatch does not stop the runtime");
    drop(guard);

    let found = rt.schema_mismatches();
    assert!(
        found.iter().any(|m| matches!(m, Mismatch::ConsumerUnmatched { consumer, version: 2, .. } if consumer == "inventory/inventory.index")),
        "{found:#?}"
    );
    assert!(
        found.iter().any(|m| matches!(m, Mismatch::ProducerUnread { producer, fingerprint: 0x0123_4567_89ab_cdef, .. } if producer == "legacy")),
        "{found:#?}"
    );
    let text = String::from_utf8_lossy(&captured.0.lock().expect("lock")).into_owned();
    assert!(
        text.lines().any(|l| l.contains("WARN")
            && l.contains("schema mismatch")
            && l.contains("0123456789abcdef")),
        "{text}"
    );
}

#[tokio::test]
async fn producer_and_consumer_are_recorded_on_redis() {
    producer_and_consumer_are_recorded(Broker::Redis).await;
}

#[tokio::test]
async fn producer_and_consumer_are_recorded_on_the_embedded_broker() {
    producer_and_consumer_are_recorded(Broker::Memory).await;
}

#[tokio::test]
async fn a_mismatch_is_warned_about_at_start_on_redis() {
    a_mismatch_is_warned_about_at_start(Broker::Redis).await;
}

#[tokio::test]
async fn a_mismatch_is_warned_about_at_start_on_the_embedded_broker() {
    a_mismatch_is_warned_about_at_start(Broker::Memory).await;
}
