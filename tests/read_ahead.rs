//! Reading ahead (a private redis-server, and the embedded broker where it applies): a handler
//! with `concurrency = 1` reads in batches, runs entries in stream order, and never lets an
//! entry it read but has not started become reclaimable by another consumer.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{spawn, stop, wait_until};
use opsc_events::prelude::*;
use opsc_events_testkit::RedisServer;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "ahead")]
pub struct Tick {
    pub n: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "ahead_slow")]
pub struct Chore {
    pub n: u64,
    /// How long the handler takes, in milliseconds.
    pub ms: u64,
}

/// Calls seen by the handlers: `(n, consumer's service)` in call order.
#[derive(Clone, Default)]
pub struct Calls(Arc<Mutex<Vec<(u64, String)>>>);

impl Calls {
    fn ns(&self) -> Vec<u64> {
        self.0.lock().unwrap().iter().map(|c| c.0).collect()
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    fn per_n(&self) -> HashMap<u64, usize> {
        let mut m = HashMap::new();
        for n in self.ns() {
            *m.entry(n).or_default() += 1;
        }
        m
    }
}

mod ordered {
    use super::*;

    #[handler(stream = "ahead", group = "ahead.ordered", start = "earliest")]
    pub async fn ordered(event: Tick, ctx: Context, State(calls): State<Calls>) {
        calls
            .0
            .lock()
            .unwrap()
            .push((event.n, ctx.published_by().to_owned()));
    }
}

mod slow {
    use super::*;

    /// Entries wait in the read-ahead queue far longer than `claim_after` in all: 40 × 100 ms
    /// behind one another, with `claim_after` 1 s.
    #[handler(
        stream = "ahead_slow",
        group = "ahead.slow",
        timeout = "300ms",
        claim_after = "1s",
        start = "earliest"
    )]
    pub async fn chore(event: Chore, ctx: Context, State(calls): State<Calls>) {
        calls
            .0
            .lock()
            .unwrap()
            .push((event.n, ctx.group().to_owned()));
        tokio::time::sleep(Duration::from_millis(event.ms)).await;
    }
}

/// Calls of one Redis command so far (`INFO commandstats`).
async fn command_calls(url: &str, command: &str) -> u64 {
    let mut c = common::conn(url).await;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut c)
        .await
        .expect("INFO");
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

async fn ordered_runtime(builder: opsc_events::RuntimeBuilder, calls: &Calls) -> Runtime {
    builder
        .service("ordered")
        .state(calls.clone())
        .only(|h| h.group() == "ahead.ordered")
        .build()
        .await
        .expect("runtime builds")
}

const N: u64 = 2_000;

#[tokio::test]
async fn concurrency_1_reads_in_batches_and_keeps_stream_order_on_redis() {
    let server = RedisServer::start();
    let calls = Calls::default();
    let rt = ordered_runtime(Runtime::builder().redis(server.url()), &calls).await;
    let events: Vec<Tick> = (0..N).map(|n| Tick { n }).collect();
    for chunk in events.chunks(500) {
        rt.publisher().publish_all(chunk).await.expect("publish");
    }
    let reads_before = command_calls(&server.url(), "xreadgroup").await;
    let running = spawn(rt);
    wait_until("every tick handled", Duration::from_secs(30), || async {
        calls.len() as u64 >= N
    })
    .await;
    stop(running).await;
    assert_eq!(calls.ns(), (0..N).collect::<Vec<_>>(), "stream order");
    let reads = command_calls(&server.url(), "xreadgroup").await - reads_before;
    // One read per entry was the old behaviour (2,000 reads); batches of up to 256 need a
    // handful. Generous bound: the first reads are small while the call time is measured, and
    // the last read of a drained stream returns nothing.
    assert!(
        reads < N / 20,
        "{reads} XREADGROUP calls for {N} entries: entries were not read ahead"
    );
}

#[tokio::test]
async fn concurrency_1_keeps_stream_order_on_the_embedded_broker() {
    let calls = Calls::default();
    let rt = ordered_runtime(Runtime::builder().memory(), &calls).await;
    let events: Vec<Tick> = (0..N).map(|n| Tick { n }).collect();
    rt.publisher().publish_all(&events).await.expect("publish");
    let running = spawn(rt);
    wait_until("every tick handled", Duration::from_secs(30), || async {
        calls.len() as u64 >= N
    })
    .await;
    stop(running).await;
    assert_eq!(calls.ns(), (0..N).collect::<Vec<_>>(), "stream order");
}

/// Two consumers of one group. Fast calls first, so each reads far ahead; then 40 slow ones,
/// which queue for seconds behind each other with `claim_after` = 1 s. Without the refresh,
/// the other consumer's reclaim (every 500 ms, entries idle 1 s) takes queued entries and both
/// run them; with it, every entry runs exactly once.
async fn queued_entries_are_never_reclaimed(builder: impl Fn() -> opsc_events::RuntimeBuilder) {
    let calls = Calls::default();
    let build = |name: &'static str| {
        builder()
            .service("slow")
            .consumer_name(name)
            .state(calls.clone())
            .only(|h| h.group() == "ahead.slow")
            .shutdown_timeout(Duration::from_secs(10))
            .build()
    };
    let (a, b) = (build("a").await.expect("a"), build("b").await.expect("b"));
    let publisher = a.publisher();
    let (a, b) = (spawn(a), spawn(b));
    let fast: Vec<Chore> = (0..50).map(|n| Chore { n, ms: 0 }).collect();
    publisher.publish_all(&fast).await.expect("publish");
    wait_until("the fast chores", Duration::from_secs(20), || async {
        calls.len() == 50
    })
    .await;
    let slow: Vec<Chore> = (50..90).map(|n| Chore { n, ms: 100 }).collect();
    publisher.publish_all(&slow).await.expect("publish");
    wait_until("the slow chores", Duration::from_secs(30), || async {
        calls.len() >= 90
    })
    .await;
    // Anything reclaimed would run again within a reclaim period and a call.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    stop(a).await;
    stop(b).await;
    let twice: Vec<u64> = calls
        .per_n()
        .into_iter()
        .filter(|(_, c)| *c > 1)
        .map(|(n, _)| n)
        .collect();
    assert!(twice.is_empty(), "run twice: {twice:?}");
    assert_eq!(calls.len(), 90);
}

#[tokio::test]
async fn entries_read_ahead_are_never_reclaimed_on_redis() {
    let server = RedisServer::start();
    let url = server.url();
    queued_entries_are_never_reclaimed(|| Runtime::builder().redis(url.clone())).await;
    assert!(
        command_calls(&url, "xclaim").await > 0,
        "queued entries were refreshed"
    );
}

#[tokio::test]
async fn entries_read_ahead_are_never_reclaimed_on_the_embedded_broker() {
    let broker = MemoryBroker::new();
    queued_entries_are_never_reclaimed(|| Runtime::builder().memory_with(broker.clone())).await;
}

/// The read-ahead bound follows the handler's call time: a slow handler is not given more
/// entries than it can start within the refresh window.
#[tokio::test]
async fn slow_handlers_read_few_entries_at_once() {
    let server = RedisServer::start();
    let calls = Calls::default();
    let rt = Runtime::builder()
        .redis(server.url())
        .service("slow")
        .state(calls.clone())
        .only(|h| h.group() == "ahead.slow")
        .build()
        .await
        .expect("runtime builds");
    let publisher = rt.publisher();
    let running = spawn(rt);
    // Teach it the call time (100 ms), then give it a backlog.
    let warm: Vec<Chore> = (0..3).map(|n| Chore { n, ms: 100 }).collect();
    publisher.publish_all(&warm).await.expect("publish");
    wait_until("warm-up", Duration::from_secs(10), || async {
        calls.len() == 3
    })
    .await;
    let backlog: Vec<Chore> = (3..40).map(|n| Chore { n, ms: 100 }).collect();
    publisher.publish_all(&backlog).await.expect("publish");
    let key = "opsconductor:{ahead_slow}:events";
    let most_pending = Arc::new(AtomicU64::new(0));
    wait_until("the backlog", Duration::from_secs(30), || async {
        let p = common::pending(&server.url(), key, "ahead.slow").await;
        most_pending.fetch_max(p, Ordering::SeqCst);
        calls.len() == 40
    })
    .await;
    stop(running).await;
    // Window (1 s − 300 ms) / 2 = 350 ms at 100 ms a call: about 3 queued, plus the one running.
    let most = most_pending.load(Ordering::SeqCst);
    assert!(
        most <= 6,
        "{most} entries were pending at once for a handler that takes 100 ms"
    );
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "ahead_gated")]
pub struct Gated {
    pub n: u64,
}

/// While set, the gated handler hangs (its runtime is then stopped with a short shutdown
/// timeout, abandoning what it holds, as a crash would).
#[derive(Clone, Default)]
pub struct Hold(Arc<std::sync::atomic::AtomicBool>);

/// `(n, attempt)` of every call.
#[derive(Clone, Default)]
pub struct Attempts(Arc<Mutex<Vec<(u64, u32)>>>);

mod gated {
    use super::*;

    #[handler(
        stream = "ahead_gated",
        group = "ahead.gated",
        timeout = "500ms",
        claim_after = "1s",
        start = "earliest"
    )]
    pub async fn gated(
        event: Gated,
        ctx: Context,
        State(hold): State<Hold>,
        State(seen): State<Attempts>,
    ) {
        seen.0.lock().unwrap().push((event.n, ctx.attempt()));
        while hold.0.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// An entry read ahead is not an attempt until it starts: abandoned in the queue (the consumer
/// stopped, or died), it comes back on attempt 1, not 2; the one that had started comes back on
/// attempt 2.
async fn entries_abandoned_in_the_queue_are_not_charged_an_attempt(
    builder: impl Fn() -> opsc_events::RuntimeBuilder,
) {
    let (hold, seen) = (Hold::default(), Attempts::default());
    hold.0.store(true, Ordering::SeqCst);
    let build = |name: &'static str, shutdown: Duration| {
        builder()
            .service("gated")
            .consumer_name(name)
            .state(hold.clone())
            .state(seen.clone())
            .only(|h| h.group() == "ahead.gated")
            .shutdown_timeout(shutdown)
            .build()
    };
    let first = build("first", Duration::from_millis(100))
        .await
        .expect("first");
    first
        .publisher()
        .publish_all(&(0..5).map(|n| Gated { n }).collect::<Vec<_>>())
        .await
        .expect("publish");
    let running = spawn(first);
    // Entry 0 hangs in its call; entry 1 waits in the read-ahead queue.
    wait_until("the first call", Duration::from_secs(10), || async {
        !seen.0.lock().unwrap().is_empty()
    })
    .await;
    let probe = builder()
        .service("probe")
        .no_handlers()
        .build()
        .await
        .expect("probe");
    wait_until("entry 1 read ahead", Duration::from_secs(10), || async {
        probe
            .stream_info("ahead_gated")
            .await
            .expect("info")
            .groups
            .iter()
            .any(|g| g.name == "ahead.gated" && g.pending == 2)
    })
    .await;
    stop(running).await;
    hold.0.store(false, Ordering::SeqCst);
    let second = build("second", Duration::from_secs(5))
        .await
        .expect("second");
    let running = spawn(second);
    wait_until("every entry handled", Duration::from_secs(20), || async {
        let s = seen.0.lock().unwrap();
        (0..5).all(|n| s.iter().filter(|c| c.0 == n).count() >= 1) && s.len() >= 6
    })
    .await;
    stop(running).await;
    let calls = seen.0.lock().unwrap().clone();
    assert_eq!(
        calls.iter().filter(|c| c.0 == 0).count(),
        2,
        "entry 0 ran in both consumers: {calls:?}"
    );
    // Entry 0 started in the first consumer: that attempt counts, its second run is attempt 2.
    // Every other entry, read ahead but never started there, runs on attempt 1.
    let second_run_of_0 = calls.iter().filter(|c| c.0 == 0).nth(1).map(|c| c.1);
    assert_eq!(
        second_run_of_0,
        Some(2),
        "the started attempt counts: {calls:?}"
    );
    for (n, attempt) in calls.iter().filter(|c| c.0 != 0) {
        assert_eq!(
            *attempt, 1,
            "entry {n} was charged an attempt it never ran: {calls:?}"
        );
    }
}

#[tokio::test]
async fn entries_abandoned_in_the_queue_are_not_charged_an_attempt_on_redis() {
    let server = RedisServer::start();
    let url = server.url();
    entries_abandoned_in_the_queue_are_not_charged_an_attempt(|| {
        Runtime::builder().redis(url.clone())
    })
    .await;
}

#[tokio::test]
async fn entries_abandoned_in_the_queue_are_not_charged_an_attempt_on_the_embedded_broker() {
    let broker = MemoryBroker::new();
    entries_abandoned_in_the_queue_are_not_charged_an_attempt(|| {
        Runtime::builder().memory_with(broker.clone())
    })
    .await;
}
