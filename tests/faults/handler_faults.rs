//! (d) Handlers that panic, hang past their timeout or fail permanently on a fraction of the
//! messages, and some that fail once: the failing ones end in the dead-letter stream with the
//! right reason and attempt count, everything else is handled — exactly once, as no process dies.

use std::time::Duration;

use crate::harness::{Rig, SERIAL_SCENARIOS, WorkerConfig, handlers_of};
use crate::work::{Job, MAX_ATTEMPTS, SERIAL, STEADY, fate};

/// 200 jobs: 4 hang, 20 panic, 20 fail permanently, 40 fail once, the rest succeed.
fn fate_of(seq: u64) -> u8 {
    match seq % 50 {
        7 => fate::HANG,
        3 | 13 | 33 | 43 | 48 => fate::PANIC,
        5 | 15 | 25 | 35 | 45 => fate::PERMANENT,
        n if n % 5 == 1 => fate::TRANSIENT,
        _ => fate::OK,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_hangs_and_permanent_failures_are_dead_lettered_with_their_reason() {
    let _one = SERIAL_SCENARIOS.lock().await;
    let groups = [STEADY, SERIAL];
    let rig = Rig::start(false, &groups).await;
    rig.start_workers(2, &WorkerConfig::new(&handlers_of(&groups)))
        .await;
    let jobs: Vec<Job> = (0..200)
        .map(|seq| Job {
            seq,
            fate: fate_of(seq),
        })
        .collect();
    for chunk in jobs.chunks(20) {
        rig.publish_until_acked(chunk, Duration::from_secs(10))
            .await;
    }
    let v = rig
        .settle(
            "handler panics, hangs, permanent failures",
            Duration::from_secs(90),
        )
        .await;
    rig.assert_exactly_one_place(&v).await;
    let count = |f: u8| (0..200).filter(|s| fate_of(*s) == f).count() as u64;
    for g in &v.groups {
        assert_eq!(
            g.duplicates, 0,
            "{}: no process died, so no duplicate",
            g.group
        );
        assert_eq!(
            g.handled,
            count(fate::OK) + count(fate::TRANSIENT),
            "{}",
            g.group
        );
        assert_eq!(
            g.dead_by_reason.get("timeout"),
            Some(&count(fate::HANG)),
            "{}",
            g.group
        );
        assert_eq!(
            g.dead_by_reason.get("panic"),
            Some(&count(fate::PANIC)),
            "{}",
            g.group
        );
        assert_eq!(
            g.dead_by_reason.get("permanent"),
            Some(&count(fate::PERMANENT)),
            "{}",
            g.group
        );
    }
    for l in rig.dead_letters().await {
        let job: Job = rmp_serde::from_slice(&l.data).expect("the original payload is kept");
        let expected = if job.fate == fate::PERMANENT {
            1
        } else {
            MAX_ATTEMPTS
        };
        assert_eq!(l.attempts, expected, "{l:?}");
        assert!(!l.error.is_empty(), "{l:?}");
        if job.fate == fate::PANIC {
            assert!(
                l.error.contains(&format!("job {} panics", job.seq)),
                "{}",
                l.error
            );
        }
    }
}
