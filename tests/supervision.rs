//! Supervision (SPEC §6, issue: no silent wedge): every task a consumer spawns is watched. A task
//! that dies ends `run()` with an error naming the handler and the task — the runtime stops every
//! handler gracefully, and nothing handled before or pending is lost — and a task that hangs
//! shows in `health()` as a stalled consumer. Faults are injected with the runtime's
//! `fault-injection` feature (`opsc_events_runtime::fault::arm`), on a real `redis-server` and
//! on the embedded broker.

mod common;

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::wait_until;
use opsc_events::health::ConsumerState;
use opsc_events::prelude::*;
use opsc_events_runtime::fault::{self, Fault};
use opsc_events_testkit::RedisServer;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(name = "supervised.tick", version = 1, stream = "sup_ticks")]
pub struct Tick {
    pub n: u32,
}

/// The `n` of every call that succeeded, all runs together.
static SEEN: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

fn seen() -> BTreeSet<u32> {
    SEEN.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

pub mod supervised {
    use super::*;

    /// Waits a little, so that calls overlap and lanes, count marks and settlement batches all
    /// have work while a fault fires.
    #[handler(
        stream = "sup_ticks",
        group = "sup.ticks",
        concurrency = 4,
        timeout = "2s",
        claim_after = "5s"
    )]
    pub async fn supervised(event: Tick) -> Result<(), HandlerError> {
        tokio::time::sleep(Duration::from_millis(2)).await;
        SEEN.lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(event.n);
        Ok(())
    }
}

/// Calls of `unsettled::quick`.
static QUICK_CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub mod unsettled {
    use super::*;

    #[derive(Event, Serialize, Deserialize, Debug, Clone)]
    #[event(name = "supervised.quick", version = 1, stream = "sup_quick")]
    pub struct Quick {
        pub n: u32,
    }

    #[handler(
        stream = "sup_quick",
        group = "sup.quick",
        concurrency = 8,
        timeout = "1s",
        claim_after = "60s"
    )]
    pub async fn quick(_event: Quick) -> Result<(), HandlerError> {
        QUICK_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

/// While acknowledgements fail (with an error worth retrying) and reads succeed, the consumer
/// stops taking work once [`MAX_UNSETTLED`] outcomes wait: handled-but-unsettled work is bounded
/// (it grew with every read before), health reports the stalled settlement, and once the
/// acknowledgements go through again everything is settled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handled_but_unsettled_work_is_bounded_while_acknowledgements_fail() {
    use std::sync::atomic::Ordering;
    use unsettled::Quick;
    /// `consumer::dispatch::MAX_UNSETTLED`, plus what can be in hand when the bound is reached:
    /// what is read ahead (at most 256 queued, and a read of up to 256 sent while the bound was
    /// not reached yet) and the calls running.
    const BOUND: u64 = 2048 + 2 * 256 + 8;
    const EVENTS: u32 = 12_000;
    common::init_tracing();
    let server = RedisServer::start();
    for redis in [true, false] {
        let broker = MemoryBroker::new();
        QUICK_CALLS.store(0, Ordering::SeqCst);
        let builder = || {
            let b = Runtime::builder()
                .service("sup")
                .consumer_name("sup-2")
                .shutdown_timeout(Duration::from_secs(5))
                .stall_after(Duration::from_secs(2))
                .only(|h| h.module_path().ends_with("::unsettled"));
            if redis {
                b.redis(server.url())
            } else {
                b.memory_with(broker.clone())
            }
        };
        let rt = builder().build().await.unwrap();
        let health = rt.health();
        let check = builder().no_handlers().build().await.unwrap();
        let publisher = rt.publisher();
        fault::arm("sup.quick", "ack", Fault::Fail);
        let events: Vec<Quick> = (0..EVENTS).map(|n| Quick { n }).collect();
        for chunk in events.chunks(1000) {
            publisher.publish_all(chunk).await.unwrap();
        }
        let running = common::spawn(rt);
        wait_until(
            "the failing settlement shows in health",
            Duration::from_secs(30),
            || async { health.check().await.consumers[0].state == ConsumerState::Stalled },
        )
        .await;
        let calls = QUICK_CALLS.load(Ordering::SeqCst);
        eprintln!("redis: {redis}: {calls} calls while acknowledgements failed");
        assert!(
            (2048..=BOUND).contains(&calls),
            "work taken while nothing could be settled: {calls} calls (bound {BOUND})"
        );
        fault::disarm("sup.quick", "ack");
        wait_until("everything settled", Duration::from_secs(60), || async {
            let info = check.stream_info("sup_quick").await.unwrap();
            info.groups
                .iter()
                .any(|g| g.name == "sup.quick" && g.pending == 0 && g.lag == Some(0))
        })
        .await;
        assert!(QUICK_CALLS.load(Ordering::SeqCst) >= u64::from(EVENTS));
        common::stop(running).await;
    }
}

/// The same handler in a group of its own, for the hang test (faults are armed per group and
/// the tests of this binary run at the same time).
pub mod hung {
    use super::*;

    #[handler(
        stream = "sup_ticks",
        group = "sup.hung",
        concurrency = 4,
        timeout = "2s",
        claim_after = "5s"
    )]
    pub async fn hung(event: Tick) -> Result<(), HandlerError> {
        tokio::time::sleep(Duration::from_millis(2)).await;
        SEEN.lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(event.n);
        Ok(())
    }
}

fn builder(redis: Option<&RedisServer>, broker: &MemoryBroker) -> opsc_events::RuntimeBuilder {
    builder_of(redis, broker, "::supervised")
}

fn builder_of(
    redis: Option<&RedisServer>,
    broker: &MemoryBroker,
    module: &'static str,
) -> opsc_events::RuntimeBuilder {
    let b = Runtime::builder()
        .service("sup")
        .consumer_name("sup-1")
        .shutdown_timeout(Duration::from_secs(5))
        .only(move |h| h.module_path().ends_with(module));
    match redis {
        Some(server) => b.redis(server.url()),
        None => b.memory_with(broker.clone()),
    }
}

/// For each task of a consumer, on Redis and on the embedded broker: a panic in it ends `run()`
/// (bounded) with `ConsumerFailed` naming the handler and the task, health says `Failed`, and a
/// runtime started afterwards handles every event — what was handled but not settled, or read
/// but not run, is delivered again, never lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_dies_ends_run_with_an_error_naming_the_handler_and_loses_nothing() {
    common::init_tracing();
    let server = RedisServer::start();
    let mut next = 0u32;
    for redis in [true, false] {
        let broker = MemoryBroker::new();
        let target = if redis { Some(&server) } else { None };
        for task in [
            "read", "lane", "counts", "settle", "retry", "reclaim", "cleanup",
        ] {
            let rt = builder(target, &broker).build().await.unwrap();
            let health = rt.health();
            let publisher = rt.publisher();
            // Published before the run, so the first read takes a batch (lanes, count marks,
            // settlements); and more once it runs.
            let batch: Vec<Tick> = (next..next + 200).map(|n| Tick { n }).collect();
            next += 200;
            publisher.publish_all(&batch).await.unwrap();
            fault::arm("sup.ticks", task, Fault::Panic);
            let started = Instant::now();
            let result = tokio::time::timeout(
                Duration::from_secs(30),
                rt.run_until(std::future::pending()),
            )
            .await
            .unwrap_or_else(|_| panic!("run() did not end after the `{task}` task died"));
            let err = result.expect_err("a dead task must end run() with an error");
            match &err {
                opsc_events::Error::ConsumerFailed {
                    handler,
                    group,
                    task: failed,
                    reason,
                    ..
                } => {
                    assert!(handler.ends_with("supervised::supervised"), "{err}");
                    assert_eq!(group, "sup.ticks");
                    assert_eq!(failed.to_string(), task, "{err}");
                    assert!(reason.contains("panicked"), "{err}");
                }
                other => panic!("expected ConsumerFailed for `{task}`, got {other:?}"),
            }
            let text = err.to_string();
            assert!(
                text.contains("supervised") && text.contains(task),
                "the message names the handler and the task: {text}"
            );
            let report = health.check().await;
            assert_eq!(
                report.consumers[0].state,
                ConsumerState::Failed,
                "{task}: {report:?}"
            );
            assert!(!report.healthy);
            eprintln!(
                "{task} (redis: {redis}): run() ended {:?} after the fault",
                started.elapsed()
            );
        }
        // Nothing lost: a runtime without faults handles every event published so far.
        let rt = builder(target, &broker).build().await.unwrap();
        let running = common::spawn(rt);
        let want: BTreeSet<u32> = (0..next).collect();
        wait_until(
            "every event handled after the failures",
            Duration::from_secs(60),
            || async { want.is_subset(&seen()) },
        )
        .await;
        common::stop(running).await;
    }
}

/// A task that hangs (a stuck `await`, no panic) is not a silent wedge: `health()` reports the
/// consumer `Stalled` with the reason once `stall_after` passes — for a settlement that never
/// finishes, and for reads that stop (the count flusher the reader waits for hangs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_task_shows_as_a_stalled_consumer() {
    common::init_tracing();
    let server = RedisServer::start();
    for redis in [true, false] {
        let broker = MemoryBroker::new();
        let target = if redis { Some(&server) } else { None };
        for (task, says) in [("settle", "settlement"), ("counts", "no read returned")] {
            let rt = builder_of(target, &broker, "::hung")
                // The handler's timeout is 2 s: its stall limit is 4 s.
                .stall_after(Duration::from_millis(500))
                .build()
                .await
                .unwrap();
            let health = rt.health();
            let publisher = rt.publisher();
            let running = common::spawn(rt);
            wait_until("the consumer reads", Duration::from_secs(10), || async {
                health.check().await.healthy
            })
            .await;
            fault::arm("sup.hung", task, Fault::Hang);
            let batch: Vec<Tick> = (0..50).map(|n| Tick { n: 1_000_000 + n }).collect();
            publisher.publish_all(&batch).await.unwrap();
            let hung = Instant::now();
            wait_until(
                "health reports the stall",
                Duration::from_secs(20),
                || async {
                    let report = health.check().await;
                    let c = &report.consumers[0];
                    c.state == ConsumerState::Stalled
                        && !report.healthy
                        && c.stall.as_deref().is_some_and(|s| s.contains(says))
                },
            )
            .await;
            assert!(
                hung.elapsed() >= Duration::from_secs(4),
                "not stalled before the limit (twice the handler's 2 s timeout): {:?}",
                hung.elapsed()
            );
            // The hung task does not stop a graceful shutdown.
            tokio::time::timeout(Duration::from_secs(30), common::stop(running))
                .await
                .expect("a runtime with a hung task still stops");
        }
    }
}
