//! Consumer processes killed with SIGKILL: what they held is reclaimed by another runtime.

mod common;
#[path = "common/fault_events.rs"]
mod fault_events;

use std::collections::HashSet;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{pending, wait_until};
use fault_events::{GROUP, WorkItem};
use opsc_events::prelude::*;
use opsc_events::{DeadLetterFilter, DeadLetterReason};
use opsc_events_testkit::RedisServer;

const KEY: &str = "opsconductor:{faults}:events";

#[derive(Clone, Default)]
struct Handled(Arc<Mutex<Vec<(u64, u32, Instant)>>>);

#[handler(
    stream = "faults",
    group = "fault.worker",
    concurrency = 16,
    timeout = "1s",
    claim_after = "2s"
)]
async fn survivor(event: WorkItem, ctx: Context, State(handled): State<Handled>) {
    handled
        .0
        .lock()
        .unwrap()
        .push((event.n, ctx.delivery_count(), Instant::now()));
}

/// Takes over the `backoff` child's group: succeeds, recording the attempt it was given.
#[handler(
    stream = "faults",
    group = "fault.retry",
    retries = 3,
    backoff = "fixed(3s)"
)]
async fn retry_taker(event: WorkItem, ctx: Context, State(handled): State<Handled>) {
    handled
        .0
        .lock()
        .unwrap()
        .push((event.n, ctx.attempt(), Instant::now()));
}

/// Starts `fault-consumer` in `mode`.
fn spawn_child(url: &str, mode: &str) -> (Child, Arc<Mutex<Vec<String>>>) {
    common::spawn_fault_consumer(url, mode, &[])
}

#[tokio::test]
async fn kill_9_of_a_consumer_holding_messages_loses_nothing() {
    common::init_tracing();
    let server = RedisServer::start();
    let handled = Handled::default();
    // The survivor's runtime is built first so that the group exists before publishing.
    let rt = Runtime::builder()
        .service("fault")
        .redis(server.url())
        .state(handled.clone())
        .only(|h| h.name() == "survivor")
        .build()
        .await
        .expect("builds");
    let items: Vec<WorkItem> = (0..50).map(|n| WorkItem { n }).collect();
    rt.publisher().publish_all(&items).await.expect("publish");

    let (mut child, lines) = spawn_child(&server.url(), "hold");
    wait_until(
        "the child holds all 50",
        Duration::from_secs(30),
        || async {
            lines
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.starts_with("start "))
                .count()
                == 50
        },
    )
    .await;
    assert_eq!(pending(&server.url(), KEY, GROUP).await, 50);
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");

    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(rt.run_until(async move {
        let _ = rx.await;
    }));
    wait_until(
        "all 50 reclaimed and handled",
        Duration::from_secs(30),
        || async { handled.0.lock().unwrap().len() >= 50 },
    )
    .await;
    wait_until("nothing pending", Duration::from_secs(10), || async {
        pending(&server.url(), KEY, GROUP).await == 0
    })
    .await;
    let _ = tx.send(());
    running.await.expect("task").expect("run");
    let seen = handled.0.lock().unwrap().clone();
    let ns: HashSet<u64> = seen.iter().map(|(n, _, _)| *n).collect();
    assert_eq!(ns, (0..50).collect::<HashSet<_>>());
    assert!(
        seen.iter().all(|(_, count, _)| *count >= 2),
        "the delivery count carries over the reclaim"
    );
}

async fn runtime_of(server: &RedisServer, handler: &'static str, handled: &Handled) -> Runtime {
    Runtime::builder()
        .service("fault")
        .redis(server.url())
        .state(handled.clone())
        .only(move |h| h.name() == handler)
        .build()
        .await
        .expect("builds")
}

#[tokio::test]
async fn kill_9_during_a_backoff_keeps_the_retry_and_its_attempt_count() {
    common::init_tracing();
    let server = RedisServer::start();
    let handled = Handled::default();
    let rt = runtime_of(&server, "retry_taker", &handled).await;
    rt.publisher()
        .publish(&WorkItem { n: 1 })
        .await
        .expect("publish");
    let (mut child, lines) = spawn_child(&server.url(), "backoff");
    wait_until(
        "the child failed attempt 1",
        Duration::from_secs(30),
        || async { lines.lock().unwrap().iter().any(|l| l == "attempt 1 1") },
    )
    .await;
    let failed_at = Instant::now();
    wait_until(
        "the retry is scheduled",
        Duration::from_secs(10),
        || async { common::zcard(&server.url(), RETRY_KEY).await == 1 },
    )
    .await;
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    assert_eq!(
        pending(&server.url(), KEY, "fault.retry").await,
        0,
        "a scheduled retry holds no pending entry"
    );

    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(rt.run_until(async move {
        let _ = rx.await;
    }));
    wait_until(
        "the retry ran in the new runtime",
        Duration::from_secs(20),
        || async { !handled.0.lock().unwrap().is_empty() },
    )
    .await;
    wait_until("the schedule is empty", Duration::from_secs(10), || async {
        common::zcard(&server.url(), RETRY_KEY).await == 0
    })
    .await;
    let _ = tx.send(());
    running.await.expect("task").expect("run");
    let seen = handled.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].1, 2, "the attempt count survived the crash");
    assert!(
        seen[0].2.duration_since(failed_at) >= Duration::from_millis(2500),
        "it ran at the due time, not before"
    );
}

const RETRY_KEY: &str = "opsconductor:{faults}:retry:fault.retry";

/// Waits for `child` to exit on its own (true) or kills it after `limit` (false).
async fn wait_for_exit(mut child: Child, limit: Duration) -> bool {
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .expect("watcher")
}

#[tokio::test]
async fn a_message_that_kills_its_consumer_every_time_is_dead_lettered_as_crashed() {
    common::init_tracing();
    let server = RedisServer::start();
    let publisher = Runtime::builder()
        .service("fault")
        .redis(server.url())
        .no_handlers()
        .build()
        .await
        .expect("builds");
    // The group must exist before publishing (handlers start at `latest`).
    let mut c = common::conn(&server.url()).await;
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(KEY)
        .arg("fault.crash")
        .arg("$")
        .arg("MKSTREAM")
        .query_async(&mut c)
        .await
        .expect("create group");
    let items: Vec<WorkItem> = (10..17).map(|n| WorkItem { n }).collect();
    publisher
        .publisher()
        .publish_all(&items)
        .await
        .expect("publish");

    // Run consumer processes until the poison item is dead-lettered; each dies on item 13.
    let dl = publisher.dead_letters();
    let mut crashes = 0;
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut all_lines = Vec::new();
    while dl
        .list(&DeadLetterFilter::stream("faults"))
        .await
        .expect("list")
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "not dead-lettered after {crashes} crashes"
        );
        let (child, lines) = spawn_child(&server.url(), "crash");
        if wait_for_exit(child, Duration::from_secs(8)).await {
            crashes += 1;
        }
        all_lines.extend(lines.lock().unwrap().drain(..));
    }
    let letters = dl
        .list(&DeadLetterFilter::stream("faults"))
        .await
        .expect("list");
    assert_eq!(letters.len(), 1);
    let l = &letters[0];
    assert_eq!(l.reason, DeadLetterReason::Crashed);
    assert_eq!(l.group, "fault.crash");
    assert_eq!(
        l.attempts, 3,
        "first try + 2 retries, each cut short by a crash"
    );
    // Its first attempt came from the read-ahead queue and aborted the process before it first
    // waited, so before its start could be counted (DESIGN.md, "Read ahead": delivery counts
    // follow the attempts started; a call that kills its process at once is the one window):
    // one process more than its attempts, then dead-lettered as `crashed`.
    assert_eq!(
        crashes, 4,
        "the poison item took down one process per counted attempt and one more: {all_lines:?}"
    );
    let item: WorkItem = rmp_serde::from_slice(&l.data).expect("payload");
    assert_eq!(item, WorkItem { n: 13 });
    for n in (10..17).filter(|n| *n != 13) {
        assert!(
            all_lines.contains(&format!("done {n}")),
            "item {n} was handled: {all_lines:?}"
        );
    }
    assert_eq!(pending(&server.url(), KEY, "fault.crash").await, 0);
}

#[tokio::test]
async fn sigterm_drains_and_exits_cleanly() {
    let server = RedisServer::start();
    let (mut child, lines) = spawn_child(&server.url(), "serve");
    wait_until("the child is ready", Duration::from_secs(30), || async {
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("ready "))
    })
    .await;
    let publisher = Runtime::builder()
        .service("fault")
        .redis(server.url())
        .no_handlers()
        .build()
        .await
        .expect("builds");
    let items: Vec<WorkItem> = (0..5).map(|n| WorkItem { n }).collect();
    publisher
        .publisher()
        .publish_all(&items)
        .await
        .expect("publish");
    wait_until("five handled", Duration::from_secs(30), || async {
        lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with("done "))
            .count()
            == 5
    })
    .await;
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let exited = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        None
    })
    .await
    .expect("watcher");
    let status = exited.expect("the child stopped within 15 s of SIGTERM");
    assert!(status.success(), "a graceful stop exits 0: {status}");
    assert_eq!(pending(&server.url(), KEY, "fault.serve").await, 0);
}
