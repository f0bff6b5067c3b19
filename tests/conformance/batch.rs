//! Batch handlers (`#[handler(batch = N, linger = "...")]`): many events per call, settled per
//! message.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opsc_events::prelude::*;
use opsc_events::{BatchContext, BatchError, WireFormat};

use super::common::wait_until;
use super::env::{Env, spawn};
use super::{Ping, T, letters};

/// One message of a batch call as the handler saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    n: u64,
    attempt: u32,
    id: MessageId,
}

/// One batch call: the handler, the messages in order, and when it started.
type BatchCall = (&'static str, Vec<Seen>, Instant);

/// Every batch call of every handler: who, and the messages in order; and how many calls ran
/// at once at most.
#[derive(Clone, Default)]
pub struct Calls(
    Arc<Mutex<Vec<BatchCall>>>,
    Arc<AtomicUsize>,
    Arc<AtomicUsize>,
);

impl Calls {
    fn enter(&self) {
        let now = self.1.fetch_add(1, Ordering::SeqCst) + 1;
        self.2.fetch_max(now, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.1.fetch_sub(1, Ordering::SeqCst);
    }

    fn record(&self, who: &'static str, events: &[Ping], ctx: &BatchContext) {
        assert_eq!(events.len(), ctx.len(), "one context per event");
        let seen = events
            .iter()
            .zip(ctx)
            .map(|(e, c)| Seen {
                n: e.n,
                attempt: c.attempt(),
                id: c.message_id(),
            })
            .collect();
        self.0.lock().unwrap().push((who, seen, Instant::now()));
    }

    fn of(&self, who: &str) -> Vec<Vec<Seen>> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(w, _, _)| *w == who)
            .map(|(_, s, _)| s.clone())
            .collect()
    }

    fn messages(&self, who: &str) -> Vec<Seen> {
        self.of(who).into_iter().flatten().collect()
    }

    fn first_at(&self, who: &str) -> Option<Instant> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .find(|(w, _, _)| *w == who)
            .map(|(_, _, at)| *at)
    }
}

mod batched {
    use super::*;

    #[handler(stream = "conf", batch = 100, linger = "20ms")]
    pub async fn batched(events: Vec<Ping>, ctx: BatchContext, State(calls): State<Calls>) {
        calls.record("batched", &events, &ctx);
    }

    /// Fails the message holding `n == 3` every time; the others succeed.
    #[handler(
        stream = "conf",
        batch = 10,
        linger = "100ms",
        retries = 2,
        backoff = "fixed(20ms)"
    )]
    pub async fn fails_three(
        events: Vec<Ping>,
        ctx: BatchContext,
        State(calls): State<Calls>,
    ) -> Result<(), BatchError> {
        calls.record("fails_three", &events, &ctx);
        let mut failed = BatchError::new();
        for (i, e) in events.iter().enumerate() {
            if e.n == 3 {
                failed.fail(i, HandlerError::retryable(format!("cannot index {}", e.n)));
            }
        }
        failed.into_result()
    }

    /// Panics whenever the batch holds a first attempt.
    #[handler(
        stream = "conf",
        batch = 10,
        linger = "100ms",
        retries = 1,
        backoff = "none"
    )]
    pub async fn batch_panics(events: Vec<Ping>, ctx: BatchContext, State(calls): State<Calls>) {
        calls.record("batch_panics", &events, &ctx);
        if ctx.iter().any(|c| c.attempt() == 1) {
            panic!("batch of {} panicked", events.len());
        }
    }

    #[handler(stream = "conf", batch = 100, linger = "300ms")]
    pub async fn lingers(events: Vec<Ping>, ctx: BatchContext, State(calls): State<Calls>) {
        calls.record("lingers", &events, &ctx);
    }

    #[handler(stream = "conf", batch = 10, linger = "100ms")]
    pub async fn strict_batch(
        events: Vec<Ping>,
        ctx: BatchContext,
        State(calls): State<Calls>,
    ) -> Result<(), HandlerError> {
        calls.record("strict_batch", &events, &ctx);
        Ok(())
    }

    /// Two batch calls in flight at most, each waiting a little.
    #[handler(stream = "conf", batch = 10, concurrency = 2)]
    pub async fn two_at_once(events: Vec<Ping>, ctx: BatchContext, State(calls): State<Calls>) {
        calls.record("two_at_once", &events, &ctx);
        calls.enter();
        tokio::time::sleep(Duration::from_millis(50)).await;
        calls.leave();
    }
}

async fn runtime(env: &Env, calls: &Calls, name: &'static str) -> Runtime {
    env.builder()
        .state(calls.clone())
        .only(move |h| h.name() == name && h.module_path().ends_with("::batched"))
        .build()
        .await
        .expect("runtime builds")
}

fn sorted(mut ns: Vec<u64>) -> Vec<u64> {
    ns.sort_unstable();
    ns
}

async fn settled(env: &Env, group: &str) {
    let check = env.publisher().await;
    wait_until("nothing pending or scheduled", T, || async {
        let info = check.stream_info("conf").await.expect("info");
        let g = info.groups.iter().find(|g| g.name == group).expect("group");
        g.pending == 0 && g.scheduled == 0
    })
    .await;
}

pub async fn a_batch_handler_takes_a_backlog_in_few_calls(env: Env) {
    let calls = Calls::default();
    let rt = runtime(&env, &calls, "batched").await;
    let events: Vec<Ping> = (0..1000).map(|n| Ping { n }).collect();
    rt.publisher().publish_all(&events).await.unwrap();
    let running = spawn(rt);
    wait_until("1000 handled", T, || async {
        calls.messages("batched").len() >= 1000
    })
    .await;
    settled(&env, "conf.batched").await;
    running.stop().await;
    let seen = calls.messages("batched");
    assert_eq!(
        sorted(seen.iter().map(|s| s.n).collect()),
        (0..1000).collect::<Vec<_>>(),
        "every event exactly once"
    );
    assert!(seen.iter().all(|s| s.attempt == 1));
    let batches = calls.of("batched");
    assert!(
        batches.len() <= 1000 / 100 + 5,
        "{} calls for 1000 events in batches of 100: {:?}",
        batches.len(),
        batches.iter().map(Vec::len).collect::<Vec<_>>()
    );
    assert!(batches.iter().all(|b| b.len() <= 100));
    // One lane (`concurrency = 1`): the stream's order, across and within batches.
    let ns: Vec<u64> = seen.iter().map(|s| s.n).collect();
    assert_eq!(ns, (0..1000).collect::<Vec<_>>());
}

pub async fn a_failed_message_of_a_batch_retries_alone(env: Env) {
    let calls = Calls::default();
    let rt = runtime(&env, &calls, "fails_three").await;
    let events: Vec<Ping> = (0..10).map(|n| Ping { n }).collect();
    let ids = rt.publisher().publish_all(&events).await.unwrap();
    let running = spawn(rt);
    let check = env.publisher().await;
    wait_until("dead-lettered", T, || async {
        letters(&check).await.len() == 1
    })
    .await;
    settled(&env, "conf.fails_three").await;
    running.stop().await;
    let batches = calls.of("fails_three");
    // The first call had the whole backlog; index 3 failed.
    assert_eq!(batches[0].len(), 10, "{batches:?}");
    assert_eq!(batches[0][3].n, 3);
    // Every later call is the failed message alone, at its next attempt.
    let later: Vec<(usize, u64, u32)> = batches[1..]
        .iter()
        .map(|b| (b.len(), b[0].n, b[0].attempt))
        .collect();
    assert_eq!(later, vec![(1, 3, 2), (1, 3, 3)]);
    let l = &letters(&check).await[0];
    assert_eq!(l.original_id, ids[3]);
    assert_eq!(l.reason, DeadLetterReason::HandlerError);
    assert_eq!(l.attempts, 3);
    assert_eq!(l.error, "cannot index 3");
    // The others were handled once, and acknowledged (nothing pending above).
    let ns = sorted(calls.messages("fails_three").iter().map(|s| s.n).collect());
    assert_eq!(ns, vec![0, 1, 2, 3, 3, 3, 4, 5, 6, 7, 8, 9]);
}

pub async fn a_panicking_batch_fails_every_message(env: Env) {
    let calls = Calls::default();
    let rt = runtime(&env, &calls, "batch_panics").await;
    let events: Vec<Ping> = (0..5).map(|n| Ping { n }).collect();
    rt.publisher().publish_all(&events).await.unwrap();
    let running = spawn(rt);
    wait_until("every message retried", T, || async {
        calls
            .messages("batch_panics")
            .iter()
            .filter(|s| s.attempt == 2)
            .count()
            == 5
    })
    .await;
    settled(&env, "conf.batch_panics").await;
    running.stop().await;
    let check = env.publisher().await;
    assert!(letters(&check).await.is_empty());
    let seen = calls.messages("batch_panics");
    for n in 0..5 {
        let attempts: Vec<u32> = seen
            .iter()
            .filter(|s| s.n == n)
            .map(|s| s.attempt)
            .collect();
        assert_eq!(attempts, vec![1, 2], "event {n}: {seen:?}");
    }
}

pub async fn a_lone_event_waits_at_most_linger(env: Env) {
    let calls = Calls::default();
    let rt = runtime(&env, &calls, "lingers").await;
    let publisher = env.publisher().await;
    let running = spawn(rt);
    // Let the consumer start and block on its read.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = Instant::now();
    publisher.publisher().publish(&Ping { n: 7 }).await.unwrap();
    wait_until("handled", T, || async {
        calls.first_at("lingers").is_some()
    })
    .await;
    let took = calls.first_at("lingers").unwrap() - sent;
    settled(&env, "conf.lingers").await;
    running.stop().await;
    assert_eq!(
        calls.of("lingers"),
        vec![vec![calls.messages("lingers")[0]]]
    );
    assert!(
        took >= Duration::from_millis(280),
        "the batch waited its linger (300ms) for more: {took:?}"
    );
    assert!(
        took < Duration::from_millis(300) + Duration::from_secs(2),
        "a batch that is not full is called once linger passes: {took:?}"
    );
}

pub async fn an_undecodable_entry_is_dead_lettered_alone_and_its_batch_runs(env: Env) {
    let calls = Calls::default();
    let rt = runtime(&env, &calls, "strict_batch").await;
    let p = rt.publisher();
    p.publish_all(&[Ping { n: 0 }, Ping { n: 1 }])
        .await
        .unwrap();
    // A v1 entry whose payload is not MessagePack.
    let e = envelope::encode_as(&Ping { n: 9 }, &Metadata::new("conf"), WireFormat::V1).unwrap();
    let fields: Vec<(String, Vec<u8>)> = e
        .fields()
        .map(|(k, v)| {
            let v = if k == "data" {
                b"\xc1\xc1".to_vec()
            } else {
                v.to_vec()
            };
            (k.to_owned(), v)
        })
        .collect();
    let refs: Vec<(&str, &[u8])> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    let bad = p.append_raw("conf", &refs).await.unwrap();
    p.publish_all(&[Ping { n: 2 }, Ping { n: 3 }])
        .await
        .unwrap();
    let running = spawn(rt);
    let check = env.publisher().await;
    wait_until("dead-lettered", T, || async {
        letters(&check).await.len() == 1
    })
    .await;
    wait_until("4 handled", T, || async {
        calls.messages("strict_batch").len() >= 4
    })
    .await;
    settled(&env, "conf.strict_batch").await;
    running.stop().await;
    let l = &letters(&check).await[0];
    assert_eq!(
        (l.original_id, l.reason.clone(), l.attempts),
        (bad, DeadLetterReason::DecodeError, 1)
    );
    let seen = calls.messages("strict_batch");
    assert_eq!(
        seen.iter().map(|s| s.n).collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
    assert!(seen.iter().all(|s| s.attempt == 1 && s.id != bad));
    // The good ones came in one call, around the bad one.
    assert_eq!(
        calls.of("strict_batch").len(),
        1,
        "{:?}",
        calls.of("strict_batch")
    );
}

pub async fn concurrency_runs_that_many_batch_calls_at_once(env: Env) {
    let calls = Calls::default();
    let rt = runtime(&env, &calls, "two_at_once").await;
    let events: Vec<Ping> = (0..200).map(|n| Ping { n }).collect();
    rt.publisher().publish_all(&events).await.unwrap();
    let running = spawn(rt);
    wait_until("200 handled", T, || async {
        calls.messages("two_at_once").len() >= 200
    })
    .await;
    settled(&env, "conf.two_at_once").await;
    running.stop().await;
    let batches = calls.of("two_at_once");
    assert!(batches.iter().all(|b| b.len() <= 10));
    assert_eq!(
        sorted(calls.messages("two_at_once").iter().map(|s| s.n).collect()),
        (0..200).collect::<Vec<_>>()
    );
    assert_eq!(
        calls.2.load(Ordering::SeqCst),
        2,
        "two batch calls at once, never more"
    );
}
