//! The conformance suite: every behaviour is written once and run against every transport — a
//! private redis-server (plain, over mutual TLS, and found through Sentinel) and the embedded
//! broker — so that they cannot drift apart.

mod batch;
#[path = "../common/mod.rs"]
mod common;
mod env;
mod priority;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use batch::*;
use common::wait_until;
use env::{Env, spawn};
use opsc_events::WireFormat;
use opsc_events::prelude::*;
use priority::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "conf")]
pub struct Ping {
    pub n: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "conf")]
pub struct Pong {
    pub n: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "conf", name = "greeting", version = 1)]
pub struct GreetingV1 {
    pub name: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "conf", name = "greeting", version = 2, upcast_from = GreetingV1)]
pub struct Greeting {
    pub name: String,
    pub language: String,
}

impl From<GreetingV1> for Greeting {
    fn from(v1: GreetingV1) -> Self {
        Greeting {
            name: v1.name,
            language: "en".into(),
        }
    }
}

/// One handler call as the handler saw it.
#[derive(Debug, Clone)]
pub struct Call {
    who: &'static str,
    n: u64,
    attempt: u32,
    delivery: u32,
    at: Instant,
    /// The priority lane it was read from.
    lane: opsc_events::Priority,
}

/// What a handler saw of its context: event id, correlation id, causation id, headers.
type Seen = (uuid::Uuid, uuid::Uuid, Option<uuid::Uuid>, Headers);

/// Raw entry fields and the dead-letter reason they must get.
type PoisonCase = (Vec<(String, Vec<u8>)>, &'static str);

/// Shared by the handlers and the behaviour that runs them.
#[derive(Clone, Default)]
pub struct Log {
    calls: Arc<Mutex<Vec<Call>>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    broken: Arc<AtomicBool>,
    failures: Arc<AtomicU32>,
    contexts: Arc<Mutex<Vec<Seen>>>,
    greetings: Arc<Mutex<Vec<Greeting>>>,
    metrics: Arc<Mutex<Vec<opsc_events::metrics_stream::RuntimeMetrics>>>,
}

impl Log {
    fn record(&self, who: &'static str, n: u64, ctx: &Context) {
        self.calls.lock().unwrap().push(Call {
            who,
            n,
            attempt: ctx.attempt(),
            delivery: ctx.delivery_count(),
            at: Instant::now(),
            lane: ctx.priority(),
        });
    }
    fn of(&self, who: &str) -> Vec<Call> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.who == who)
            .cloned()
            .collect()
    }
    fn count(&self, who: &str) -> usize {
        self.of(who).len()
    }
    fn ns(&self, who: &str) -> Vec<u64> {
        self.of(who).iter().map(|c| c.n).collect()
    }
}

mod plain {
    use super::*;

    #[handler(stream = "conf", concurrency = 8)]
    pub async fn plain(event: Ping, ctx: Context, State(log): State<Log>) {
        log.record("plain", event.n, &ctx);
    }
}

mod fanout {
    use super::*;

    #[handler(stream = "conf")]
    pub async fn left(event: Ping, ctx: Context, State(log): State<Log>) {
        log.record("left", event.n, &ctx);
    }

    #[handler(stream = "conf")]
    pub async fn right(event: Ping, ctx: Context, State(log): State<Log>) {
        log.record("right", event.n, &ctx);
    }
}

mod ordered {
    use super::*;

    #[handler(stream = "conf")]
    pub async fn ordered(event: Ping, ctx: Context, State(log): State<Log>) {
        log.record("ordered", event.n, &ctx);
    }
}

mod limited {
    use super::*;

    #[handler(stream = "conf", concurrency = 4)]
    pub async fn limited(event: Ping, ctx: Context, State(log): State<Log>) {
        let now = log.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        log.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(30)).await;
        log.in_flight.fetch_sub(1, Ordering::SeqCst);
        log.record("limited", event.n, &ctx);
    }
}

mod earliest {
    use super::*;

    #[handler(stream = "conf", start = "earliest")]
    pub async fn from_start(event: Ping, ctx: Context, State(log): State<Log>) {
        log.record("from_start", event.n, &ctx);
    }
}

mod pongs {
    use super::*;

    #[handler(stream = "conf")]
    pub async fn pongs_only(event: Pong, ctx: Context, State(log): State<Log>) {
        log.record("pongs_only", event.n, &ctx);
    }
}

mod failing {
    use super::*;

    #[handler(stream = "conf", retries = 2, backoff = "fixed(20ms)")]
    pub async fn always(
        event: Ping,
        ctx: Context,
        State(log): State<Log>,
    ) -> Result<(), HandlerError> {
        log.record("always", event.n, &ctx);
        Err(HandlerError::from(format!("no luck with {}", event.n)))
    }

    #[handler(stream = "conf", retries = 2, backoff = "exponential(5ms, 50ms)")]
    pub async fn twice(
        event: Ping,
        ctx: Context,
        State(log): State<Log>,
    ) -> Result<(), HandlerError> {
        log.record("twice", event.n, &ctx);
        if log.failures.fetch_add(1, Ordering::SeqCst) < 2 {
            return Err("not yet".into());
        }
        Ok(())
    }

    #[handler(stream = "conf", retries = 4)]
    pub async fn permanent(
        event: Ping,
        ctx: Context,
        State(log): State<Log>,
    ) -> Result<(), HandlerError> {
        log.record("permanent", event.n, &ctx);
        Err(HandlerError::permanent("never valid"))
    }

    #[handler(stream = "conf", retries = 1, backoff = "none")]
    pub async fn panics(event: Ping, ctx: Context, State(log): State<Log>) {
        log.record("panics", event.n, &ctx);
        panic!("panicked on {}", event.n);
    }

    #[handler(
        stream = "conf",
        retries = 1,
        backoff = "none",
        timeout = "50ms",
        claim_after = "5s"
    )]
    pub async fn hangs(event: Ping, ctx: Context, State(log): State<Log>) {
        log.record("hangs", event.n, &ctx);
        tokio::time::sleep(Duration::from_secs(30)).await;
    }

    #[handler(stream = "conf", retries = 1, backoff = "none", dead_letter = false)]
    pub async fn dropped(
        event: Ping,
        ctx: Context,
        State(log): State<Log>,
    ) -> Result<(), HandlerError> {
        log.record("dropped", event.n, &ctx);
        Err("dropped".into())
    }
}

mod backoff {
    use super::*;

    #[handler(stream = "conf", retries = 1, backoff = "fixed(1s)")]
    pub async fn slow_retry(
        event: Ping,
        ctx: Context,
        State(log): State<Log>,
    ) -> Result<(), HandlerError> {
        log.record("slow_retry", event.n, &ctx);
        if event.n == 0 && ctx.attempt() == 1 {
            return Err("first attempt of 0 fails".into());
        }
        Ok(())
    }
}

mod told_when {
    use super::*;

    /// The first attempt says "come back in 2 s" (its backoff would retry at once); the second
    /// succeeds.
    #[handler(stream = "conf", retries = 1, backoff = "none")]
    pub async fn told_when(
        event: Ping,
        ctx: Context,
        State(log): State<Log>,
    ) -> Result<(), HandlerError> {
        log.record("told_when", event.n, &ctx);
        if ctx.attempt() == 1 {
            return Err(HandlerError::retryable("429 Too Many Requests").retry_after_header("2"));
        }
        Ok(())
    }
}

mod metrics_watch {
    use super::*;

    /// Follows the metrics stream like any service would.
    #[handler(stream = "metrics")]
    pub async fn watch_metrics(
        m: opsc_events::metrics_stream::RuntimeMetrics,
        State(log): State<Log>,
    ) {
        log.metrics.lock().unwrap().push(m);
    }
}

mod strict {
    use super::*;

    #[handler(stream = "conf")]
    pub async fn strict(event: Ping, ctx: Context, State(log): State<Log>) {
        log.record("strict", event.n, &ctx);
    }
}

mod replay {
    use super::*;

    #[handler(stream = "conf", retries = 0)]
    pub async fn fragile(
        event: Ping,
        ctx: Context,
        State(log): State<Log>,
    ) -> Result<(), HandlerError> {
        log.record("fragile", event.n, &ctx);
        if log.broken.load(Ordering::SeqCst) {
            return Err("broken".into());
        }
        Ok(())
    }

    #[handler(stream = "conf")]
    pub async fn sturdy(event: Ping, ctx: Context, State(log): State<Log>) {
        log.record("sturdy", event.n, &ctx);
    }
}

mod reclaim {
    use super::*;

    /// Hangs while `broken`; otherwise succeeds. Reclaimed after 1 s.
    #[handler(
        stream = "conf",
        concurrency = 4,
        timeout = "500ms",
        claim_after = "1s",
        retries = 5,
        backoff = "none"
    )]
    pub async fn stuck(event: Ping, ctx: Context, State(log): State<Log>) {
        log.record("stuck", event.n, &ctx);
        if log.broken.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
    }
}

mod held {
    use super::*;

    /// Hangs while `broken` (longer than any shutdown timeout here); otherwise succeeds.
    #[handler(stream = "conf", concurrency = 4, timeout = "10s", claim_after = "20s")]
    pub async fn held(event: Ping, ctx: Context, State(log): State<Log>) {
        log.record("held", event.n, &ctx);
        if log.broken.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
    }
}

mod slow {
    use super::*;

    #[handler(stream = "conf", concurrency = 2, timeout = "10s")]
    pub async fn slow(event: Ping, ctx: Context, State(log): State<Log>) {
        log.in_flight.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(400)).await;
        log.record("slow", event.n, &ctx);
    }
}

mod trimming {
    use super::*;

    #[handler(stream = "conf", concurrency = 32)]
    pub async fn quick(event: Ping, ctx: Context, State(log): State<Log>) {
        log.record("quick", event.n, &ctx);
    }

    #[handler(stream = "conf", concurrency = 32)]
    pub async fn lagging(event: Ping, ctx: Context, State(log): State<Log>) {
        log.record("lagging", event.n, &ctx);
    }
}

mod chain {
    use super::*;

    #[handler(stream = "conf")]
    pub async fn echo(
        event: Ping,
        ctx: Context,
        State(log): State<Log>,
    ) -> Result<(), HandlerError> {
        log.contexts.lock().unwrap().push((
            ctx.event_id(),
            ctx.correlation_id(),
            ctx.causation_id(),
            ctx.headers().clone(),
        ));
        ctx.publish(&Pong { n: event.n }).await?;
        Ok(())
    }

    #[handler(stream = "conf")]
    pub async fn pong_seen(event: Pong, ctx: Context, State(log): State<Log>) {
        log.contexts.lock().unwrap().push((
            ctx.event_id(),
            ctx.correlation_id(),
            ctx.causation_id(),
            ctx.headers().clone(),
        ));
        log.record("pong_seen", event.n, &ctx);
    }
}

mod versions {
    use super::*;

    #[handler(stream = "conf")]
    pub async fn greet(event: Greeting, State(log): State<Log>) {
        log.greetings.lock().unwrap().push(event);
    }
}

async fn runtime(env: &Env, log: &Log, module: &'static str) -> Runtime {
    env.builder()
        .state(log.clone())
        .only(move |h| h.module_path().ends_with(module))
        .build()
        .await
        .expect("runtime builds")
}

async fn runtime_named(env: &Env, log: &Log, name: &'static str) -> Runtime {
    env.builder()
        .state(log.clone())
        .only(move |h| h.name() == name)
        .build()
        .await
        .expect("runtime builds")
}

fn pings(range: std::ops::Range<u64>) -> Vec<Ping> {
    range.map(|n| Ping { n }).collect()
}

async fn letters(rt: &Runtime) -> Vec<DeadLetter> {
    rt.dead_letters()
        .list(&DeadLetterFilter::stream("conf").limit(10_000))
        .await
        .expect("list")
}

async fn group(rt: &Runtime, name: &str) -> opsc_events::GroupInfo {
    rt.stream_info("conf")
        .await
        .expect("info")
        .groups
        .into_iter()
        .find(|g| g.name == name)
        .unwrap_or_else(|| panic!("no group {name}"))
}

const T: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Publishing and delivery

async fn publish_returns_increasing_ids(env: Env) {
    let rt = env.publisher().await;
    let mut last = MessageId::MIN;
    for n in 0..50 {
        let id = rt.publisher().publish(&Ping { n }).await.unwrap();
        assert!(id > last, "{id} after {last}");
        last = id;
    }
    assert_eq!(rt.stream_info("conf").await.unwrap().length, 50);
}

async fn publish_all_keeps_order_and_returns_one_id_each(env: Env) {
    let log = Log::default();
    let rt = runtime_named(&env, &log, "ordered").await;
    let ids = rt.publisher().publish_all(&pings(0..100)).await.unwrap();
    assert_eq!(ids.len(), 100);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let running = spawn(rt);
    wait_until("100 handled", T, || async { log.count("ordered") == 100 }).await;
    running.stop().await;
    assert_eq!(log.ns("ordered"), (0..100).collect::<Vec<_>>());
}

async fn every_event_is_handled_once(env: Env) {
    let log = Log::default();
    let rt = runtime(&env, &log, "::plain").await;
    rt.publisher().publish_all(&pings(0..300)).await.unwrap();
    let running = spawn(rt);
    wait_until("300 handled", T, || async { log.count("plain") == 300 }).await;
    running.stop().await;
    let mut ns = log.ns("plain");
    ns.sort_unstable();
    assert_eq!(ns, (0..300).collect::<Vec<_>>());
    assert!(
        log.of("plain")
            .iter()
            .all(|c| c.attempt == 1 && c.delivery == 1)
    );
}

async fn every_group_receives_every_event(env: Env) {
    let log = Log::default();
    let rt = runtime(&env, &log, "::fanout").await;
    rt.publisher().publish_all(&pings(0..50)).await.unwrap();
    let running = spawn(rt);
    wait_until("both saw 50", T, || async {
        log.count("left") == 50 && log.count("right") == 50
    })
    .await;
    running.stop().await;
}

async fn runtimes_of_one_service_share_a_group(env: Env) {
    let (log_a, log_b) = (Log::default(), Log::default());
    let a = runtime(&env, &log_a, "::limited").await;
    let b = runtime(&env, &log_b, "::limited").await;
    assert_ne!(a.consumer_name(), b.consumer_name());
    let publisher = a.publisher();
    let (ra, rb) = (spawn(a), spawn(b));
    for chunk in pings(0..200).chunks(20) {
        publisher.publish_all(chunk).await.unwrap();
    }
    wait_until("200 handled in all", T, || async {
        log_a.count("limited") + log_b.count("limited") == 200
    })
    .await;
    ra.stop().await;
    rb.stop().await;
    let mut all = log_a.ns("limited");
    all.extend(log_b.ns("limited"));
    all.sort_unstable();
    assert_eq!(all, (0..200).collect::<Vec<_>>(), "each once");
    assert!(
        log_a.count("limited") > 0 && log_b.count("limited") > 0,
        "both took part"
    );
}

async fn concurrency_1_keeps_stream_order(env: Env) {
    let log = Log::default();
    let rt = runtime_named(&env, &log, "ordered").await;
    let publisher = rt.publisher();
    let running = spawn(rt);
    for n in 0..40 {
        publisher.publish(&Ping { n }).await.unwrap();
    }
    wait_until("40 handled", T, || async { log.count("ordered") == 40 }).await;
    running.stop().await;
    assert_eq!(log.ns("ordered"), (0..40).collect::<Vec<_>>());
}

async fn concurrency_limit_is_never_exceeded(env: Env) {
    let log = Log::default();
    let rt = runtime(&env, &log, "::limited").await;
    rt.publisher().publish_all(&pings(0..40)).await.unwrap();
    let running = spawn(rt);
    wait_until("40 handled", T, || async { log.count("limited") == 40 }).await;
    running.stop().await;
    assert_eq!(log.max_in_flight.load(Ordering::SeqCst), 4);
}

async fn a_new_group_starts_at_latest_by_default(env: Env) {
    let log = Log::default();
    let publisher = env.publisher().await;
    publisher
        .publisher()
        .publish_all(&pings(0..5))
        .await
        .unwrap();
    let rt = runtime_named(&env, &log, "ordered").await;
    publisher
        .publisher()
        .publish_all(&pings(5..8))
        .await
        .unwrap();
    let running = spawn(rt);
    wait_until("3 handled", T, || async { log.count("ordered") == 3 }).await;
    running.stop().await;
    assert_eq!(
        log.ns("ordered"),
        vec![5, 6, 7],
        "only events published after build()"
    );
}

async fn start_earliest_sees_what_was_published_before(env: Env) {
    let log = Log::default();
    let publisher = env.publisher().await;
    publisher
        .publisher()
        .publish_all(&pings(0..5))
        .await
        .unwrap();
    let rt = runtime(&env, &log, "::earliest").await;
    let running = spawn(rt);
    wait_until("5 handled", T, || async { log.count("from_start") == 5 }).await;
    running.stop().await;
}

async fn events_of_other_types_are_acknowledged_and_skipped(env: Env) {
    let log = Log::default();
    let rt = runtime(&env, &log, "::pongs").await;
    rt.publisher().publish_all(&pings(0..20)).await.unwrap();
    // Entries of another type that this version could not even decode (a newer header layout,
    // missing fields): not this group's to judge, so skipped too, never dead-lettered by it.
    let p = rt.publisher();
    p.append_raw("conf", &[("ping@1", b"\x09 a newer layout".as_slice())])
        .await
        .unwrap();
    p.append_raw("conf", &[("event_type", b"ping".as_slice())])
        .await
        .unwrap();
    rt.publisher().publish(&Pong { n: 1 }).await.unwrap();
    let running = spawn(rt);
    wait_until("the pong", T, || async { log.count("pongs_only") == 1 }).await;
    running.stop().await;
    let check = runtime(&env, &log, "::pongs").await;
    let g = group(&check, "conf.pongs_only").await;
    assert_eq!((g.pending, g.lag, g.scheduled), (0, Some(0), 0));
    assert!(
        letters(&check)
            .await
            .iter()
            .all(|l| l.group != "conf.pongs_only"),
        "another type's entries are never poison for this group"
    );
}

// ---------------------------------------------------------------------------------------------
// Failures, retries, dead letters

async fn retries_then_one_dead_letter_with_exact_counts(env: Env) {
    let log = Log::default();
    let rt = runtime_named(&env, &log, "always").await;
    let id = rt.publisher().publish(&Ping { n: 3 }).await.unwrap();
    let running = spawn(rt);
    let check = env.publisher().await;
    wait_until("dead-lettered", T, || async {
        letters(&check).await.len() == 1
    })
    .await;
    running.stop().await;
    assert_eq!(
        log.of("always")
            .iter()
            .map(|c| c.attempt)
            .collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let l = &letters(&check).await[0];
    assert_eq!(l.reason, DeadLetterReason::HandlerError);
    assert_eq!((l.attempts, l.replays), (3, 0));
    assert_eq!(l.original_id, id);
    assert_eq!(l.group, "conf.always");
    assert_eq!(l.stream, "conf");
    assert!(l.handler.ends_with("failing::always"), "{}", l.handler);
    assert_eq!(l.error, "no luck with 3");
    assert_eq!((l.event_type.as_str(), l.version), ("ping", 1));
    assert!(l.first_failed_at <= l.failed_at && l.first_failed_at > 0);
    assert_eq!(
        rmp_serde::from_slice::<Ping>(&l.data).unwrap(),
        Ping { n: 3 }
    );
    let g = group(&check, "conf.always").await;
    assert_eq!(
        (g.pending, g.scheduled),
        (0, 0),
        "nothing left pending or scheduled"
    );
}

async fn failing_twice_then_succeeding_leaves_no_dead_letter(env: Env) {
    let log = Log::default();
    let rt = runtime_named(&env, &log, "twice").await;
    rt.publisher().publish(&Ping { n: 1 }).await.unwrap();
    let running = spawn(rt);
    let check = env.publisher().await;
    wait_until("three attempts", T, || async { log.count("twice") == 3 }).await;
    wait_until("settled", T, || async {
        let g = group(&check, "conf.twice").await;
        g.pending == 0 && g.scheduled == 0
    })
    .await;
    running.stop().await;
    assert_eq!(
        log.of("twice")
            .iter()
            .map(|c| c.attempt)
            .collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(letters(&check).await.is_empty());
}

async fn a_permanent_error_is_dead_lettered_at_once(env: Env) {
    let log = Log::default();
    let rt = runtime_named(&env, &log, "permanent").await;
    rt.publisher().publish(&Ping { n: 2 }).await.unwrap();
    let running = spawn(rt);
    let check = env.publisher().await;
    wait_until("dead-lettered", T, || async {
        letters(&check).await.len() == 1
    })
    .await;
    running.stop().await;
    assert_eq!(log.count("permanent"), 1);
    let l = &letters(&check).await[0];
    assert_eq!(
        (l.reason.clone(), l.attempts),
        (DeadLetterReason::Permanent, 1)
    );
}

async fn a_panic_is_a_failed_attempt(env: Env) {
    let log = Log::default();
    let rt = runtime_named(&env, &log, "panics").await;
    rt.publisher().publish(&Ping { n: 4 }).await.unwrap();
    let running = spawn(rt);
    let check = env.publisher().await;
    wait_until("dead-lettered", T, || async {
        letters(&check).await.len() == 1
    })
    .await;
    running.stop().await;
    assert_eq!(log.count("panics"), 2);
    let l = &letters(&check).await[0];
    assert_eq!((l.reason.clone(), l.attempts), (DeadLetterReason::Panic, 2));
    assert!(l.error.contains("panicked on 4"), "{}", l.error);
}

async fn a_timeout_is_a_failed_attempt(env: Env) {
    let log = Log::default();
    let rt = runtime_named(&env, &log, "hangs").await;
    rt.publisher().publish(&Ping { n: 5 }).await.unwrap();
    let running = spawn(rt);
    let check = env.publisher().await;
    wait_until("dead-lettered", T, || async {
        letters(&check).await.len() == 1
    })
    .await;
    running.stop().await;
    assert_eq!(log.count("hangs"), 2);
    let l = &letters(&check).await[0];
    assert_eq!(
        (l.reason.clone(), l.attempts),
        (DeadLetterReason::Timeout, 2)
    );
}

async fn with_dead_letters_off_the_message_is_dropped(env: Env) {
    let log = Log::default();
    let rt = runtime_named(&env, &log, "dropped").await;
    rt.publisher().publish(&Ping { n: 6 }).await.unwrap();
    let running = spawn(rt);
    let check = env.publisher().await;
    wait_until("two attempts, settled", T, || async {
        let g = group(&check, "conf.dropped").await;
        log.count("dropped") == 2 && g.pending == 0 && g.scheduled == 0
    })
    .await;
    running.stop().await;
    assert!(letters(&check).await.is_empty());
}

async fn a_backoff_does_not_block_other_messages(env: Env) {
    let log = Log::default();
    let rt = runtime(&env, &log, "::backoff").await;
    let started = Instant::now();
    rt.publisher().publish_all(&pings(0..11)).await.unwrap();
    let running = spawn(rt);
    wait_until("the retry", T, || async {
        log.of("slow_retry")
            .iter()
            .any(|c| c.n == 0 && c.attempt == 2)
    })
    .await;
    running.stop().await;
    let calls = log.of("slow_retry");
    let first = calls
        .iter()
        .find(|c| c.n == 0 && c.attempt == 1)
        .unwrap()
        .at;
    let retry = calls
        .iter()
        .find(|c| c.n == 0 && c.attempt == 2)
        .unwrap()
        .at;
    let others = calls
        .iter()
        .filter(|c| c.n != 0)
        .map(|c| c.at)
        .max()
        .unwrap();
    assert_eq!(calls.iter().filter(|c| c.n != 0).count(), 10);
    assert!(
        retry.duration_since(first) >= Duration::from_millis(950),
        "the backoff was waited"
    );
    assert!(
        others.duration_since(started) < Duration::from_millis(900),
        "the others did not wait"
    );
}

async fn poison_entries_are_dead_lettered_by_reason_and_good_ones_flow(env: Env) {
    let log = Log::default();
    let rt = runtime(&env, &log, "::strict").await;
    let p = rt.publisher();
    // v1 entries (every reader still takes them) with one field replaced.
    let entry =
        |n: u64| envelope::encode_as(&Ping { n }, &Metadata::new("conf"), WireFormat::V1).unwrap();
    let with = |n: u64, name: &str, value: &[u8]| {
        let e = entry(n);
        e.fields()
            .map(|(k, v)| {
                (
                    k.to_owned(),
                    if k == name {
                        value.to_vec()
                    } else {
                        v.to_vec()
                    },
                )
            })
            .collect::<Vec<_>>()
    };
    // v2 entries: the one event field, its name or value changed.
    let v2 = |n: u64, name: &str, change: &dyn Fn(&mut Vec<u8>)| {
        let e = envelope::encode(&Ping { n }, &Metadata::new("conf")).unwrap();
        let (_, value) = e.fields().next().unwrap();
        let mut value = value.to_vec();
        change(&mut value);
        vec![(name.to_owned(), value)]
    };
    p.publish(&Ping { n: 1 }).await.unwrap();
    let cases: Vec<PoisonCase> = vec![
        (with(10, "data", b"\xc1\xc1\xc1"), "decode_error"),
        (with(11, "version", b"7"), "schema_mismatch"),
        (with(12, "schema", b"00000000000000ff"), "schema_mismatch"),
        (
            vec![
                ("event_type".to_owned(), b"ping".to_vec()),
                ("data".to_owned(), b"\x80".to_vec()),
            ],
            "decode_error",
        ),
        (v2(13, "ping@7", &|_| {}), "schema_mismatch"),
        // The fingerprint: bytes 6..14 of the value.
        (v2(14, "ping@1", &|v| v[6] ^= 0xff), "schema_mismatch"),
        (v2(15, "ping@1", &|v| v.truncate(9)), "decode_error"),
        (v2(16, "ping@1", &|v| v[0] = 3), "decode_error"),
        (
            v2(17, "ping@1", &|v| {
                let n = v.len();
                v[n - 1] = 0xc1;
            }),
            "decode_error",
        ),
    ];
    let mut ids = Vec::new();
    for (fields, _) in &cases {
        let refs: Vec<(&str, &[u8])> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        ids.push(p.append_raw("conf", &refs).await.unwrap());
    }
    p.publish(&Ping { n: 2 }).await.unwrap();
    let running = spawn(rt);
    let check = env.publisher().await;
    wait_until("every poison entry dead-lettered", T, || async {
        letters(&check).await.len() == cases.len()
    })
    .await;
    wait_until("good ones handled", T, || async {
        log.count("strict") == 2
    })
    .await;
    running.stop().await;
    let list = letters(&check).await;
    for ((_, reason), id) in cases.iter().zip(&ids) {
        let l = list
            .iter()
            .find(|l| l.original_id == *id)
            .expect("dead-lettered");
        assert_eq!(l.reason.as_str(), *reason, "{}", l.error);
        assert_eq!(l.attempts, 1);
    }
    assert_eq!(log.ns("strict"), vec![1, 2]);
}

/// Entries of 1, 1,000 and 10,000 fields and with 10 MB values go through every script (first
/// failure → schedule, lease, reschedule, dead letter) and each ends as a dead letter holding its
/// original fields — never acknowledged and gone. (Lua's `unpack` fails past ~8,000 values: a
/// dead-letter script that acknowledged first lost the 10,000-field entry.)
async fn wide_and_huge_entries_are_retried_and_dead_lettered_never_lost(env: Env) {
    let log = Log::default();
    let rt = runtime_named(&env, &log, "always").await;
    let p = rt.publisher();
    const MB10: usize = 10 << 20;
    // A v1 event (8 fields; unknown fields are ignored by readers) padded with `extra` fields.
    let padded = |n: u64, extra: usize, value: &[u8]| {
        let e = envelope::encode_as(&Ping { n }, &Metadata::new("conf"), WireFormat::V1).unwrap();
        let mut fields: Vec<(String, Vec<u8>)> = e
            .fields()
            .map(|(k, v)| (k.to_owned(), v.to_vec()))
            .collect();
        fields.extend((0..extra).map(|i| (format!("x{i}"), value.to_vec())));
        fields
    };
    let cases: Vec<PoisonCase> = vec![
        (padded(1, 0, b""), "handler_error"),
        (padded(2, 992, b"v"), "handler_error"),
        (padded(3, 9_992, b"v"), "handler_error"),
        (padded(4, 1, &vec![b'z'; MB10]), "handler_error"),
        // Not decodable: dead-lettered at once, through the same script.
        (
            vec![("ping@1".to_owned(), vec![0xc1; MB10])],
            "decode_error",
        ),
        (
            std::iter::once(("ping@1".to_owned(), b"\x02".to_vec()))
                .chain((1..10_000).map(|i| (format!("y{i}"), b"w".to_vec())))
                .collect(),
            "decode_error",
        ),
    ];
    let mut ids = Vec::new();
    for (fields, _) in &cases {
        let refs: Vec<(&str, &[u8])> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        ids.push(p.append_raw("conf", &refs).await.unwrap());
    }
    let running = spawn(rt);
    let check = env.publisher().await;
    wait_until(
        "every entry dead-lettered",
        Duration::from_secs(60),
        || async { letters(&check).await.len() == cases.len() },
    )
    .await;
    running.stop().await;
    let letters = letters(&check).await;
    for ((fields, reason), id) in cases.iter().zip(&ids) {
        let letter = letters
            .iter()
            .find(|l| l.original_id == *id)
            .unwrap_or_else(|| panic!("no letter for {id} ({} fields)", fields.len()));
        assert_eq!(letter.reason.as_str(), *reason, "{id}");
        // Every original field is in the letter, byte for byte.
        for (k, v) in fields {
            let kept = letter.fields.iter().find(|(name, _)| name == k);
            assert!(
                kept.is_some_and(|(_, value)| value == v),
                "letter of {id} ({} fields) lost field {k}",
                fields.len()
            );
        }
    }
    let g = group(&check, "conf.always").await;
    assert_eq!((g.pending, g.scheduled), (0, 0), "nothing left behind");
}

async fn replay_goes_back_to_the_failing_group_only(env: Env) {
    let log = Log::default();
    log.broken.store(true, Ordering::SeqCst);
    let rt = runtime(&env, &log, "::replay").await;
    rt.publisher().publish(&Ping { n: 9 }).await.unwrap();
    let dl = rt.dead_letters();
    let running = spawn(rt);
    let check = env.publisher().await;
    wait_until("dead-lettered", T, || async {
        letters(&check).await.len() == 1
    })
    .await;
    wait_until("sturdy handled it", T, || async {
        log.count("sturdy") == 1
    })
    .await;
    log.broken.store(false, Ordering::SeqCst);
    assert_eq!(
        dl.replay(&DeadLetterFilter::stream("conf")).await.unwrap(),
        1
    );
    wait_until("handled after replay", T, || async {
        log.count("fragile") == 2
    })
    .await;
    running.stop().await;
    assert_eq!(
        log.count("sturdy"),
        1,
        "the other group did not see the replay"
    );
    assert_eq!(log.of("fragile")[1].attempt, 1, "attempts start again");
    assert!(letters(&check).await.is_empty());
}

async fn the_replay_loop_guard_stops_a_letter_replayed_too_often(env: Env) {
    let log = Log::default();
    log.broken.store(true, Ordering::SeqCst);
    let rt = env
        .builder()
        .state(log.clone())
        .max_replays(1)
        .only(|h| h.name() == "fragile")
        .build()
        .await
        .unwrap();
    rt.publisher().publish(&Ping { n: 9 }).await.unwrap();
    let dl = rt.dead_letters();
    let running = spawn(rt);
    let check = env.publisher().await;
    wait_until("dead-lettered", T, || async {
        letters(&check).await.len() == 1
    })
    .await;
    assert_eq!(
        dl.replay(&DeadLetterFilter::stream("conf")).await.unwrap(),
        1
    );
    wait_until("dead-lettered again", T, || async {
        letters(&check)
            .await
            .first()
            .is_some_and(|l| l.replays == 1)
    })
    .await;
    assert_eq!(
        dl.replay(&DeadLetterFilter::stream("conf")).await.unwrap(),
        0,
        "the loop guard"
    );
    running.stop().await;
    assert_eq!(log.count("fragile"), 2);
}

async fn dead_letters_list_filter_page_and_purge(env: Env) {
    let log = Log::default();
    let rt = env
        .builder()
        .state(log.clone())
        .only(|h| h.name() == "permanent" || h.name() == "panics")
        .build()
        .await
        .unwrap();
    rt.publisher().publish_all(&pings(0..5)).await.unwrap();
    let dl = rt.dead_letters();
    let running = spawn(rt);
    let check = env.publisher().await;
    wait_until("ten letters", T, || async {
        letters(&check).await.len() == 10
    })
    .await;
    running.stop().await;
    let all = DeadLetterFilter::stream("conf");
    let first = dl.list(&all.clone().limit(4)).await.unwrap();
    let second = dl
        .list(&all.clone().limit(4).after(first.last().unwrap().id))
        .await
        .unwrap();
    let third = dl
        .list(&all.clone().limit(4).after(second.last().unwrap().id))
        .await
        .unwrap();
    assert_eq!((first.len(), second.len(), third.len()), (4, 4, 2));
    assert!(first.last().unwrap().id < second[0].id);
    let one = &first[0];
    assert_eq!(dl.get("conf", one.id).await.unwrap().as_ref(), Some(one));
    let panics = all.clone().reason(DeadLetterReason::Panic);
    assert_eq!(dl.list(&panics).await.unwrap().len(), 5);
    assert_eq!(
        dl.list(&all.clone().group("conf.permanent"))
            .await
            .unwrap()
            .len(),
        5
    );
    assert_eq!(dl.purge(&panics).await.unwrap(), 5);
    assert_eq!(dl.list(&all).await.unwrap().len(), 5);
}

/// A selection by id (the console's "these letters") takes exactly those letters: an id that
/// names no letter selects nothing, never a neighbour.
async fn dead_letters_are_selected_by_id(env: Env) {
    let log = Log::default();
    let rt = runtime_named(&env, &log, "permanent").await;
    rt.publisher().publish_all(&pings(0..4)).await.unwrap();
    let dl = rt.dead_letters();
    let running = spawn(rt);
    let check = env.publisher().await;
    wait_until("four letters", T, || async {
        letters(&check).await.len() == 4
    })
    .await;
    running.stop().await;
    let all = letters(&check).await;
    let conf = || DeadLetterFilter::stream("conf");
    let picked = conf().ids([all[1].id, all[3].id]);
    let listed: Vec<MessageId> = dl
        .list(&picked)
        .await
        .unwrap()
        .iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(listed, vec![all[1].id, all[3].id]);
    // Just before the first letter and just after the last: no letter there.
    let (f, l) = (all[0].id, all[3].id);
    let before_first = match f.seq() {
        0 => MessageId::new(f.ms() - 1, u64::MAX),
        seq => MessageId::new(f.ms(), seq - 1),
    };
    let after_last = MessageId::new(l.ms(), l.seq() + 1);
    for gap in [before_first, after_last] {
        assert!(dl.list(&conf().ids([gap])).await.unwrap().is_empty());
        assert_eq!(dl.purge(&conf().ids([gap])).await.unwrap(), 0);
    }
    assert_eq!(dl.purge(&conf().ids(Vec::new())).await.unwrap(), 0);
    // A dry run's count: what the same filter would take, a bounded sample of it.
    let (n, sample) = dl.count(&conf(), 2).await.unwrap();
    assert_eq!((n, sample.len()), (4, 2));
    assert_eq!(sample[0].id, all[0].id);
    assert_eq!(dl.count(&picked, 10).await.unwrap().0, 2);
    assert_eq!(
        dl.count(&conf().limit(3), 0).await.unwrap(),
        (3, Vec::new())
    );
    assert_eq!(dl.purge(&picked).await.unwrap(), 2);
    let left: Vec<MessageId> = letters(&check).await.iter().map(|l| l.id).collect();
    assert_eq!(left, vec![all[0].id, all[2].id]);
    assert_eq!(dl.replay(&conf().ids([all[2].id])).await.unwrap(), 1);
    let left: Vec<MessageId> = letters(&check).await.iter().map(|l| l.id).collect();
    assert_eq!(left, vec![all[0].id]);
}

/// `read_newest` pages back from the newest entry (the console's stream view).
async fn the_newest_entries_are_read_newest_first(env: Env) {
    let rt = env.publisher().await;
    let ids = rt.publisher().publish_all(&pings(0..5)).await.unwrap();
    let first = rt.read_newest("conf", None, 2).await.unwrap();
    assert_eq!(
        first.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![ids[4], ids[3]]
    );
    let second = rt.read_newest("conf", Some(ids[3]), 2).await.unwrap();
    assert_eq!(
        second.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![ids[2], ids[1]]
    );
    let last = rt.read_newest("conf", Some(ids[1]), 2).await.unwrap();
    assert_eq!(last.iter().map(|e| e.id).collect::<Vec<_>>(), vec![ids[0]]);
    assert!(
        rt.read_newest("conf", Some(ids[0]), 2)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(rt.read_newest("none", None, 2).await.unwrap().is_empty());
    assert_eq!(first[0].envelope().unwrap().event_type, "ping");
}

// ---------------------------------------------------------------------------------------------
// Reclaim, resume, shutdown

async fn abandoned_messages_are_reclaimed_after_claim_after(env: Env) {
    let log = Log::default();
    log.broken.store(true, Ordering::SeqCst);
    // A runtime whose handler hangs is stopped: what it held stays pending.
    let first = env
        .builder()
        .state(log.clone())
        .shutdown_timeout(Duration::from_millis(100))
        .only(|h| h.name() == "stuck")
        .build()
        .await
        .unwrap();
    first.publisher().publish_all(&pings(0..4)).await.unwrap();
    let running = spawn(first);
    wait_until("all four started", T, || async { log.count("stuck") == 4 }).await;
    running.stop().await;
    log.broken.store(false, Ordering::SeqCst);
    let second = runtime_named(&env, &log, "stuck").await;
    let check = env.publisher().await;
    assert_eq!(group(&check, "conf.stuck").await.pending, 4);
    let running = spawn(second);
    wait_until("reclaimed and handled", T, || async {
        log.count("stuck") == 8
    })
    .await;
    wait_until("nothing pending", T, || async {
        group(&check, "conf.stuck").await.pending == 0
    })
    .await;
    running.stop().await;
    assert!(
        log.of("stuck")[4..].iter().all(|c| c.delivery == 2),
        "the delivery count carries over"
    );
}

async fn a_consumer_restarted_under_its_name_resumes_its_pending_entries(env: Env) {
    let log = Log::default();
    log.broken.store(true, Ordering::SeqCst);
    let build = || {
        env.builder()
            .state(log.clone())
            .consumer_name("steady-name")
            .shutdown_timeout(Duration::from_millis(100))
            .only(|h| h.name() == "held")
            .build()
    };
    let first = build().await.unwrap();
    first.publisher().publish_all(&pings(0..3)).await.unwrap();
    let running = spawn(first);
    wait_until("three started", T, || async { log.count("held") == 3 }).await;
    // The handlers outlast the shutdown timeout: they are abandoned, still pending.
    running.stop().await;
    let check = env.publisher().await;
    assert_eq!(group(&check, "conf.held").await.pending, 3);
    log.broken.store(false, Ordering::SeqCst);
    let restarted = Instant::now();
    let running = spawn(build().await.unwrap());
    wait_until("resumed", T, || async { log.count("held") == 6 }).await;
    let took = restarted.elapsed();
    running.stop().await;
    assert!(
        took < Duration::from_secs(5),
        "resumed at once ({took:?}), not after claim_after (20 s)"
    );
    assert!(
        log.of("held")[3..].iter().all(|c| c.delivery == 2),
        "the earlier delivery is counted"
    );
    assert_eq!(group(&check, "conf.held").await.pending, 0);
}

async fn shutdown_lets_in_flight_handlers_finish_and_acks_them(env: Env) {
    let log = Log::default();
    let rt = runtime(&env, &log, "::slow").await;
    rt.publisher().publish_all(&pings(0..6)).await.unwrap();
    let running = spawn(rt);
    wait_until("two started", T, || async {
        log.in_flight.load(Ordering::SeqCst) >= 2
    })
    .await;
    running.stop().await;
    let started = log.in_flight.load(Ordering::SeqCst);
    assert_eq!(log.count("slow"), started, "every started handler finished");
    let check = env.publisher().await;
    // Finished work is acknowledged; what was read but not started when the stop came (a read
    // that returned at that moment) stays pending for the next start — never both.
    let g = group(&check, "conf.slow").await;
    assert_eq!(
        g.pending + g.lag.unwrap_or(0),
        6 - log.count("slow") as u64,
        "finished work was acknowledged; the rest is pending or not yet delivered"
    );
}

// ---------------------------------------------------------------------------------------------
// Trimming, inspection, context, versions

async fn lossless_trimming_keeps_what_a_stopped_group_needs(env: Env) {
    let log = Log::default();
    let lagging = runtime_named(&env, &log, "lagging").await;
    let quick = runtime_named(&env, &log, "quick").await;
    quick.publisher().publish_all(&pings(0..500)).await.unwrap();
    let running = spawn(quick);
    wait_until("quick handled 500", T, || async {
        log.count("quick") == 500
    })
    .await;
    running.stop().await;
    let r = lagging.trim_now().await.unwrap();
    assert_eq!(r[0].trimmed, 0);
    assert_eq!(lagging.stream_info("conf").await.unwrap().length, 500);
    let check = env.publisher().await;
    let running = spawn(lagging);
    wait_until("lagging caught up", T, || async {
        log.count("lagging") == 500
    })
    .await;
    running.stop().await;
    let again = runtime_named(&env, &log, "lagging").await;
    let r = again.trim_now().await.unwrap();
    assert_eq!((r[0].trimmed, r[0].capped), (500, 0));
    assert_eq!(check.stream_info("conf").await.unwrap().length, 0);
}

/// A message waiting for its retry keeps a copy of its fields, so lossless trimming does not
/// have to keep its stream entry (nor read the schedules): the stream is trimmed to nothing while
/// the retry waits, and the retry still runs with the event.
async fn a_scheduled_retry_survives_trimming_of_its_entry(env: Env) {
    let log = Log::default();
    let rt = runtime_named(&env, &log, "slow_retry").await;
    let trimmer = env
        .builder()
        .no_handlers()
        .stream_limits("conf", StreamLimits::new())
        .build()
        .await
        .unwrap();
    rt.publisher().publish_all(&pings(0..11)).await.unwrap();
    let running = spawn(rt);
    wait_until("0 failed once and the others were handled", T, || async {
        let calls = log.of("slow_retry");
        calls.len() >= 11 && group(&trimmer, "conf.slow_retry").await.scheduled == 1
    })
    .await;
    let r = trimmer.trim_now().await.unwrap();
    assert_eq!(r[0].trimmed, 11, "nothing holds the entries back: {r:?}");
    assert_eq!(trimmer.stream_info("conf").await.unwrap().length, 0);
    wait_until("the retry ran with the event", T, || async {
        log.of("slow_retry")
            .iter()
            .any(|c| c.n == 0 && c.attempt == 2)
    })
    .await;
    running.stop().await;
    let g = group(&trimmer, "conf.slow_retry").await;
    assert_eq!((g.pending, g.scheduled), (0, 0));
    assert!(letters(&trimmer).await.is_empty());
}

/// `HandlerError::retry_after` overrides the backoff for that attempt: the retry starts at
/// least 2 s after the failure, though the handler's backoff is `none`; it still counts as an
/// attempt.
async fn a_handler_chosen_retry_delay_overrides_the_backoff(env: Env) {
    let log = Log::default();
    let rt = runtime_named(&env, &log, "told_when").await;
    rt.publisher().publish(&Ping { n: 5 }).await.unwrap();
    let running = spawn(rt);
    wait_until("the second attempt", T, || async {
        log.of("told_when").iter().any(|c| c.attempt == 2)
    })
    .await;
    running.stop().await;
    let calls = log.of("told_when");
    assert_eq!(
        calls.iter().map(|c| c.attempt).collect::<Vec<_>>(),
        vec![1, 2]
    );
    let waited = calls[1].at.duration_since(calls[0].at);
    assert!(
        waited >= Duration::from_millis(1900),
        "the retry came {waited:?} after the failure"
    );
}

/// The two groups of `replay` (`fragile` and `sturdy`), both on `conf`.
async fn two_groups(env: &Env, log: &Log) -> Runtime {
    env.builder()
        .state(log.clone())
        .only(|h| h.name() == "fragile" || h.name() == "sturdy")
        .build()
        .await
        .expect("runtime builds")
}

/// A delayed event is not appended before it is due, then every group sees it once, with the
/// event id it was scheduled with; it is listed while scheduled.
async fn a_delayed_event_is_seen_by_every_group_once_due_and_not_before(env: Env) {
    let log = Log::default();
    let rt = two_groups(&env, &log).await;
    let publisher = rt.publisher();
    let scheduled_at = Instant::now();
    let delayed = publisher
        .publish_after(&Ping { n: 1 }, Duration::from_millis(1500))
        .await
        .unwrap();
    assert_eq!(delayed.stream(), "conf");
    let listed = rt
        .delayed("conf", &opsc_events::delayed::DelayedFilter::new())
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].event_id, delayed.event_id());
    assert_eq!(listed[0].entry.envelope().unwrap().event_type, "ping");
    assert_eq!(
        rt.stream_info("conf").await.unwrap().length,
        0,
        "not in the stream yet"
    );
    let running = spawn(rt);
    publisher.publish(&Ping { n: 2 }).await.unwrap();
    wait_until("the undelayed event in both groups", T, || async {
        log.of("fragile").iter().any(|c| c.n == 2) && log.of("sturdy").iter().any(|c| c.n == 2)
    })
    .await;
    wait_until("the delayed event in both groups", T, || async {
        log.of("fragile").iter().any(|c| c.n == 1) && log.of("sturdy").iter().any(|c| c.n == 1)
    })
    .await;
    for who in ["fragile", "sturdy"] {
        let calls: Vec<Call> = log.of(who).into_iter().filter(|c| c.n == 1).collect();
        assert_eq!(calls.len(), 1, "{who}: once");
        let waited = calls[0].at.duration_since(scheduled_at);
        assert!(
            waited >= Duration::from_millis(1490),
            "{who}: seen {waited:?} after scheduling"
        );
    }
    assert!(!publisher.cancel(&delayed).await.unwrap(), "already moved");
    running.stop().await;
    let admin = env.builder().no_handlers().build().await.unwrap();
    let entries = admin.read("conf", None, 10).await.unwrap();
    let ids: Vec<uuid::Uuid> = entries
        .iter()
        .map(|e| e.envelope().unwrap().meta.event_id)
        .collect();
    assert_eq!(ids.len(), 2, "one entry each");
    assert_eq!(
        ids[1],
        delayed.event_id(),
        "appended with its scheduled id, after n = 2"
    );
    assert!(
        admin
            .delayed("conf", &opsc_events::delayed::DelayedFilter::new())
            .await
            .unwrap()
            .is_empty()
    );
}

/// A cancelled delayed event is never delivered; scheduling one event id twice, or past the
/// longest delay, is refused.
async fn a_cancelled_delayed_event_is_never_delivered(env: Env) {
    let log = Log::default();
    let rt = two_groups(&env, &log).await;
    let publisher = rt.publisher();
    let cancelled = publisher
        .publish_after(&Ping { n: 1 }, Duration::from_millis(500))
        .await
        .unwrap();
    let kept = publisher
        .publish_at(
            &Ping { n: 2 },
            std::time::SystemTime::now() + Duration::from_millis(700),
        )
        .await
        .unwrap();
    assert!(publisher.cancel(&cancelled).await.unwrap());
    assert!(!publisher.cancel(&cancelled).await.unwrap(), "only once");
    let id = uuid::Uuid::now_v7();
    let opts = PublishOptions::new().event_id(id);
    publisher
        .publish_after_with(&Ping { n: 3 }, Duration::from_secs(3600), &opts)
        .await
        .unwrap();
    let again = publisher
        .publish_after_with(&Ping { n: 3 }, Duration::from_secs(60), &opts)
        .await
        .unwrap_err();
    assert!(
        matches!(again, opsc_events::Error::AlreadyScheduled { event_id, .. } if event_id == id),
        "{again}"
    );
    let too_long = publisher
        .publish_after(&Ping { n: 4 }, Duration::from_secs(500 * 24 * 3600))
        .await
        .unwrap_err();
    assert!(
        matches!(too_long, opsc_events::Error::DelayTooLong { .. }),
        "{too_long}"
    );
    let running = spawn(rt);
    wait_until("the kept event in both groups", T, || async {
        log.of("fragile").iter().any(|c| c.n == 2) && log.of("sturdy").iter().any(|c| c.n == 2)
    })
    .await;
    // The cancelled one was due 200 ms before the kept one: had it been moved, the same tick
    // or an earlier one moved it, and it would be in the stream before the kept one.
    running.stop().await;
    assert!(
        log.of("fragile")
            .iter()
            .chain(log.of("sturdy").iter())
            .all(|c| c.n != 1),
        "the cancelled event was delivered"
    );
    assert_eq!(
        log.of("fragile").iter().filter(|c| c.n == 3).count(),
        0,
        "the hour-long one is still scheduled"
    );
    assert!(!rt_cancel(&env, &kept).await, "the kept one was moved");
}

/// Cancels `d` through a fresh runtime of `env`.
async fn rt_cancel(env: &Env, d: &opsc_events::delayed::Delayed) -> bool {
    let admin = env.builder().no_handlers().build().await.unwrap();
    admin.publisher().cancel(d).await.unwrap()
}

/// With `metrics_stream`, the runtime publishes its figures as an event that an ordinary
/// handler receives: counts per handler, call time quantiles, lag and pending.
async fn the_metrics_stream_reports_each_handler(env: Env) {
    let log = Log::default();
    let rt = env
        .builder()
        .state(log.clone())
        .only(|h| h.name() == "fragile" || h.name() == "watch_metrics")
        .metrics_stream(Duration::from_millis(200))
        .build()
        .await
        .unwrap();
    let publisher = rt.publisher();
    let service = rt.service().to_owned();
    let running = spawn(rt);
    publisher.publish_all(&pings(0..5)).await.unwrap();
    wait_until("five handled", T, || async { log.of("fragile").len() == 5 }).await;
    log.broken.store(true, Ordering::SeqCst);
    publisher.publish_all(&pings(5..7)).await.unwrap();
    let fragile = |m: &opsc_events::metrics_stream::RuntimeMetrics| {
        m.handlers
            .iter()
            .find(|h| h.handler.ends_with("fragile"))
            .cloned()
    };
    wait_until("a tick with every outcome counted", T, || async {
        log.metrics.lock().unwrap().iter().any(|m| {
            fragile(m).is_some_and(|h| h.handled == 5 && h.dead_lettered == 2 && h.pending == 0)
        })
    })
    .await;
    running.stop().await;
    let all = log.metrics.lock().unwrap().clone();
    let last = all
        .iter()
        .rev()
        .find(|m| fragile(m).is_some_and(|h| h.dead_lettered == 2))
        .unwrap();
    assert_eq!(last.service, service);
    assert_eq!(last.interval_ms, 200);
    let h = fragile(last).unwrap();
    assert_eq!(h.stream, "conf");
    assert_eq!((h.failed, h.retried, h.dropped), (2, 0, 0), "{h:?}");
    assert_eq!(h.lag, Some(0), "{h:?}");
    assert!(
        last.handlers.iter().any(|w| w.stream == "metrics"),
        "the watcher reports itself too"
    );
    // Somewhere in the ticks, the calls were timed.
    assert!(
        all.iter().filter_map(fragile).any(|h| h.calls > 0
            && h.latency_p50_ms.is_some()
            && h.latency_p99_ms >= h.latency_p50_ms),
        "{all:?}"
    );
}

async fn hard_caps_trim_and_count_what_was_still_needed(env: Env) {
    let log = Log::default();
    let rt = env
        .builder()
        .state(log.clone())
        .stream_limits("conf", StreamLimits::new().max_len(30))
        .only(|h| h.name() == "lagging")
        .build()
        .await
        .unwrap();
    rt.publisher().publish_all(&pings(0..100)).await.unwrap();
    let r = rt.trim_now().await.unwrap();
    assert_eq!(
        (r[0].trimmed, r[0].capped, r[0].capped_undelivered),
        (0, 70, 70)
    );
    assert_eq!(rt.stream_info("conf").await.unwrap().length, 30);
}

async fn stream_info_reports_length_lag_pending_and_schedule(env: Env) {
    let log = Log::default();
    let rt = runtime_named(&env, &log, "slow_retry").await;
    rt.publisher().publish_all(&pings(0..3)).await.unwrap();
    let g = group(&rt, "conf.slow_retry").await;
    assert_eq!((g.pending, g.lag, g.scheduled), (0, Some(3), 0));
    let check = env.publisher().await;
    let running = spawn(rt);
    wait_until("order 0 scheduled for retry", T, || async {
        group(&check, "conf.slow_retry").await.scheduled == 1
    })
    .await;
    let info = check.stream_info("conf").await.unwrap();
    assert_eq!(info.length, 3);
    assert_eq!(info.groups[0].lag, Some(0));
    wait_until("idle", T, || async {
        check.stream_info("conf").await.unwrap().is_idle()
    })
    .await;
    running.stop().await;
}

async fn context_links_follow_up_events_to_their_cause(env: Env) {
    let log = Log::default();
    let rt = runtime(&env, &log, "::chain").await;
    let opts = PublishOptions::new().header("traceparent", "00-abc-def-01");
    rt.publisher()
        .publish_with(&Ping { n: 1 }, &opts)
        .await
        .unwrap();
    let running = spawn(rt);
    wait_until("the pong", T, || async { log.count("pong_seen") == 1 }).await;
    running.stop().await;
    let seen = log.contexts.lock().unwrap().clone();
    let (ping_id, ping_corr, ping_cause, ping_headers) = &seen[0];
    let (pong_id, pong_corr, pong_cause, pong_headers) = &seen[1];
    assert_eq!(ping_corr, ping_id, "a new conversation");
    assert_eq!(*ping_cause, None);
    assert_eq!(pong_corr, ping_id, "the follow-up joins the conversation");
    assert_eq!(*pong_cause, Some(*ping_id), "caused by the ping");
    assert_ne!(pong_id, ping_id);
    assert_eq!(
        ping_headers.get("traceparent"),
        pong_headers.get("traceparent")
    );
}

async fn older_versions_are_upcast_for_handlers(env: Env) {
    let log = Log::default();
    let rt = runtime(&env, &log, "::versions").await;
    rt.publisher()
        .publish(&GreetingV1 { name: "ada".into() })
        .await
        .unwrap();
    rt.publisher()
        .publish(&Greeting {
            name: "grace".into(),
            language: "fr".into(),
        })
        .await
        .unwrap();
    let running = spawn(rt);
    wait_until("two greetings", T, || async {
        log.greetings.lock().unwrap().len() == 2
    })
    .await;
    running.stop().await;
    let g = log.greetings.lock().unwrap().clone();
    assert_eq!(
        g[0],
        Greeting {
            name: "ada".into(),
            language: "en".into()
        }
    );
    assert_eq!(g[1].language, "fr");
}

// ---------------------------------------------------------------------------------------------

/// Runs every behaviour on every transport: `redis::<name>`, `redis_tls::<name>` and
/// `memory::<name>`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(super::Env::redis()).await
            })*
        }
        mod redis_tls {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(super::Env::redis_tls()).await
            })*
        }
        mod redis_sentinel {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(super::Env::sentinel()).await
            })*
        }
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(super::Env::memory()).await
            })*
        }
    };
}

conformance! {
    publish_returns_increasing_ids,
    publish_all_keeps_order_and_returns_one_id_each,
    every_event_is_handled_once,
    every_group_receives_every_event,
    runtimes_of_one_service_share_a_group,
    concurrency_1_keeps_stream_order,
    concurrency_limit_is_never_exceeded,
    a_new_group_starts_at_latest_by_default,
    start_earliest_sees_what_was_published_before,
    events_of_other_types_are_acknowledged_and_skipped,
    retries_then_one_dead_letter_with_exact_counts,
    failing_twice_then_succeeding_leaves_no_dead_letter,
    a_permanent_error_is_dead_lettered_at_once,
    a_panic_is_a_failed_attempt,
    a_timeout_is_a_failed_attempt,
    with_dead_letters_off_the_message_is_dropped,
    a_backoff_does_not_block_other_messages,
    poison_entries_are_dead_lettered_by_reason_and_good_ones_flow,
    wide_and_huge_entries_are_retried_and_dead_lettered_never_lost,
    replay_goes_back_to_the_failing_group_only,
    the_replay_loop_guard_stops_a_letter_replayed_too_often,
    dead_letters_list_filter_page_and_purge,
    dead_letters_are_selected_by_id,
    the_newest_entries_are_read_newest_first,
    abandoned_messages_are_reclaimed_after_claim_after,
    a_consumer_restarted_under_its_name_resumes_its_pending_entries,
    shutdown_lets_in_flight_handlers_finish_and_acks_them,
    lossless_trimming_keeps_what_a_stopped_group_needs,
    hard_caps_trim_and_count_what_was_still_needed,
    a_handler_chosen_retry_delay_overrides_the_backoff,
    a_delayed_event_is_seen_by_every_group_once_due_and_not_before,
    a_cancelled_delayed_event_is_never_delivered,
    the_metrics_stream_reports_each_handler,
    a_scheduled_retry_survives_trimming_of_its_entry,
    stream_info_reports_length_lag_pending_and_schedule,
    context_links_follow_up_events_to_their_cause,
    older_versions_are_upcast_for_handlers,
    a_critical_event_overtakes_the_backlog_and_each_lane_keeps_its_order,
    lower_lanes_progress_under_continuous_higher_load,
    the_type_sets_the_priority_and_a_publish_overrides_it,
    a_lane_entry_is_retried_dead_lettered_and_replayed_in_its_lane,
    a_delayed_event_lands_in_its_lane,
    a_batch_handler_takes_a_backlog_in_few_calls,
    a_failed_message_of_a_batch_retries_alone,
    a_panicking_batch_fails_every_message,
    a_lone_event_waits_at_most_linger,
    an_undecodable_entry_is_dead_lettered_alone_and_its_batch_runs,
    concurrency_runs_that_many_batch_calls_at_once,
}
