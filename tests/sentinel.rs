//! Redis Sentinel: a runtime built with `.redis_sentinel(master, sentinels)` finds the master
//! through the sentinels, and follows a failover (the master killed with SIGKILL, a replica
//! promoted) without a restart: publishing, handling and settlement continue on the new master.
//! With `wait_for_replicas` every acknowledged publish is handled; without it the loss is
//! counted and printed. Each test starts its own master, replicas and three sentinels
//! (`opsc_events_testkit::SentinelSet`).

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::wait_until;
use opsc_events::prelude::*;
use opsc_events::{DeadLetterFilter, Error};
use opsc_events_testkit::{SentinelOptions, SentinelSet};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

const KEY: &str = "opsconductor:{orders}:events";
const GROUP: &str = "shop.record";

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "orders")]
pub struct Order {
    pub n: u64,
    pub poison: bool,
}

/// The numbers of the orders handled.
#[derive(Clone, Default)]
struct Handled(Arc<Mutex<BTreeSet<u64>>>);

impl Handled {
    fn snapshot(&self) -> BTreeSet<u64> {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// Records the order; a poison order is refused for good (dead-lettered).
#[handler(
    stream = "orders",
    timeout = "1s",
    claim_after = "2s",
    retries = 1,
    backoff = "none"
)]
async fn record(event: Order, State(handled): State<Handled>) -> Result<(), HandlerError> {
    if event.poison {
        return Err(HandlerError::permanent(format!(
            "order {} is poison",
            event.n
        )));
    }
    handled.0.lock().expect("lock").insert(event.n);
    Ok(())
}

async fn runtime(set: &SentinelSet, handled: &Handled, replicas: Option<u32>) -> Runtime {
    let mut b = Runtime::builder()
        .service("shop")
        .redis_sentinel(set.master_name(), set.sentinel_urls())
        .connect_timeout(Duration::from_secs(2))
        .response_timeout(Duration::from_secs(1))
        .shutdown_timeout(Duration::from_secs(2))
        .state(handled.clone());
    if let Some(n) = replicas {
        b = b.wait_for_replicas(n, Duration::from_secs(1));
    }
    b.build()
        .await
        .expect("the runtime builds through the sentinels")
}

struct Running(
    oneshot::Sender<()>,
    tokio::task::JoinHandle<opsc_events::Result<()>>,
);

fn spawn(rt: Runtime) -> Running {
    let (tx, rx) = oneshot::channel::<()>();
    Running(
        tx,
        tokio::spawn(rt.run_until(async move {
            let _ = rx.await;
        })),
    )
}

impl Running {
    async fn stop(self) {
        let _ = self.0.send(());
        self.1.await.expect("runtime task").expect("runtime result");
    }
}

async fn xlen(url: &str) -> u64 {
    let mut c = common::conn(url).await;
    redis::cmd("XLEN")
        .arg(KEY)
        .query_async(&mut c)
        .await
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn found_through_the_sentinels_it_publishes_handles_acks_and_dead_letters() {
    common::init_tracing();
    let set = SentinelSet::start_with(SentinelOptions {
        replicas: 1,
        data_password: Some("data-secret".into()),
        sentinel_password: Some("sentinel-secret".into()),
        tls: false,
    });
    let password = std::env::temp_dir().join(format!("opsc-sentinel-pw-{}", std::process::id()));
    std::fs::write(&password, "data-secret\n").expect("password file");
    let handled = Handled::default();
    let rt = Runtime::builder()
        .service("shop")
        .redis_sentinel(set.master_name(), set.sentinel_urls())
        .redis_password_file(&password)
        .state(handled.clone())
        .build()
        .await
        .expect("builds with passwords on sentinels and data nodes");
    let _ = std::fs::remove_file(&password);
    let p = rt.publisher();
    let dl = rt.dead_letters();
    for n in 0..10 {
        p.publish(&Order { n, poison: false })
            .await
            .expect("publish");
    }
    p.publish(&Order {
        n: 99,
        poison: true,
    })
    .await
    .expect("publish");
    let running = spawn(rt);
    wait_until(
        "10 handled, 1 dead-lettered",
        Duration::from_secs(15),
        || async {
            handled.snapshot().len() == 10
                && dl
                    .list(&DeadLetterFilter::stream("orders"))
                    .await
                    .is_ok_and(|l| l.len() == 1)
        },
    )
    .await;
    let master = set.master_url();
    wait_until(
        "every entry acked on the master",
        Duration::from_secs(10),
        || async { common::pending(&master, KEY, GROUP).await == 0 },
    )
    .await;
    assert_eq!(
        xlen(&master).await,
        11,
        "the entries are on the master the sentinels name"
    );
    assert_eq!(handled.snapshot(), (0..10).collect());
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_it_finds_the_master_and_follows_a_failover() {
    common::init_tracing();
    let mut set = SentinelSet::start_with(SentinelOptions {
        replicas: 1,
        data_password: Some("data-secret".into()),
        sentinel_password: None,
        tls: true,
    });
    let ca = set.tls().expect("tls files").ca.clone();
    let password = set
        .tls()
        .expect("tls files")
        .ca
        .with_file_name("data-password");
    std::fs::write(&password, "data-secret").expect("password file");
    let handled = Handled::default();
    let rt = Runtime::builder()
        .service("shop")
        .redis_sentinel(set.master_name(), set.sentinel_urls())
        .tls_ca_file(ca)
        .redis_password_file(&password)
        .connect_timeout(Duration::from_secs(2))
        .response_timeout(Duration::from_secs(1))
        .shutdown_timeout(Duration::from_secs(2))
        .state(handled.clone())
        .build()
        .await
        .expect("builds over TLS");
    let p = rt.publisher();
    let running = spawn(rt);
    for n in 0..5 {
        p.publish(&Order { n, poison: false })
            .await
            .expect("publish");
    }
    wait_until("5 handled", Duration::from_secs(10), || async {
        handled.snapshot().len() == 5
    })
    .await;
    let old = set.kill_master();
    let new = tokio::task::block_in_place(|| set.wait_for_failover(Duration::from_secs(30)));
    assert_ne!(old, new);
    // The same runtime publishes to the new master over TLS once it has moved there.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 100;
    while n < 105 {
        if p.publish(&Order { n, poison: false }).await.is_ok() {
            n += 1;
        }
        assert!(
            Instant::now() < deadline,
            "no publish succeeded after the failover"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_until(
        "the new publishes handled",
        Duration::from_secs(15),
        || async { (100..105).all(|n| handled.snapshot().contains(&n)) },
    )
    .await;
    assert!(xlen(&set.node_url(new)).await >= 5);
    running.stop().await;
}

#[tokio::test]
async fn an_unknown_master_name_is_a_configuration_error() {
    let set = SentinelSet::start(0);
    let err = Runtime::builder()
        .service("shop")
        .redis_sentinel("no-such-master", set.sentinel_urls())
        .connect_timeout(Duration::from_secs(2))
        .no_handlers()
        .build()
        .await
        .expect_err("no sentinel monitors that name");
    let text = err.to_string();
    assert!(text.contains("no-such-master"), "{text}");
}

/// What a publisher under load saw.
#[derive(Default)]
struct Published {
    acked: BTreeSet<u64>,
    failed: u64,
}

/// Publishes `n = 0, 1, …` every 10 ms until `stop`; records which were acknowledged.
fn publish_under_load(
    p: Publisher,
    stop: Arc<AtomicBool>,
) -> (Arc<Mutex<Published>>, tokio::task::JoinHandle<()>) {
    let seen = Arc::new(Mutex::new(Published::default()));
    let out = seen.clone();
    let task = tokio::spawn(async move {
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            let r = p.publish(&Order { n, poison: false }).await;
            {
                let mut s = seen.lock().expect("lock");
                match r {
                    Ok(_) => {
                        s.acked.insert(n);
                    }
                    Err(Error::NotReplicated { .. }) | Err(_) => s.failed += 1,
                }
            }
            n += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    (out, task)
}

fn acked_count(seen: &Mutex<Published>) -> usize {
    seen.lock().map(|s| s.acked.len()).unwrap_or(0)
}

/// The scenario: load, kill -9 of the master, failover, more load on the new master, drain.
/// Returns (acknowledged, handled, acknowledged but never handled).
async fn failover_under_load(replicas: usize, wait: Option<u32>) -> (usize, usize, Vec<u64>) {
    common::init_tracing();
    let mut set = SentinelSet::start(replicas);
    let handled = Handled::default();
    let rt = runtime(&set, &handled, wait).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (seen, publisher) = publish_under_load(rt.publisher(), stop.clone());
    let running = spawn(rt);
    wait_until(
        "50 acknowledged publishes",
        Duration::from_secs(15),
        || async { acked_count(&seen) >= 50 },
    )
    .await;
    let started = Instant::now();
    let old = set.kill_master();
    let new = tokio::task::block_in_place(|| set.wait_for_failover(Duration::from_secs(30)));
    assert_ne!(old, new);
    println!("failover: {old} -> {new} in {:?}", started.elapsed());
    // Publishing and handling continue on the new master, same runtime.
    let before = acked_count(&seen);
    wait_until(
        "50 more acknowledged publishes after the failover",
        Duration::from_secs(20),
        || async { acked_count(&seen) >= before + 50 },
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    publisher.await.expect("publisher task");
    let new_url = set.node_url(new);
    // The publishes acknowledged after the failover are on the new master (whatever the old
    // one had not replicated yet is not).
    assert!(
        xlen(&new_url).await >= 50,
        "the new publishes are on the new master"
    );
    let (acked, failed) = {
        let s = seen.lock().expect("lock");
        (s.acked.clone(), s.failed)
    };
    // Wait (bounded) for every acknowledged publish to be handled; a lost one never will be.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !acked.is_subset(&handled.snapshot()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let done = handled.snapshot();
    let lost: Vec<u64> = acked.difference(&done).copied().collect();
    println!(
        "wait_for_replicas {wait:?}: {} acknowledged, {failed} failed (not acknowledged), {} handled, {} acknowledged but lost: {lost:?}",
        acked.len(),
        done.len(),
        lost.len()
    );
    running.stop().await;
    (acked.len(), done.len(), lost)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_wait_for_replicas_every_acknowledged_publish_survives_a_failover() {
    // Two replicas: the promoted one still has a replica to acknowledge `WAIT 1`.
    let (acked, handled, lost) = failover_under_load(2, Some(1)).await;
    assert!(acked >= 100);
    assert!(handled >= acked);
    assert!(
        lost.is_empty(),
        "acknowledged with a replica's confirmation, yet lost: {lost:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_wait_for_replicas_a_failover_loss_is_counted() {
    let (acked, _handled, lost) = failover_under_load(1, None).await;
    assert!(acked >= 100);
    // Asynchronous replication may lose the master's last writes: counted and reported above,
    // not asserted away. Never more than what was acknowledged just before the kill.
    assert!(lost.len() < acked, "{lost:?}");
}
