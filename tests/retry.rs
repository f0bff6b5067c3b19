//! Retries with backoff, dead letters, replay and trimming, against a private redis-server.
//! Invocation counts are exact.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{pending, wait_until};
use opsc_events::prelude::*;
use opsc_events_testkit::{RedisServer, ServerOptions};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "orders")]
pub struct OrderPlaced {
    pub n: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "orders")]
pub struct OrderShipped {
    pub n: u64,
}

const KEY: &str = "opsconductor:{orders}:events";

/// One handler call: (handler, n, attempt, when).
type Call = (&'static str, u64, u32, Instant);

/// A raw entry to XADD: (case name, fields, expected dead-letter reason).
type Case = (&'static str, Vec<(String, Vec<u8>)>, Option<&'static str>);

/// Calls seen by the handlers.
#[derive(Clone, Default)]
pub struct Calls {
    log: Arc<Mutex<Vec<Call>>>,
    /// Whether `replay::flaky_a` fails.
    broken: Arc<AtomicBool>,
    /// How many times `twice::fails_twice` has failed.
    failures: Arc<AtomicU32>,
}

impl Calls {
    fn record(&self, who: &'static str, n: u64, attempt: u32) {
        self.log
            .lock()
            .unwrap()
            .push((who, n, attempt, Instant::now()));
    }
    fn of(&self, who: &str) -> Vec<(u64, u32, Instant)> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.0 == who)
            .map(|c| (c.1, c.2, c.3))
            .collect()
    }
    fn count(&self, who: &str) -> usize {
        self.of(who).len()
    }
}

mod always {
    use super::*;

    #[handler(stream = "orders", retries = 2, backoff = "fixed(50ms)")]
    pub async fn always_fails(
        event: OrderPlaced,
        ctx: Context,
        State(calls): State<Calls>,
    ) -> Result<(), HandlerError> {
        calls.record("always_fails", event.n, ctx.attempt());
        Err(HandlerError::from(format!("cannot ship order {}", event.n)))
    }
}

mod twice {
    use super::*;

    #[handler(stream = "orders", retries = 2, backoff = "exponential(10ms, 100ms)")]
    pub async fn fails_twice(
        event: OrderPlaced,
        ctx: Context,
        State(calls): State<Calls>,
    ) -> Result<(), HandlerError> {
        calls.record("fails_twice", event.n, ctx.attempt());
        if calls.failures.fetch_add(1, Ordering::SeqCst) < 2 {
            return Err("not yet".into());
        }
        Ok(())
    }
}

mod permanent {
    use super::*;

    #[handler(stream = "orders", retries = 5, backoff = "none")]
    pub async fn rejects(
        event: OrderPlaced,
        State(calls): State<Calls>,
    ) -> Result<(), HandlerError> {
        calls.record("rejects", event.n, 0);
        Err(HandlerError::permanent(format!(
            "order {} is invalid",
            event.n
        )))
    }
}

mod picky {
    use super::*;

    /// Rejects order 0 for good; takes every other one.
    #[handler(stream = "orders", concurrency = 8)]
    pub async fn picky(event: OrderPlaced, State(calls): State<Calls>) -> Result<(), HandlerError> {
        calls.record("picky", event.n, 0);
        if event.n == 0 {
            return Err(HandlerError::permanent("order 0 is invalid"));
        }
        Ok(())
    }
}

mod panics {
    use super::*;

    #[handler(stream = "orders", retries = 1, backoff = "none")]
    pub async fn panics(event: OrderPlaced, State(calls): State<Calls>) {
        calls.record("panics", event.n, 0);
        panic!("kaboom {}", event.n);
    }
}

mod timeouts {
    use super::*;

    #[handler(
        stream = "orders",
        retries = 1,
        backoff = "none",
        timeout = "100ms",
        claim_after = "5s"
    )]
    pub async fn hangs(event: OrderPlaced, State(calls): State<Calls>) {
        calls.record("hangs", event.n, 0);
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
}

mod nonblocking {
    use super::*;

    /// Order 0 fails on its first attempt and waits 3 s for the next; the others succeed.
    #[handler(stream = "orders", retries = 1, backoff = "fixed(3s)", concurrency = 1)]
    pub async fn one_slow_retry(
        event: OrderPlaced,
        ctx: Context,
        State(calls): State<Calls>,
    ) -> Result<(), HandlerError> {
        calls.record("one_slow_retry", event.n, ctx.attempt());
        if event.n == 0 && ctx.attempt() == 1 {
            return Err("first attempt of order 0 fails".into());
        }
        Ok(())
    }
}

mod poison {
    use super::*;

    #[handler(stream = "orders", retries = 3, backoff = "none")]
    pub async fn strict(event: OrderPlaced, State(calls): State<Calls>) {
        calls.record("strict", event.n, 0);
    }
}

mod replay {
    use super::*;

    #[handler(stream = "orders", retries = 0)]
    pub async fn flaky_a(
        event: OrderPlaced,
        ctx: Context,
        State(calls): State<Calls>,
    ) -> Result<(), HandlerError> {
        calls.record("flaky_a", event.n, ctx.attempt());
        if calls.broken.load(Ordering::SeqCst) {
            return Err("downstream is down".into());
        }
        Ok(())
    }

    #[handler(stream = "orders")]
    pub async fn steady_b(event: OrderPlaced, State(calls): State<Calls>) {
        calls.record("steady_b", event.n, 0);
    }
}

mod dropping {
    use super::*;

    #[handler(stream = "orders", retries = 1, backoff = "none", dead_letter = false)]
    pub async fn drops(event: OrderPlaced, State(calls): State<Calls>) -> Result<(), HandlerError> {
        calls.record("drops", event.n, 0);
        Err("nope".into())
    }
}

mod restart {
    use super::*;

    #[handler(
        stream = "orders",
        retries = 2,
        backoff = "fixed(2s)",
        timeout = "1s",
        claim_after = "2s"
    )]
    pub async fn survives_restart(
        event: OrderPlaced,
        ctx: Context,
        State(calls): State<Calls>,
    ) -> Result<(), HandlerError> {
        calls.record("survives_restart", event.n, ctx.attempt());
        if ctx.attempt() == 1 {
            return Err("first attempt fails".into());
        }
        Ok(())
    }
}

mod trimming {
    use super::*;

    #[handler(stream = "orders", concurrency = 64)]
    pub async fn fast(event: OrderPlaced, State(calls): State<Calls>) {
        calls.record("fast", event.n, 0);
    }

    #[handler(stream = "orders", concurrency = 64)]
    pub async fn slow(event: OrderPlaced, State(calls): State<Calls>) {
        calls.record("slow", event.n, 0);
    }
}

async fn build(
    server: &RedisServer,
    calls: &Calls,
    only: impl Fn(&opsc_events::handler::HandlerInfo<'_>) -> bool + Send + Sync + 'static,
) -> Runtime {
    common::init_tracing();
    Runtime::builder()
        .service("shop")
        .redis(server.url())
        .state(calls.clone())
        .shutdown_timeout(Duration::from_secs(2))
        .build_with(only)
        .await
}

trait BuildWith {
    async fn build_with(
        self,
        only: impl Fn(&opsc_events::handler::HandlerInfo<'_>) -> bool + Send + Sync + 'static,
    ) -> Runtime;
}

impl BuildWith for opsc_events::RuntimeBuilder {
    async fn build_with(
        self,
        only: impl Fn(&opsc_events::handler::HandlerInfo<'_>) -> bool + Send + Sync + 'static,
    ) -> Runtime {
        self.only(only).build().await.expect("runtime builds")
    }
}

fn module(
    m: &'static str,
) -> impl Fn(&opsc_events::handler::HandlerInfo<'_>) -> bool + Send + Sync + 'static {
    move |h| h.module_path().ends_with(m)
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

async fn zcard(url: &str, key: &str) -> u64 {
    let mut c = common::conn(url).await;
    redis::cmd("ZCARD")
        .arg(key)
        .query_async(&mut c)
        .await
        .expect("ZCARD")
}

#[tokio::test]
async fn always_failing_with_two_retries_runs_three_times_then_dead_letters_once() {
    let server = RedisServer::start();
    let calls = Calls::default();
    let rt = build(&server, &calls, module("::always")).await;
    let id = rt.publisher().publish(&OrderPlaced { n: 7 }).await.unwrap();
    let dl = rt.dead_letters();
    let running = spawn(rt);
    wait_until("a dead letter", Duration::from_secs(15), || async {
        !dl.list(&DeadLetterFilter::stream("orders"))
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    running.stop().await;
    let seen = calls.of("always_fails");
    assert_eq!(
        seen.iter().map(|c| c.1).collect::<Vec<_>>(),
        vec![1, 2, 3],
        "exactly three invocations, attempts 1..=3"
    );
    let list = dl.list(&DeadLetterFilter::stream("orders")).await.unwrap();
    assert_eq!(list.len(), 1, "exactly one dead letter");
    let l = &list[0];
    assert_eq!(l.reason, DeadLetterReason::HandlerError);
    assert_eq!(l.reason.to_string(), "handler_error");
    assert_eq!(l.attempts, 3);
    assert_eq!(l.original_id, id);
    assert_eq!(l.stream, "orders");
    assert_eq!(l.group, "shop.always_fails");
    assert!(l.handler.ends_with("always::always_fails"), "{}", l.handler);
    assert_eq!(l.error, "cannot ship order 7");
    assert_eq!(l.event_type, "order_placed");
    assert_eq!(l.version, 1);
    assert_eq!(l.replays, 0);
    assert!(l.first_failed_at > 0 && l.first_failed_at <= l.failed_at);
    let back: OrderPlaced = rmp_serde::from_slice(&l.data).unwrap();
    assert_eq!(back, OrderPlaced { n: 7 });
    assert_eq!(dl.get("orders", l.id).await.unwrap().as_ref(), Some(l));
    assert_eq!(
        pending(&server.url(), KEY, "shop.always_fails").await,
        0,
        "nothing left pending"
    );
    assert_eq!(
        zcard(
            &server.url(),
            "opsconductor:{orders}:retry:shop.always_fails"
        )
        .await,
        0,
        "nothing left scheduled"
    );
}

#[tokio::test]
async fn failing_twice_then_succeeding_runs_three_times_without_a_dead_letter() {
    let server = RedisServer::start();
    let calls = Calls::default();
    let rt = build(&server, &calls, module("::twice")).await;
    rt.publisher().publish(&OrderPlaced { n: 1 }).await.unwrap();
    let dl = rt.dead_letters();
    let running = spawn(rt);
    wait_until("three invocations", Duration::from_secs(10), || async {
        calls.count("fails_twice") == 3
    })
    .await;
    wait_until("settled", Duration::from_secs(5), || async {
        zcard(
            &server.url(),
            "opsconductor:{orders}:retry:shop.fails_twice",
        )
        .await
            == 0
    })
    .await;
    running.stop().await;
    assert_eq!(
        calls
            .of("fails_twice")
            .iter()
            .map(|c| c.1)
            .collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(letters_of(&dl).await.is_empty(), "no dead letter");
    assert_eq!(pending(&server.url(), KEY, "shop.fails_twice").await, 0);
}

async fn letters_of(dl: &opsc_events::DeadLetters) -> Vec<DeadLetter> {
    dl.list(&DeadLetterFilter::stream("orders")).await.unwrap()
}

#[tokio::test]
async fn a_permanent_error_dead_letters_after_one_invocation() {
    let server = RedisServer::start();
    let calls = Calls::default();
    let rt = build(&server, &calls, module("::permanent")).await;
    rt.publisher().publish(&OrderPlaced { n: 2 }).await.unwrap();
    let dl = rt.dead_letters();
    let running = spawn(rt);
    wait_until("a dead letter", Duration::from_secs(10), || async {
        !letters_of(&dl).await.is_empty()
    })
    .await;
    running.stop().await;
    assert_eq!(calls.count("rejects"), 1);
    let l = &letters_of(&dl).await[0];
    assert_eq!(l.reason, DeadLetterReason::Permanent);
    assert_eq!(l.attempts, 1);
    assert_eq!(l.error, "order 2 is invalid");
}

#[tokio::test]
async fn panics_and_timeouts_count_as_failed_attempts() {
    let server = RedisServer::start();
    let calls = Calls::default();
    let rt = build(&server, &calls, |h| {
        h.name() == "panics" || h.name() == "hangs"
    })
    .await;
    rt.publisher().publish(&OrderPlaced { n: 3 }).await.unwrap();
    let dl = rt.dead_letters();
    let running = spawn(rt);
    wait_until("two dead letters", Duration::from_secs(15), || async {
        letters_of(&dl).await.len() == 2
    })
    .await;
    running.stop().await;
    assert_eq!(calls.count("panics"), 2, "first try + 1 retry");
    assert_eq!(calls.count("hangs"), 2, "first try + 1 retry");
    let list = letters_of(&dl).await;
    let by_group: HashMap<&str, &DeadLetter> = list.iter().map(|l| (l.group.as_str(), l)).collect();
    let p = by_group["shop.panics"];
    assert_eq!(p.reason, DeadLetterReason::Panic);
    assert_eq!(p.attempts, 2);
    assert!(p.error.contains("kaboom 3"), "{}", p.error);
    let t = by_group["shop.hangs"];
    assert_eq!(t.reason, DeadLetterReason::Timeout);
    assert_eq!(t.attempts, 2);
}

#[tokio::test]
async fn a_message_in_backoff_does_not_block_the_others() {
    let server = RedisServer::start();
    let calls = Calls::default();
    let rt = build(&server, &calls, module("::nonblocking")).await;
    let orders: Vec<OrderPlaced> = (0..21).map(|n| OrderPlaced { n }).collect();
    let started = Instant::now();
    rt.publisher().publish_all(&orders).await.unwrap();
    let running = spawn(rt);
    wait_until("all 21 handled", Duration::from_secs(15), || async {
        calls
            .of("one_slow_retry")
            .iter()
            .filter(|c| c.0 == 0 && c.1 == 2)
            .count()
            == 1
    })
    .await;
    running.stop().await;
    let seen = calls.of("one_slow_retry");
    let first_failure = seen
        .iter()
        .find(|c| c.0 == 0 && c.1 == 1)
        .expect("first attempt")
        .2;
    let retry = seen.iter().find(|c| c.0 == 0 && c.1 == 2).expect("retry").2;
    let others_done = seen
        .iter()
        .filter(|c| c.0 != 0)
        .map(|c| c.2)
        .max()
        .expect("others");
    assert_eq!(seen.iter().filter(|c| c.0 != 0).count(), 20);
    assert!(
        retry.duration_since(first_failure) >= Duration::from_millis(2900),
        "the retry waited its backoff"
    );
    assert!(
        others_done.duration_since(started) < Duration::from_millis(2500),
        "the 20 others finished well before the retry was due ({:?})",
        others_done.duration_since(started)
    );
}

#[tokio::test]
async fn poison_entries_are_dead_lettered_with_the_right_reason_and_good_ones_flow() {
    let server = RedisServer::start();
    let calls = Calls::default();
    let rt = build(&server, &calls, module("::poison")).await;
    // v1 entries (every reader takes them), whose fields the cases replace one at a time; the
    // other type's entry is v2.
    let good = |n: u64| {
        envelope::encode_as(
            &OrderPlaced { n },
            &Metadata::new("test"),
            opsc_events::WireFormat::V1,
        )
        .unwrap()
    };
    let fields = |e: &opsc_events::envelope::EncodedEvent, replace: &[(&str, Option<Vec<u8>>)]| {
        let mut out: Vec<(String, Vec<u8>)> = Vec::new();
        for (k, v) in e.fields() {
            match replace.iter().find(|(name, _)| *name == k) {
                Some((_, Some(new))) => out.push((k.to_owned(), new.clone())),
                Some((_, None)) => {}
                None => out.push((k.to_owned(), v.to_vec())),
            }
        }
        out
    };
    let valid = rmp_serde::to_vec_named(&OrderPlaced { n: 99 }).unwrap();
    let cases: Vec<Case> = vec![
        ("good 1", fields(&good(1), &[]), None),
        (
            "garbage data",
            fields(
                &good(100),
                &[("data", Some(b"\xc1\xc1 not msgpack".to_vec()))],
            ),
            Some("decode_error"),
        ),
        (
            "truncated data",
            fields(
                &good(101),
                &[("data", Some(valid[..valid.len() - 1].to_vec()))],
            ),
            Some("decode_error"),
        ),
        ("good 2", fields(&good(2), &[]), None),
        (
            "wrong fingerprint",
            fields(
                &good(102),
                &[("schema", Some(b"0123456789abcdef".to_vec()))],
            ),
            Some("schema_mismatch"),
        ),
        (
            "unknown version",
            fields(&good(103), &[("version", Some(b"9".to_vec()))]),
            Some("schema_mismatch"),
        ),
        (
            "missing fields",
            vec![
                ("event_type".into(), b"order_placed".to_vec()),
                ("data".into(), valid.clone()),
            ],
            Some("decode_error"),
        ),
        (
            "10 MB data",
            fields(&good(104), &[("data", Some(vec![0xc1; 10 * 1024 * 1024]))]),
            Some("decode_error"),
        ),
        (
            "other type",
            fields(
                &envelope::encode(&OrderShipped { n: 5 }, &Metadata::new("t")).unwrap(),
                &[],
            ),
            None,
        ),
        ("good 3", fields(&good(3), &[]), None),
    ];
    let mut c = common::conn(&server.url()).await;
    let mut ids = Vec::new();
    for (name, f, _) in &cases {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(KEY).arg("*");
        for (k, v) in f {
            cmd.arg(k).arg(v);
        }
        let id: String = cmd
            .query_async(&mut c)
            .await
            .unwrap_or_else(|e| panic!("XADD {name}: {e}"));
        ids.push(id.parse::<MessageId>().unwrap());
    }
    let dl = rt.dead_letters();
    let running = spawn(rt);
    wait_until("six dead letters", Duration::from_secs(20), || async {
        letters_of(&dl).await.len() == 6
    })
    .await;
    wait_until("nothing pending", Duration::from_secs(10), || async {
        pending(&server.url(), KEY, "shop.strict").await == 0
    })
    .await;
    running.stop().await;
    let mut handled: Vec<u64> = calls.of("strict").iter().map(|c| c.0).collect();
    handled.sort_unstable();
    assert_eq!(handled, vec![1, 2, 3], "every good message flows, once");
    let list = letters_of(&dl).await;
    for ((name, _, reason), id) in cases.iter().zip(&ids) {
        let letter = list.iter().find(|l| l.original_id == *id);
        match reason {
            Some(r) => {
                let l = letter.unwrap_or_else(|| panic!("{name} was not dead-lettered"));
                assert_eq!(l.reason.as_str(), *r, "{name}: {}", l.error);
                assert_eq!(l.attempts, 1, "{name} is dead-lettered at once");
            }
            None => assert!(letter.is_none(), "{name} must not be dead-lettered"),
        }
    }
    let big = list.iter().find(|l| l.original_id == ids[7]).unwrap();
    assert_eq!(
        big.data.len(),
        10 * 1024 * 1024,
        "the raw 10 MB payload is kept"
    );
}

#[tokio::test]
async fn replay_redelivers_to_the_failing_group_only_and_the_loop_guard_stops_it() {
    let server = RedisServer::start();
    let calls = Calls::default();
    calls.broken.store(true, Ordering::SeqCst);
    let rt = Runtime::builder()
        .service("shop")
        .redis(server.url())
        .state(calls.clone())
        .max_replays(2)
        .only(module("::replay"))
        .build()
        .await
        .unwrap();
    rt.publisher().publish(&OrderPlaced { n: 4 }).await.unwrap();
    let dl = rt.dead_letters();
    let running = spawn(rt);
    wait_until("dead-lettered", Duration::from_secs(10), || async {
        letters_of(&dl).await.len() == 1
    })
    .await;
    wait_until("b handled it", Duration::from_secs(10), || async {
        calls.count("steady_b") == 1
    })
    .await;

    // Still broken: replay, fail again (replays = 1), replay, fail again (replays = 2).
    for round in 1..=2u32 {
        assert_eq!(
            dl.replay(&DeadLetterFilter::stream("orders"))
                .await
                .unwrap(),
            1
        );
        assert!(
            letters_of(&dl).await.is_empty(),
            "replay moves the letter out"
        );
        wait_until("dead-lettered again", Duration::from_secs(10), || async {
            letters_of(&dl).await.len() == 1
        })
        .await;
        let l = &letters_of(&dl).await[0];
        assert_eq!(l.replays, round);
        assert_eq!(l.attempts, 1, "the attempt count was reset");
    }
    // The loop guard: a third replay is refused.
    assert_eq!(
        dl.replay(&DeadLetterFilter::stream("orders"))
            .await
            .unwrap(),
        0
    );
    assert_eq!(letters_of(&dl).await.len(), 1);
    assert_eq!(calls.count("flaky_a"), 3);
    assert_eq!(
        calls.count("steady_b"),
        1,
        "replays never reach the other group"
    );
    running.stop().await;
}

#[tokio::test]
async fn a_replayed_letter_is_handled_once_the_cause_is_fixed() {
    let server = RedisServer::start();
    let calls = Calls::default();
    calls.broken.store(true, Ordering::SeqCst);
    let rt = build(&server, &calls, module("::replay")).await;
    rt.publisher().publish(&OrderPlaced { n: 8 }).await.unwrap();
    let dl = rt.dead_letters();
    let running = spawn(rt);
    wait_until("dead-lettered", Duration::from_secs(10), || async {
        letters_of(&dl).await.len() == 1
    })
    .await;
    calls.broken.store(false, Ordering::SeqCst);
    let filter = DeadLetterFilter::stream("orders")
        .group("shop.flaky_a")
        .reason(DeadLetterReason::HandlerError);
    assert_eq!(dl.replay(&filter).await.unwrap(), 1);
    wait_until("handled after replay", Duration::from_secs(10), || async {
        calls.count("flaky_a") == 2
    })
    .await;
    wait_until("schedule empty", Duration::from_secs(5), || async {
        zcard(&server.url(), "opsconductor:{orders}:retry:shop.flaky_a").await == 0
    })
    .await;
    running.stop().await;
    assert!(letters_of(&dl).await.is_empty());
    assert_eq!(
        calls.of("flaky_a")[1].1,
        1,
        "a replay starts again at attempt 1"
    );
}

#[tokio::test]
async fn dead_letters_can_be_filtered_paged_and_purged() {
    let server = RedisServer::start();
    let calls = Calls::default();
    let rt = build(&server, &calls, |h| {
        h.name() == "rejects" || h.name() == "panics"
    })
    .await;
    let orders: Vec<OrderPlaced> = (0..7).map(|n| OrderPlaced { n }).collect();
    rt.publisher().publish_all(&orders).await.unwrap();
    let dl = rt.dead_letters();
    let running = spawn(rt);
    wait_until("14 dead letters", Duration::from_secs(20), || async {
        dl.list(&DeadLetterFilter::stream("orders").limit(1000))
            .await
            .unwrap()
            .len()
            == 14
    })
    .await;
    running.stop().await;
    let all = DeadLetterFilter::stream("orders");
    let mut paged = Vec::new();
    let mut page = dl.list(&all.clone().limit(3)).await.unwrap();
    while !page.is_empty() {
        assert!(page.len() <= 3);
        paged.extend(page.iter().map(|l| l.id));
        let last = page.last().unwrap().id;
        page = dl.list(&all.clone().limit(3).after(last)).await.unwrap();
    }
    assert_eq!(paged.len(), 14, "pages cover every letter once");
    assert!(paged.windows(2).all(|w| w[0] < w[1]), "oldest first");
    let panics = all.clone().reason(DeadLetterReason::Panic);
    assert_eq!(dl.list(&panics).await.unwrap().len(), 7);
    assert!(
        dl.list(&panics)
            .await
            .unwrap()
            .iter()
            .all(|l| l.group == "shop.panics")
    );
    assert_eq!(
        dl.list(&all.clone().group("shop.rejects"))
            .await
            .unwrap()
            .len(),
        7
    );
    assert!(
        dl.list(&all.clone().since(u64::MAX))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        dl.list(&all.clone().until(u64::MAX)).await.unwrap().len(),
        14
    );
    assert_eq!(dl.purge(&panics).await.unwrap(), 7);
    assert_eq!(dl.list(&all).await.unwrap().len(), 7);
    assert!(
        dl.list(&all)
            .await
            .unwrap()
            .iter()
            .all(|l| l.reason == DeadLetterReason::Permanent)
    );
}

#[tokio::test]
async fn with_dead_letters_off_the_last_failure_drops_the_message() {
    let server = RedisServer::start();
    let calls = Calls::default();
    let rt = build(&server, &calls, module("::dropping")).await;
    rt.publisher().publish(&OrderPlaced { n: 9 }).await.unwrap();
    let dl = rt.dead_letters();
    let running = spawn(rt);
    wait_until("two attempts", Duration::from_secs(10), || async {
        calls.count("drops") == 2
    })
    .await;
    wait_until("settled", Duration::from_secs(5), || async {
        pending(&server.url(), KEY, "shop.drops").await == 0
            && zcard(&server.url(), "opsconductor:{orders}:retry:shop.drops").await == 0
    })
    .await;
    running.stop().await;
    assert!(letters_of(&dl).await.is_empty());
}

#[tokio::test]
async fn a_redis_restart_during_a_backoff_keeps_the_retry_and_its_attempt_count() {
    let mut server = RedisServer::start_with(ServerOptions::durable());
    let calls = Calls::default();
    let rt = build(&server, &calls, module("::restart")).await;
    rt.publisher().publish(&OrderPlaced { n: 5 }).await.unwrap();
    let running = spawn(rt);
    wait_until(
        "first attempt failed and was scheduled",
        Duration::from_secs(10),
        || async {
            zcard(
                &server.url(),
                "opsconductor:{orders}:retry:shop.survives_restart",
            )
            .await
                == 1
        },
    )
    .await;
    server.kill();
    server.restart();
    wait_until(
        "retried after the restart",
        Duration::from_secs(20),
        || async { calls.count("survives_restart") >= 2 },
    )
    .await;
    wait_until("settled", Duration::from_secs(10), || async {
        zcard(
            &server.url(),
            "opsconductor:{orders}:retry:shop.survives_restart",
        )
        .await
            == 0
    })
    .await;
    running.stop().await;
    let seen = calls.of("survives_restart");
    assert_eq!(
        seen.iter().map(|c| c.1).collect::<Vec<_>>(),
        vec![1, 2],
        "the attempt count survived the restart"
    );
    assert!(
        seen[1].2.duration_since(seen[0].2) >= Duration::from_millis(1900),
        "the backoff was kept"
    );
}

#[tokio::test]
async fn lossless_trimming_keeps_a_stopped_groups_backlog() {
    let server = RedisServer::start();
    let calls = Calls::default();
    // Both groups exist; only `fast` runs.
    let slow = build(&server, &calls, |h| h.name() == "slow").await;
    let fast = build(&server, &calls, |h| h.name() == "fast").await;
    let orders: Vec<OrderPlaced> = (0..5000).map(|n| OrderPlaced { n }).collect();
    for chunk in orders.chunks(500) {
        fast.publisher().publish_all(chunk).await.unwrap();
    }
    let reports = fast.trim_now().await.unwrap();
    assert_eq!(
        reports[0].trimmed, 0,
        "nothing is trimmed while both groups need everything"
    );
    let running = spawn(fast);
    wait_until("fast handled 5000", Duration::from_secs(30), || async {
        calls.count("fast") == 5000
    })
    .await;
    running.stop().await;
    let reports = slow.trim_now().await.unwrap();
    assert_eq!(
        reports[0].trimmed, 0,
        "the stopped group still needs all 5000"
    );
    assert_eq!(common::xlen(&server.url(), KEY).await, 5000);

    let running = spawn(slow);
    wait_until("slow caught up", Duration::from_secs(30), || async {
        calls.count("slow") == 5000
    })
    .await;
    running.stop().await;
    let again = build(&server, &calls, |h| h.name() == "slow").await;
    let reports = again.trim_now().await.unwrap();
    assert_eq!(
        reports[0].trimmed, 5000,
        "once every group is done, everything is trimmed"
    );
    assert_eq!(reports[0].capped, 0);
    assert_eq!(common::xlen(&server.url(), KEY).await, 0);
}

#[tokio::test]
async fn hard_caps_trim_and_count_undelivered_drops() {
    let server = RedisServer::start();
    let calls = Calls::default();
    // A group exists but never runs; the stream is capped at 100 entries.
    let rt = Runtime::builder()
        .service("shop")
        .redis(server.url())
        .state(calls.clone())
        .stream_limits("orders", StreamLimits::new().max_len(100))
        .only(|h| h.name() == "slow")
        .build()
        .await
        .unwrap();
    let orders: Vec<OrderPlaced> = (0..500).map(|n| OrderPlaced { n }).collect();
    rt.publisher().publish_all(&orders).await.unwrap();
    let reports = rt.trim_now().await.unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].trimmed, 0);
    assert_eq!(reports[0].capped, 400);
    assert_eq!(
        reports[0].capped_undelivered, 400,
        "the dropped entries were still needed, and are counted"
    );
    assert_eq!(common::xlen(&server.url(), KEY).await, 100);
}

/// `WRONGTYPE` errors replied by the server so far (`INFO errorstats`).
async fn wrongtype_errors(url: &str) -> u64 {
    let mut c = common::conn(url).await;
    let info: String = redis::cmd("INFO")
        .arg("errorstats")
        .query_async(&mut c)
        .await
        .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix("errorstat_WRONGTYPE:count="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// A settlement script whose write would fail (here: a key of the wrong type in its way) fails
/// before its first write, so the entry it was settling stays pending — it is not acknowledged
/// and then lost half-way. Once the key is fixed, the settlement goes through. For the retry
/// schedule (first failure) and for the dead-letter stream (a permanent error).
#[tokio::test]
async fn a_settlement_script_that_cannot_write_leaves_the_entry_pending() {
    let server = RedisServer::start();
    let url = server.url();
    let mut c = common::conn(&url).await;
    for (handlers, group, blocked) in [
        (
            "::always",
            "shop.always_fails",
            "opsconductor:{orders}:retry:shop.always_fails",
        ),
        (
            "::permanent",
            "shop.rejects",
            "opsconductor:{orders}:dead_letter",
        ),
    ] {
        let calls = Calls::default();
        let rt = build(&server, &calls, module(handlers)).await;
        let dl = rt.dead_letters();
        let () = redis::cmd("SET")
            .arg(blocked)
            .arg("in the way")
            .query_async(&mut c)
            .await
            .unwrap();
        let before = wrongtype_errors(&url).await;
        let id = rt.publisher().publish(&OrderPlaced { n: 9 }).await.unwrap();
        let running = spawn(rt);
        wait_until(
            "the settlement script failed twice",
            Duration::from_secs(20),
            || async { wrongtype_errors(&url).await >= before + 2 },
        )
        .await;
        assert_eq!(
            pending(&url, KEY, group).await,
            1,
            "{group}: the entry stays pending while its settlement cannot be written"
        );
        let () = redis::cmd("DEL")
            .arg(blocked)
            .query_async(&mut c)
            .await
            .unwrap();
        wait_until(
            "the dead letter, once the key is fixed",
            Duration::from_secs(30),
            || async {
                letters_of(&dl)
                    .await
                    .iter()
                    .any(|l| l.original_id == id && l.group == group)
            },
        )
        .await;
        running.stop().await;
        assert_eq!(pending(&url, KEY, group).await, 0, "{group}");
    }
}

/// The acknowledgements of messages whose handler succeeded never wait behind the failing
/// dead-letter script of another message (here its dead-letter key is of the wrong type: a
/// deterministic error, tried a few times, not for a minute): 300 successes are acknowledged
/// while the one failure stays pending, and it is dead-lettered once the key is fixed.
#[tokio::test]
async fn acknowledgements_do_not_wait_behind_a_failing_dead_letter() {
    let server = RedisServer::start();
    let url = server.url();
    let mut c = common::conn(&url).await;
    let calls = Calls::default();
    let rt = Runtime::builder()
        .service("shop")
        .consumer_name("shop-1")
        .redis(&url)
        .state(calls.clone())
        .shutdown_timeout(Duration::from_secs(2))
        .build_with(module("::picky"))
        .await;
    let dl = rt.dead_letters();
    let blocked = "opsconductor:{orders}:dead_letter";
    let () = redis::cmd("SET")
        .arg(blocked)
        .arg("in the way")
        .query_async(&mut c)
        .await
        .unwrap();
    let publisher = rt.publisher();
    let errors_before = wrongtype_errors(&url).await;
    let failed = publisher.publish(&OrderPlaced { n: 0 }).await.unwrap();
    let running = spawn(rt);
    wait_until("order 0 was handled", Duration::from_secs(10), || async {
        calls.count("picky") >= 1
    })
    .await;
    let orders: Vec<OrderPlaced> = (1..=300).map(|n| OrderPlaced { n }).collect();
    publisher.publish_all(&orders).await.unwrap();
    wait_until(
        "every success acknowledged while the failure cannot be settled",
        Duration::from_secs(15),
        || async { pending(&url, KEY, "shop.picky").await == 1 && calls.count("picky") >= 301 },
    )
    .await;
    wait_until(
        "the dead-lettering given up after a few tries",
        Duration::from_secs(10),
        || async { wrongtype_errors(&url).await >= errors_before + 3 },
    )
    .await;
    let () = redis::cmd("DEL")
        .arg(blocked)
        .query_async(&mut c)
        .await
        .unwrap();
    // Left pending after a few tries, it comes back with the next reclaim (claim_after 30 s
    // by default is too long for a test): restart under the same name resumes it at once.
    running.stop().await;
    assert_eq!(
        pending(&url, KEY, "shop.picky").await,
        1,
        "the failure stays pending"
    );
    let rt = Runtime::builder()
        .service("shop")
        .consumer_name("shop-1")
        .redis(&url)
        .state(calls.clone())
        .shutdown_timeout(Duration::from_secs(2))
        .build_with(module("::picky"))
        .await;
    let running = spawn(rt);
    wait_until(
        "the dead letter, once the key is fixed",
        Duration::from_secs(15),
        || async {
            letters_of(&dl)
                .await
                .iter()
                .any(|l| l.original_id == failed)
        },
    )
    .await;
    running.stop().await;
    assert_eq!(pending(&url, KEY, "shop.picky").await, 0);
}
