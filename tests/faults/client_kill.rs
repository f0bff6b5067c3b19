//! (c) `CLIENT KILL TYPE normal` every 200 ms for 10 s: every connection of every worker and of
//! the publisher is cut again and again.

use std::time::{Duration, Instant};

use crate::harness::{Rig, SERIAL_SCENARIOS, WorkerConfig, handlers_of};
use crate::work::{SERIAL, STEADY, fate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_kill_every_200ms_for_10s() {
    let _one = SERIAL_SCENARIOS.lock().await;
    let groups = [STEADY, SERIAL];
    let rig = Rig::start(false, &groups).await;
    let config = WorkerConfig::new(&handlers_of(&groups)).env("FAULT_DELAY_MS", 2);
    rig.start_workers(3, &config).await;
    let feeder = rig.feed(10, Duration::from_millis(40), |_| fate::OK);
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    while start.elapsed() < Duration::from_secs(10) {
        tick.tick().await;
        rig.client_kill().await;
    }
    let published = feeder.stop().await;
    let v = rig
        .settle(
            "CLIENT KILL TYPE normal every 200 ms for 10 s",
            Duration::from_secs(90),
        )
        .await;
    rig.assert_exactly_one_place(&v).await;
    assert_eq!(v.acked, published);
    assert!(rig.ledger.fault_count("CLIENT KILL") >= 40);
    for g in &v.groups {
        assert_eq!(
            g.dead, 0,
            "{}: nothing here should be dead-lettered",
            g.group
        );
    }
}
