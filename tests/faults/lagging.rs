//! (f) A group lagging 100k messages behind while trimming runs: nothing it still needs is
//! trimmed, it catches up completely, and the stream is trimmed once every group is done.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use opsc_events::prelude::*;

use crate::common;
use crate::harness::{Rig, SERIAL_SCENARIOS, WorkerConfig};
use crate::work::{Job, KEY, LAGGING, STEADY, fate};

/// How far the lagging group falls behind.
const BACKLOG: u64 = 100_000;
/// Published while it catches up.
const MORE: u64 = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_100k_behind_while_trimming_runs_catches_up_completely() {
    let _one = SERIAL_SCENARIOS.lock().await;
    let groups = [STEADY, LAGGING];
    let rig = Rig::start(false, &groups).await;
    // The workers trim every 200 ms, and so does the harness, as fast as it can.
    let trimmed = Arc::new(AtomicU64::new(0));
    let trimming = Arc::new(AtomicBool::new(true));
    let trimmer = {
        let (trimmed, on) = (trimmed.clone(), trimming.clone());
        let admin = Runtime::builder()
            .service("faults")
            .redis(rig.url.clone())
            .no_handlers()
            .stream_limits("ledger", StreamLimits::new())
            .build()
            .await
            .expect("trimming runtime");
        tokio::spawn(async move {
            while on.load(Ordering::SeqCst) {
                if let Ok(reports) = admin.trim_now().await {
                    let n: u64 = reports.iter().map(|r| r.trimmed + r.capped).sum();
                    trimmed.fetch_add(n, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let steady = WorkerConfig::new("steady").env("FAULT_TRIM_MS", 200);
    rig.start_workers(2, &steady).await;
    let jobs: Vec<Job> = (0..BACKLOG)
        .map(|seq| Job {
            seq,
            fate: fate::OK,
        })
        .collect();
    for chunk in jobs.chunks(1000) {
        rig.publish_until_acked(chunk, Duration::from_secs(30))
            .await;
    }
    rig.wait(
        "the fast group handled the backlog",
        Duration::from_secs(180),
        || async { rig.ledger.handled_entries(STEADY) as u64 >= BACKLOG },
    )
    .await;
    assert_eq!(
        trimmed.load(Ordering::SeqCst),
        0,
        "the lagging group still needs every entry"
    );
    assert_eq!(common::xlen(&rig.url, KEY).await, BACKLOG);

    // The lagging group starts while publishing and trimming go on.
    rig.start_workers(2, &WorkerConfig::new("lagging").env("FAULT_TRIM_MS", 200))
        .await;
    let more: Vec<Job> = (BACKLOG..BACKLOG + MORE)
        .map(|seq| Job {
            seq,
            fate: fate::OK,
        })
        .collect();
    for chunk in more.chunks(500) {
        rig.publish_until_acked(chunk, Duration::from_secs(30))
            .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let v = rig
        .settle(
            "a group 100k behind while trimming",
            Duration::from_secs(240),
        )
        .await;
    trimming.store(false, Ordering::SeqCst);
    trimmer.await.expect("trimmer");
    rig.assert_exactly_one_place(&v).await;
    for g in &v.groups {
        assert_eq!(g.handled, BACKLOG + MORE, "{}", g.group);
        assert_eq!(g.duplicates, 0, "{}", g.group);
    }
    assert!(
        trimmed.load(Ordering::SeqCst) > 0,
        "trimming ran while the lagging group caught up"
    );
    let reports = rig.admin.trim_now().await.expect("trim");
    assert_eq!(reports[0].capped_undelivered, 0);
    assert_eq!(
        common::xlen(&rig.url, KEY).await,
        0,
        "once both groups are done, everything is trimmed"
    );
}
