//! `#[handler]` and the runtime against a private redis-server: groups, load sharing, fan-out,
//! concurrency, ordering, skipping, failures that leave messages pending, reclaim, reconnects,
//! shutdown. Each test selects its own handlers with `.only` and uses its own server.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{consumers, pending, spawn, stop, wait_until};
use opsc_events::DeadLetterFilter;
use opsc_events::prelude::*;
use opsc_events_testkit::{RedisServer, ServerOptions};
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "jobs")]
pub struct JobQueued {
    pub n: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "jobs")]
pub struct JobCancelled {
    pub n: u64,
}

/// What handlers saw, shared with the test through `State`.
#[derive(Clone, Default)]
pub struct Seen {
    calls: Arc<Mutex<Vec<(String, u64, u32)>>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
}

impl Seen {
    fn record(&self, who: &str, n: u64, attempt: u32) {
        self.calls
            .lock()
            .unwrap()
            .push((who.to_owned(), n, attempt));
    }
    fn count(&self, who: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.0 == who)
            .count()
    }
    fn ns(&self, who: &str) -> Vec<u64> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.0 == who)
            .map(|c| c.1)
            .collect()
    }
    fn per_n(&self, who: &str) -> HashMap<u64, usize> {
        let mut m = HashMap::new();
        for n in self.ns(who) {
            *m.entry(n).or_default() += 1;
        }
        m
    }
}

mod fanout {
    use super::*;

    #[handler(stream = "jobs")]
    pub async fn first(event: JobQueued, State(seen): State<Seen>) {
        seen.record("first", event.n, 1);
    }

    #[handler(stream = "jobs")]
    pub async fn second(event: JobQueued, ctx: Context, State(seen): State<Seen>) {
        seen.record("second", event.n, ctx.attempt());
    }
}

mod shared {
    use super::*;

    /// A short `claim_after`: after a Redis restart, an entry whose ack was lost is reclaimed
    /// (and handled again) within seconds.
    #[handler(stream = "jobs", concurrency = 4, timeout = "1s", claim_after = "2s")]
    pub async fn worker(event: JobQueued, State(seen): State<Seen>) {
        tokio::time::sleep(Duration::from_millis(2)).await;
        seen.record("worker", event.n, 1);
    }
}

mod held {
    use super::*;

    /// Opened by the test.
    pub static GATE: std::sync::LazyLock<tokio::sync::watch::Sender<bool>> =
        std::sync::LazyLock::new(|| tokio::sync::watch::channel(false).0);

    /// Held until the test opens the gate. The default `claim_after` (60 s): within the test,
    /// only the ack's own retries can settle its entries.
    #[handler(stream = "jobs", concurrency = 4)]
    pub async fn held(event: JobQueued, ctx: Context, State(seen): State<Seen>) {
        let _ = GATE.subscribe().wait_for(|open| *open).await;
        seen.record("held", event.n, ctx.attempt());
    }
}

mod parallel {
    use super::*;

    #[handler(stream = "jobs", concurrency = 8)]
    pub async fn eight(event: JobQueued, State(seen): State<Seen>) {
        let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        seen.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        seen.in_flight.fetch_sub(1, Ordering::SeqCst);
        seen.record("eight", event.n, 1);
    }

    #[handler(stream = "jobs")]
    pub async fn one(event: JobQueued, State(seen): State<Seen>) {
        let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        seen.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1)).await;
        seen.in_flight.fetch_sub(1, Ordering::SeqCst);
        seen.record("one", event.n, 1);
    }
}

mod failing {
    use super::*;

    /// Fails on odd numbers in three ways; succeeds on even ones.
    #[handler(
        stream = "jobs",
        concurrency = 4,
        retries = 1,
        backoff = "none",
        timeout = "200ms",
        claim_after = "1s"
    )]
    pub async fn flaky(
        event: JobQueued,
        ctx: Context,
        State(seen): State<Seen>,
    ) -> Result<(), HandlerError> {
        seen.record("flaky", event.n, ctx.attempt());
        match event.n % 6 {
            1 => panic!("boom on {}", event.n),
            3 => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(())
            }
            5 => Err(HandlerError::from(format!("failed on {}", event.n))),
            _ => Ok(()),
        }
    }
}

mod slow {
    use super::*;

    #[handler(stream = "jobs", concurrency = 2, timeout = "10s")]
    pub async fn slow(event: JobQueued, State(seen): State<Seen>) {
        seen.in_flight.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(800)).await;
        seen.record("slow", event.n, 1);
    }
}

mod cancelled {
    use super::*;

    #[handler(stream = "jobs")]
    pub async fn on_cancel(event: JobCancelled, State(seen): State<Seen>) {
        seen.record("on_cancel", event.n, 1);
    }
}

mod reclaim {
    use super::*;

    #[handler(stream = "jobs", concurrency = 16, timeout = "1s", claim_after = "2s")]
    pub async fn reclaimer(event: JobQueued, ctx: Context, State(seen): State<Seen>) {
        seen.record("reclaimer", event.n, ctx.delivery_count());
    }
}

const KEY: &str = "opsconductor:{jobs}:events";

async fn runtime(server: &RedisServer, module: &'static str, seen: &Seen) -> Runtime {
    runtime_named(server, module, seen, None).await
}

async fn runtime_named(
    server: &RedisServer,
    module: &'static str,
    seen: &Seen,
    consumer: Option<&str>,
) -> Runtime {
    common::init_tracing();
    let mut b = Runtime::builder()
        .service("svc")
        .redis(server.url())
        .state(seen.clone())
        .shutdown_timeout(Duration::from_secs(5))
        .only(move |h| h.module_path().ends_with(module));
    if let Some(c) = consumer {
        b = b.consumer_name(c);
    }
    b.build().await.expect("runtime builds")
}

async fn publish_jobs(rt: &Runtime, range: std::ops::Range<u64>) {
    let events: Vec<JobQueued> = range.map(|n| JobQueued { n }).collect();
    rt.publisher().publish_all(&events).await.expect("publish");
}

#[tokio::test]
async fn two_handlers_on_one_stream_each_receive_every_event() {
    let server = RedisServer::start();
    let seen = Seen::default();
    let rt = runtime(&server, "::fanout", &seen).await;
    assert_eq!(rt.handlers().len(), 2);
    publish_jobs(&rt, 0..200).await;
    let running = spawn(rt);
    wait_until("both handlers saw 200", Duration::from_secs(20), || async {
        seen.count("first") == 200 && seen.count("second") == 200
    })
    .await;
    stop(running).await;
    for who in ["first", "second"] {
        let per = seen.per_n(who);
        assert_eq!(per.len(), 200);
        assert!(
            per.values().all(|c| *c == 1),
            "{who} handled some event twice"
        );
    }
    assert_eq!(pending(&server.url(), KEY, "svc.first").await, 0);
    assert_eq!(pending(&server.url(), KEY, "svc.second").await, 0);
}

#[tokio::test]
async fn two_runtimes_of_one_service_share_the_group_load() {
    let server = RedisServer::start();
    let (seen_a, seen_b) = (Seen::default(), Seen::default());
    let a = runtime(&server, "::shared", &seen_a).await;
    let b = runtime(&server, "::shared", &seen_b).await;
    assert_ne!(
        a.consumer_name(),
        b.consumer_name(),
        "consumer names are unique per runtime"
    );
    let publisher = a.publisher();
    let (ra, rb) = (spawn(a), spawn(b));
    let events: Vec<JobQueued> = (0..2000).map(|n| JobQueued { n }).collect();
    for chunk in events.chunks(100) {
        publisher.publish_all(chunk).await.expect("publish");
    }
    wait_until("2000 handled in total", Duration::from_secs(30), || async {
        seen_a.count("worker") + seen_b.count("worker") >= 2000
    })
    .await;
    stop(ra).await;
    stop(rb).await;
    let (na, nb) = (seen_a.count("worker"), seen_b.count("worker"));
    assert_eq!(
        na + nb,
        2000,
        "each message handled exactly once without faults"
    );
    assert!(na > 0 && nb > 0, "both runtimes took part: {na} / {nb}");
    let mut all: Vec<u64> = seen_a.ns("worker");
    all.extend(seen_b.ns("worker"));
    all.sort_unstable();
    assert_eq!(all, (0..2000).collect::<Vec<_>>());
}

#[tokio::test]
async fn concurrency_8_runs_8_at_once_and_concurrency_1_keeps_order() {
    let server = RedisServer::start();
    let seen8 = Seen::default();
    let rt8 = Runtime::builder()
        .service("svc")
        .redis(server.url())
        .state(seen8.clone())
        .only(|h| h.name() == "eight")
        .build()
        .await
        .expect("builds");
    let seen1 = Seen::default();
    let rt1 = Runtime::builder()
        .service("svc")
        .redis(server.url())
        .state(seen1.clone())
        .only(|h| h.name() == "one")
        .build()
        .await
        .expect("builds");
    publish_jobs(&rt8, 0..64).await;
    let (r8, r1) = (spawn(rt8), spawn(rt1));
    wait_until("64 handled by both", Duration::from_secs(20), || async {
        seen8.count("eight") == 64 && seen1.count("one") == 64
    })
    .await;
    stop(r8).await;
    stop(r1).await;
    assert_eq!(
        seen8.max_in_flight.load(Ordering::SeqCst),
        8,
        "concurrency = 8 runs exactly 8 at once"
    );
    assert_eq!(seen1.max_in_flight.load(Ordering::SeqCst), 1);
    assert_eq!(
        seen1.ns("one"),
        (0..64).collect::<Vec<_>>(),
        "concurrency = 1 keeps stream order"
    );
}

#[tokio::test]
async fn events_of_other_types_are_acked_and_skipped() {
    let server = RedisServer::start();
    let seen = Seen::default();
    let rt = runtime(&server, "::cancelled", &seen).await;
    publish_jobs(&rt, 0..50).await;
    rt.publisher()
        .publish(&JobCancelled { n: 7 })
        .await
        .expect("publish");
    let running = spawn(rt);
    wait_until("the cancel is handled", Duration::from_secs(10), || async {
        seen.count("on_cancel") == 1
    })
    .await;
    wait_until("nothing pending", Duration::from_secs(10), || async {
        pending(&server.url(), KEY, "svc.on_cancel").await == 0
    })
    .await;
    stop(running).await;
    assert_eq!(seen.ns("on_cancel"), vec![7]);
}

#[tokio::test]
async fn panics_errors_and_timeouts_do_not_stop_the_consumer() {
    let server = RedisServer::start();
    let seen = Seen::default();
    let rt = runtime(&server, "::failing", &seen).await;
    let dead_letters = rt.dead_letters();
    publish_jobs(&rt, 0..60).await;
    let running = spawn(rt);
    // Every failing message gets its two attempts and is dead-lettered; the consumer goes on.
    wait_until("30 dead letters", Duration::from_secs(30), || async {
        dead_letters
            .list(&DeadLetterFilter::stream("jobs"))
            .await
            .unwrap()
            .len()
            == 30
    })
    .await;
    wait_until("nothing pending", Duration::from_secs(10), || async {
        pending(&server.url(), KEY, "svc.flaky").await == 0
    })
    .await;
    stop(running).await;
    let per = seen.per_n("flaky");
    for n in 0..60 {
        let expected = if n % 2 == 0 { 1 } else { 2 };
        assert_eq!(per.get(&n), Some(&expected), "message {n}");
    }
    let letters = dead_letters
        .list(&DeadLetterFilter::stream("jobs"))
        .await
        .unwrap();
    let mut reasons: HashMap<String, usize> = HashMap::new();
    for l in &letters {
        *reasons.entry(l.reason.to_string()).or_default() += 1;
    }
    assert_eq!(reasons.get("panic"), Some(&10));
    assert_eq!(reasons.get("timeout"), Some(&10));
    assert_eq!(reasons.get("handler_error"), Some(&10));
}

#[tokio::test]
async fn missing_state_is_a_startup_error_naming_every_type() {
    let server = RedisServer::start();
    let err = Runtime::builder()
        .service("svc")
        .redis(server.url())
        .only(|h| h.module_path().ends_with("::fanout"))
        .build()
        .await
        .expect_err("state is missing");
    let text = err.to_string();
    assert!(text.contains("Seen"), "{text}");
    assert!(
        text.contains("fanout::first") && text.contains("fanout::second"),
        "{text}"
    );
}

#[tokio::test]
async fn no_selected_handler_is_a_startup_error() {
    let server = RedisServer::start();
    let err = Runtime::builder()
        .service("svc")
        .redis(server.url())
        .only(|_| false)
        .build()
        .await
        .expect_err("nothing selected");
    assert!(err.to_string().contains("no handlers found"), "{err}");
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_handlers_and_acks_them() {
    let server = RedisServer::start();
    let seen = Seen::default();
    let rt = runtime(&server, "::slow", &seen).await;
    publish_jobs(&rt, 0..10).await;
    let running = spawn(rt);
    wait_until("two handlers started", Duration::from_secs(10), || async {
        seen.in_flight.load(Ordering::SeqCst) >= 2
    })
    .await;
    stop(running).await;
    let started = seen.in_flight.load(Ordering::SeqCst);
    let finished = seen.count("slow");
    assert_eq!(
        started, finished,
        "every started handler finished before shutdown returned"
    );
    assert!(
        (2..10).contains(&finished),
        "shutdown stopped reading: {finished} handled"
    );
    // What finished is acked; the rest was never delivered or is pending, never lost.
    let p = pending(&server.url(), KEY, "svc.slow").await;
    assert_eq!(
        p, 0,
        "finished handlers were acked and nothing unstarted was read"
    );
    // A new runtime handles the rest.
    let seen2 = Seen::default();
    let rt2 = runtime(&server, "::slow", &seen2).await;
    let running = spawn(rt2);
    wait_until("the rest handled", Duration::from_secs(20), || async {
        seen2.count("slow") == 10 - finished
    })
    .await;
    stop(running).await;
}

#[tokio::test]
async fn a_restarted_consumer_with_the_same_name_resumes_its_pending_entries() {
    let server = RedisServer::start();
    let seen = Seen::default();
    // Entries delivered to consumer `fixed` but never acked, as if it crashed.
    let rt = runtime_named(&server, "::reclaim", &seen, Some("fixed")).await;
    publish_jobs(&rt, 0..5).await;
    let mut c = common::conn(&server.url()).await;
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("svc.reclaimer")
        .arg("fixed")
        .arg("COUNT")
        .arg(5)
        .arg("STREAMS")
        .arg(KEY)
        .arg(">")
        .query_async(&mut c)
        .await
        .expect("read");
    assert_eq!(pending(&server.url(), KEY, "svc.reclaimer").await, 5);
    let running = spawn(rt);
    // Well before claim_after (2 s) would let anyone reclaim them.
    wait_until(
        "own pending resumed",
        Duration::from_millis(1500),
        || async { seen.count("reclaimer") == 5 },
    )
    .await;
    stop(running).await;
    assert!(
        seen.calls.lock().unwrap().iter().all(|c| c.2 == 2),
        "delivery count 2 is visible in the context"
    );
}

#[tokio::test]
async fn entries_of_a_dead_consumer_are_reclaimed_after_claim_after() {
    let server = RedisServer::start();
    let seen = Seen::default();
    let rt = runtime(&server, "::reclaim", &seen).await;
    publish_jobs(&rt, 0..20).await;
    let mut c = common::conn(&server.url()).await;
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("svc.reclaimer")
        .arg("dead-one")
        .arg("COUNT")
        .arg(20)
        .arg("STREAMS")
        .arg(KEY)
        .arg(">")
        .query_async(&mut c)
        .await
        .expect("read");
    let running = spawn(rt);
    wait_until(
        "all 20 reclaimed and handled",
        Duration::from_secs(15),
        || async { seen.count("reclaimer") == 20 },
    )
    .await;
    wait_until("nothing pending", Duration::from_secs(5), || async {
        pending(&server.url(), KEY, "svc.reclaimer").await == 0
    })
    .await;
    stop(running).await;
    assert!(
        seen.calls.lock().unwrap().iter().all(|c| c.2 >= 2),
        "reclaimed deliveries count from 2"
    );
}

#[tokio::test]
async fn idle_consumers_that_own_nothing_are_removed_and_owners_are_kept() {
    let server = RedisServer::start();
    let seen = Seen::default();
    let rt = Runtime::builder()
        .service("svc")
        .redis(server.url())
        .state(seen.clone())
        .consumer_idle_timeout(Duration::from_millis(500))
        .only(|h| h.module_path().ends_with("::fanout") && h.name() == "first")
        .build()
        .await
        .expect("builds");
    publish_jobs(&rt, 0..1).await;
    let mut c = common::conn(&server.url()).await;
    // `holder` owns an entry, `empty` owns nothing.
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("svc.first")
        .arg("holder")
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg(KEY)
        .arg(">")
        .query_async(&mut c)
        .await
        .expect("read");
    let _: redis::Value = redis::cmd("XGROUP")
        .arg("CREATECONSUMER")
        .arg(KEY)
        .arg("svc.first")
        .arg("empty")
        .query_async(&mut c)
        .await
        .expect("create consumer");
    let me = rt.consumer_name().to_owned();
    let running = spawn(rt);
    wait_until("`empty` removed", Duration::from_secs(10), || async {
        !consumers(&server.url(), KEY, "svc.first")
            .await
            .iter()
            .any(|(n, _)| n == "empty")
    })
    .await;
    let left = consumers(&server.url(), KEY, "svc.first").await;
    stop(running).await;
    assert!(
        left.iter().any(|(n, p)| n == "holder" && *p == 1),
        "a consumer that owns entries is kept: {left:?}"
    );
    assert!(
        left.iter().any(|(n, _)| *n == me),
        "the runtime's own consumer is kept: {left:?}"
    );
}

#[tokio::test]
async fn a_deleted_stream_re_creates_the_group_and_consumption_continues() {
    let server = RedisServer::start();
    let seen = Seen::default();
    let rt = runtime(&server, "::cancelled", &seen).await;
    let publisher = rt.publisher();
    let running = spawn(rt);
    publisher
        .publish(&JobCancelled { n: 1 })
        .await
        .expect("publish");
    wait_until("first handled", Duration::from_secs(10), || async {
        seen.count("on_cancel") == 1
    })
    .await;
    let mut c = common::conn(&server.url()).await;
    let _: () = redis::cmd("DEL")
        .arg(KEY)
        .query_async(&mut c)
        .await
        .expect("DEL");
    // The next read gets NOGROUP; the group is re-created and later events flow.
    wait_until("group re-created", Duration::from_secs(10), || async {
        common::xlen(&server.url(), KEY).await == 0
            && common::groups(&server.url(), KEY).await == ["svc.on_cancel"]
    })
    .await;
    publisher
        .publish(&JobCancelled { n: 2 })
        .await
        .expect("publish");
    wait_until("second handled", Duration::from_secs(10), || async {
        seen.count("on_cancel") == 2
    })
    .await;
    stop(running).await;
}

#[tokio::test]
async fn killed_client_connections_reconnect_and_continue() {
    let server = RedisServer::start();
    let seen = Seen::default();
    let rt = runtime(&server, "::cancelled", &seen).await;
    let publisher = rt.publisher();
    let running = spawn(rt);
    publisher
        .publish(&JobCancelled { n: 0 })
        .await
        .expect("publish");
    wait_until("first handled", Duration::from_secs(10), || async {
        seen.count("on_cancel") == 1
    })
    .await;
    let mut admin = common::conn(&server.url()).await;
    for round in 1..=5u64 {
        let killed: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .arg("SKIPME")
            .arg("yes")
            .query_async(&mut admin)
            .await
            .expect("CLIENT KILL");
        assert!(killed >= 1, "some connection was killed");
        // Publishing may fail once while the publisher reconnects; retry within a bound.
        wait_until("publish after kill", Duration::from_secs(10), || {
            let publisher = publisher.clone();
            async move { publisher.publish(&JobCancelled { n: round }).await.is_ok() }
        })
        .await;
        wait_until("handled after kill", Duration::from_secs(15), || async {
            seen.ns("on_cancel").contains(&round)
        })
        .await;
    }
    stop(running).await;
}

#[tokio::test]
async fn redis_restarted_with_aof_mid_stream_loses_nothing() {
    let mut server = RedisServer::start_with(ServerOptions::durable());
    let seen = Seen::default();
    let rt = runtime(&server, "::shared", &seen).await;
    let publisher = rt.publisher();
    let running = spawn(rt);
    let first: Vec<JobQueued> = (0..300).map(|n| JobQueued { n }).collect();
    publisher.publish_all(&first).await.expect("publish");
    wait_until("some handled", Duration::from_secs(10), || async {
        seen.count("worker") > 0
    })
    .await;
    server.kill();
    server.restart();
    let second: Vec<JobQueued> = (300..600).map(|n| JobQueued { n }).collect();
    wait_until("publish after restart", Duration::from_secs(15), || {
        let publisher = publisher.clone();
        let second = second.clone();
        async move { publisher.publish_all(&second).await.is_ok() }
    })
    .await;
    wait_until("all 600 handled", Duration::from_secs(60), || async {
        let per = seen.per_n("worker");
        (0..600).all(|n| per.contains_key(&n))
    })
    .await;
    stop(running).await;
}

#[tokio::test]
async fn an_ack_that_fails_while_redis_is_down_is_retried_until_it_lands() {
    let mut server = RedisServer::start_with(ServerOptions::durable());
    let url = server.url();
    let key = "opsconductor:{jobs}:events";
    let seen = Seen::default();
    let rt = runtime(&server, "::held", &seen).await;
    publish_jobs(&rt, 0..3).await;
    let running = spawn(rt);
    wait_until(
        "3 entries delivered and held",
        Duration::from_secs(15),
        || async { pending(&url, key, "svc.held").await == 3 },
    )
    .await;
    server.kill();
    held::GATE.send_replace(true);
    wait_until(
        "the handler done with all 3",
        Duration::from_secs(10),
        || async { seen.count("held") == 3 },
    )
    .await;
    // The outage: the acks fail for this long, far longer than a few quick tries last.
    tokio::time::sleep(OUTAGE).await;
    server.restart();
    wait_until(
        "the 3 entries acknowledged by the ack's retries",
        Duration::from_secs(20),
        || async {
            // Not `pending`, which reads an error as 0.
            let mut c = common::conn(&url).await;
            let summary: redis::RedisResult<(u64, redis::Value, redis::Value, redis::Value)> =
                redis::cmd("XPENDING")
                    .arg(key)
                    .arg("svc.held")
                    .query_async(&mut c)
                    .await;
            matches!(summary, Ok((0, ..)))
        },
    )
    .await;
    let mut handled = seen.ns("held");
    handled.sort_unstable();
    assert_eq!(handled, vec![0, 1, 2], "each handled once");
    stop(running).await;
}

/// How long Redis stays down in the ack test.
const OUTAGE: Duration = Duration::from_secs(12);
