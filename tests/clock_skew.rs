//! Leases and due times come from the Redis server's clock, not from the consumers': a consumer
//! on a host whose clock is an hour behind takes a retry under a lease, and a consumer with a
//! right clock must not see that lease as expired and run the same retry again beside it.
//!
//! The skewed consumer is the `fault-consumer` process in `skewed` mode, its wall clock set back
//! an hour through `OPSC_FAULT_CLOCK_OFFSET_MS` (the runtime's `fault-injection` feature).

mod common;
#[path = "common/fault_events.rs"]
mod fault_events;

use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::wait_until;
use fault_events::WorkItem;
use opsc_events::prelude::*;
use opsc_events_testkit::RedisServer;

const HOUR_MS: i64 = 3_600_000;

/// Retries this (right-clocked) process ran.
static RAN: Mutex<Vec<(u64, u32)>> = Mutex::new(Vec::new());

/// The same group as the child's `skewed` handler.
#[handler(
    stream = "faults",
    group = "fault.skew",
    retries = 3,
    backoff = "fixed(100ms)",
    timeout = "5s",
    claim_after = "6s"
)]
async fn right_clock(event: WorkItem, ctx: Context) {
    if event.n != 999 {
        RAN.lock().unwrap().push((event.n, ctx.attempt()));
    }
}

fn spawn_skewed(url: &str) -> (Child, Arc<Mutex<Vec<String>>>) {
    let offset = (-HOUR_MS).to_string();
    common::spawn_fault_consumer(url, "skewed", &[("OPSC_FAULT_CLOCK_OFFSET_MS", &offset)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_with_a_skewed_clock_does_not_lose_its_lease_to_another() {
    common::init_tracing();
    let server = RedisServer::start();
    let url = server.url();
    let (mut child, lines) = spawn_skewed(&url);
    let has = |line: &str| lines.lock().unwrap().iter().any(|l| l == line);
    wait_until("the child is ready", Duration::from_secs(30), || async {
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("ready "))
    })
    .await;
    // The child's clock is really an hour behind: the marker it published says so.
    let probe = Runtime::builder()
        .service("probe")
        .redis(&url)
        .no_handlers()
        .build()
        .await
        .unwrap();
    let entries = probe.read("faults", None, 10).await.unwrap();
    let marker = entries
        .iter()
        .find_map(|e| {
            let env = opsc_events::envelope::Envelope::from_fields(
                e.fields.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())),
            )
            .ok()?;
            Some(env.meta.timestamp_ms)
        })
        .expect("the marker");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(
        (now - marker as i64 - HOUR_MS).abs() < 60_000,
        "the child's clock is an hour behind (marker {marker}, now {now})"
    );

    probe.publisher().publish(&WorkItem { n: 1 }).await.unwrap();
    wait_until(
        "the child runs the retry under its lease",
        Duration::from_secs(20),
        || async { has("attempt 1 2") },
    )
    .await;
    // A consumer with a right clock joins while the retry runs.
    let rt = Runtime::builder()
        .service("fault")
        .redis(&url)
        .only(|h| h.name() == "right_clock")
        .build()
        .await
        .unwrap();
    let running = common::spawn(rt);
    wait_until(
        "the child finished the retry",
        Duration::from_secs(20),
        || async { has("done 1 2") },
    )
    .await;
    wait_until(
        "nothing pending or scheduled",
        Duration::from_secs(20),
        || async {
            let info = probe.stream_info("faults").await.unwrap();
            info.groups
                .iter()
                .any(|g| g.name == "fault.skew" && g.pending == 0 && g.scheduled == 0)
        },
    )
    .await;
    common::stop(running).await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        RAN.lock().unwrap().clone(),
        Vec::<(u64, u32)>::new(),
        "the retry the child held under its lease never ran here too"
    );
}
