//! (a) `kill -9` of consumer processes at random points, 20 cycles, while publishing continues.

use std::time::Duration;

use crate::harness::{Rig, SERIAL_SCENARIOS, WorkerConfig, between, handlers_of};
use crate::work::{SERIAL, STEADY, fate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_consumers_at_random_points_loses_nothing() {
    let _one = SERIAL_SCENARIOS.lock().await;
    let groups = [STEADY, SERIAL];
    let rig = Rig::start(false, &groups).await;
    // Handlers sleep up to 5 ms, so a kill finds calls in flight, finished but unacknowledged,
    // or being read; some kills hit a worker that is still starting.
    let config = WorkerConfig::new(&handlers_of(&groups)).env("FAULT_DELAY_MS", 5);
    rig.start_workers(3, &config).await;
    let feeder = rig.feed(10, Duration::from_millis(40), |_| fate::OK);
    for _ in 0..20 {
        tokio::time::sleep(between(
            &rig.rng,
            Duration::from_millis(150),
            Duration::from_millis(700),
        ))
        .await;
        rig.kill_random_worker();
    }
    let published = feeder.stop().await;
    let v = rig
        .settle("kill -9 of consumers, 20 cycles", Duration::from_secs(90))
        .await;
    rig.assert_exactly_one_place(&v).await;
    assert_eq!(v.killed, 20);
    assert_eq!(v.acked, published);
    for g in &v.groups {
        assert_eq!(
            g.dead, 0,
            "{}: nothing here should be dead-lettered",
            g.group
        );
        assert_eq!(
            g.unexplained, 0,
            "{}: every duplicate comes from a killed process",
            g.group
        );
    }
}
