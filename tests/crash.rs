//! Consumer processes killed with SIGKILL: what they held is reclaimed by another runtime.

mod common;
#[path = "common/fault_events.rs"]
mod fault_events;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{pending, wait_until};
use fault_events::{GROUP, WorkItem};
use opsc_events::prelude::*;
use opsc_events_testkit::RedisServer;

const KEY: &str = "opsconductor:{faults}:events";

#[derive(Clone, Default)]
struct Handled(Arc<Mutex<Vec<(u64, u32)>>>);

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
        .push((event.n, ctx.delivery_count()));
}

/// Starts `fault-consumer` and returns it with the lines it prints.
fn spawn_child(url: &str, mode: &str) -> (Child, Arc<Mutex<Vec<String>>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fault-consumer"))
        .arg(url)
        .arg(mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn fault-consumer");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let out = child.stdout.take().expect("stdout");
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    (child, lines)
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
    let ns: HashSet<u64> = seen.iter().map(|(n, _)| *n).collect();
    assert_eq!(ns, (0..50).collect::<HashSet<_>>());
    assert!(
        seen.iter().all(|(_, count)| *count >= 2),
        "the delivery count carries over the reclaim"
    );
}
