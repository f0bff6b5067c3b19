//! Model-based comparison of the two transports: random sequences of operations — publishing
//! events that succeed, fail some times, fail permanently or are poison; replaying dead letters;
//! trimming — run against a private redis-server and against the embedded broker, and
//! everything observable at the end must be the same.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opsc_events::RuntimeBuilder;
use opsc_events::prelude::*;
use opsc_events_testkit::RedisServer;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "model")]
pub struct Item {
    pub n: u64,
}

/// How the handler treats an item: fail its first `k` attempts (of 3), or fail permanently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    FailTimes(u32),
    Permanent,
}

#[derive(Debug, Clone)]
enum Op {
    Publish(Behaviour),
    PublishPoison,
    ReplayAll,
    Trim,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0u32..=4).prop_map(|k| Op::Publish(Behaviour::FailTimes(k))),
        1 => Just(Op::Publish(Behaviour::Permanent)),
        1 => Just(Op::PublishPoison),
        1 => Just(Op::ReplayAll),
        1 => Just(Op::Trim),
    ]
}

#[derive(Clone, Default)]
pub struct Script {
    behaviour: Arc<Mutex<HashMap<u64, Behaviour>>>,
    attempts: Arc<Mutex<BTreeMap<u64, Vec<u32>>>>,
}

#[handler(stream = "model", retries = 2, backoff = "none", concurrency = 4)]
async fn model(
    event: Item,
    ctx: Context,
    State(script): State<Script>,
) -> Result<(), HandlerError> {
    script
        .attempts
        .lock()
        .unwrap()
        .entry(event.n)
        .or_default()
        .push(ctx.attempt());
    let behaviour = script.behaviour.lock().unwrap().get(&event.n).copied();
    match behaviour {
        Some(Behaviour::FailTimes(k)) if ctx.attempt() <= k => Err("scripted failure".into()),
        Some(Behaviour::Permanent) => Err(HandlerError::permanent("scripted permanent failure")),
        _ => Ok(()),
    }
}

/// Everything observable at the end of a run.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    /// Item → the attempt numbers the handler saw, sorted.
    attempts: BTreeMap<u64, Vec<u32>>,
    /// (item, reason, attempts, replays) of every dead letter, sorted; poison has no item.
    letters: Vec<(Option<u64>, String, u32, u32)>,
    /// Entries removed by each trim.
    trimmed: Vec<u64>,
    length: u64,
    pending: u64,
    scheduled: u64,
}

/// Waits until nothing is pending, scheduled or undelivered and `letters` dead letters exist.
async fn settled(probe: &Runtime, letters: usize) {
    common::wait_until("settled", Duration::from_secs(30), || async {
        let info = probe.stream_info("model").await.unwrap();
        info.is_idle() && info.dead_letters as usize == letters
    })
    .await;
}

enum Backend {
    Redis(RedisServer),
    Memory(MemoryBroker),
}

impl Backend {
    fn builder(&self) -> RuntimeBuilder {
        let b = Runtime::builder().service("model").max_replays(2);
        match self {
            Backend::Redis(s) => b.redis(s.url()),
            Backend::Memory(m) => b.memory_with(m.clone()),
        }
    }
}

async fn run(ops: &[Op], backend: Backend) -> Observed {
    let script = Script::default();
    let rt = backend
        .builder()
        .state(script.clone())
        .only(|h| h.name() == "model")
        .build()
        .await
        .expect("builds");
    // A second handle on the same transport, for inspection, trims and replays.
    let probe = backend
        .builder()
        .stream_limits("model", StreamLimits::new())
        .no_handlers()
        .build()
        .await
        .expect("probe builds");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(rt.run_until(async move {
        let _ = rx.await;
    }));

    // Items that end as dead letters whatever happens: they fail all three attempts.
    let mut doomed = 0usize;
    let mut next = 0u64;
    let mut trimmed = Vec::new();
    for op in ops {
        match op {
            Op::Publish(behaviour) => {
                script.behaviour.lock().unwrap().insert(next, *behaviour);
                if matches!(behaviour, Behaviour::Permanent | Behaviour::FailTimes(3..)) {
                    doomed += 1;
                }
                probe.publisher().publish(&Item { n: next }).await.unwrap();
                next += 1;
            }
            Op::PublishPoison => {
                doomed += 1;
                probe
                    .publisher()
                    .append_raw("model", &[("event_type", b"item"), ("data", b"\xc1")])
                    .await
                    .unwrap();
            }
            Op::ReplayAll => {
                settled(&probe, doomed).await;
                probe
                    .dead_letters()
                    .replay(&DeadLetterFilter::stream("model"))
                    .await
                    .unwrap();
            }
            Op::Trim => {
                settled(&probe, doomed).await;
                trimmed.push(probe.trim_now().await.unwrap()[0].trimmed);
            }
        }
    }
    settled(&probe, doomed).await;
    let _ = tx.send(());
    running.await.unwrap().unwrap();

    let mut letters: Vec<_> = probe
        .dead_letters()
        .list(&DeadLetterFilter::stream("model").limit(100_000))
        .await
        .unwrap()
        .into_iter()
        .map(|l| {
            let item = rmp_serde::from_slice::<Item>(&l.data).ok().map(|i| i.n);
            (item, l.reason.to_string(), l.attempts, l.replays)
        })
        .collect();
    letters.sort();
    let info = probe.stream_info("model").await.unwrap();
    let group = info
        .groups
        .iter()
        .find(|g| g.name == "model.model")
        .unwrap();
    let mut attempts = script.attempts.lock().unwrap().clone();
    attempts.values_mut().for_each(|v| v.sort_unstable());
    Observed {
        attempts,
        letters,
        trimmed,
        length: info.length,
        pending: group.pending,
        scheduled: group.scheduled,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, max_shrink_iters: 16, ..ProptestConfig::default() })]

    #[test]
    fn both_transports_observe_the_same(ops in proptest::collection::vec(op(), 1..14)) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let on_redis = rt.block_on(run(&ops, Backend::Redis(RedisServer::start())));
        let in_memory = rt.block_on(run(&ops, Backend::Memory(MemoryBroker::new())));
        prop_assert_eq!(&on_redis, &in_memory, "ops: {:?}", ops);
        prop_assert_eq!(on_redis.pending, 0);
        prop_assert_eq!(on_redis.scheduled, 0);
    }
}
