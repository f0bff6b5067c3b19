//! (h) Delayed events scheduled across `kill -9` of every runtime (each holding or waiting for
//! the move lease) and a Redis restart with AOF: each is appended to the stream exactly once,
//! none is lost, and every group handles each.

use std::collections::BTreeMap;
use std::time::Duration;

use opsc_events::MessageId;
use opsc_events::PublishOptions;

use crate::harness::{Rig, SERIAL_SCENARIOS, WorkerConfig, between, handlers_of};
use crate::work::{Job, SERIAL, STEADY, STREAM, fate};

/// Delayed jobs start at this sequence number (ordinary jobs below).
const FIRST: u64 = 100_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_events_are_moved_exactly_once_across_kill9_and_a_redis_restart() {
    let _one = SERIAL_SCENARIOS.lock().await;
    let groups = [STEADY, SERIAL];
    let rig = Rig::start(true, &groups).await;
    let config = WorkerConfig::new(&handlers_of(&groups)).env("FAULT_DELAY_MS", 2);
    let slots = rig.start_workers(3, &config).await;
    let publisher = rig.admin.publisher();
    // 400 delayed jobs due 2 to 9 s from now, each with a chosen event id so that a retried
    // schedule after an unknown outcome is refused as a duplicate rather than scheduled twice
    // (every delay is long enough that the first cannot have been moved yet).
    let mut due_last = Duration::ZERO;
    for seq in FIRST..FIRST + 400 {
        let job = Job {
            seq,
            fate: fate::OK,
        };
        rig.ledger.planned(&job);
        let delay = between(&rig.rng, Duration::from_secs(2), Duration::from_secs(9));
        due_last = due_last.max(delay);
        let opts = PublishOptions::new().event_id(uuid::Uuid::now_v7());
        loop {
            match publisher.publish_after_with(&job, delay, &opts).await {
                Ok(_) | Err(opsc_events::Error::AlreadyScheduled { .. }) => break,
                Err(_) => rig.ledger.fault("schedule failed (retried)"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let feeder = rig.feed(10, Duration::from_millis(50), |_| fate::OK);
    // Every runtime killed twice while events come due, and Redis killed and restarted once.
    for round in 0..2 {
        tokio::time::sleep(between(
            &rig.rng,
            Duration::from_millis(1000),
            Duration::from_millis(2500),
        ))
        .await;
        for &slot in &slots {
            rig.workers().kill9(slot);
        }
        if round == 0 {
            rig.restart_redis(between(
                &rig.rng,
                Duration::from_millis(200),
                Duration::from_millis(1000),
            ))
            .await;
        }
    }
    let published = feeder.stop().await;
    // Bounded: every delayed job is in the stream and the schedule is empty.
    let schedule = format!("opsconductor:{{{STREAM}}}:delayed");
    rig.wait(
        "the schedule empty",
        due_last + Duration::from_secs(60),
        || async { crate::common::zcard(&rig.url, &schedule).await == 0 },
    )
    .await;
    let mut seen: BTreeMap<u64, Vec<MessageId>> = BTreeMap::new();
    let mut after = None;
    loop {
        let page = rig.admin.read(STREAM, after, 1000).await.expect("read");
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for e in &page {
            let Ok(env) = e.envelope() else { continue };
            let Ok(job) = rmp_serde::from_slice::<Job>(&env.data) else {
                continue;
            };
            if job.seq >= FIRST {
                seen.entry(job.seq).or_default().push(e.id);
            }
        }
    }
    let twice: Vec<_> = seen.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(twice.is_empty(), "moved more than once: {twice:?}");
    let lost: Vec<u64> = (FIRST..FIRST + 400)
        .filter(|s| !seen.contains_key(s))
        .collect();
    assert!(lost.is_empty(), "never moved: {lost:?}");
    for (seq, ids) in &seen {
        rig.ledger.published(*seq, ids[0]);
    }
    let v = rig
        .settle(
            "delayed events across kill -9 and a Redis restart",
            Duration::from_secs(90),
        )
        .await;
    rig.assert_exactly_one_place(&v).await;
    assert_eq!(v.acked, published + 400);
    assert_eq!(v.faults.get("redis kill -9 + restart"), Some(&1));
    for g in &v.groups {
        assert_eq!(g.dead, 0, "{}: nothing here is dead-lettered", g.group);
    }
}
