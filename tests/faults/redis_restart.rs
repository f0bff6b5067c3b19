//! (b) redis-server killed and restarted with AOF `appendfsync always`, 3 times under load.

use std::time::Duration;

use crate::harness::{Rig, SERIAL_SCENARIOS, WorkerConfig, between, handlers_of};
use crate::work::{SERIAL, STEADY, fate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_with_aof_three_times_under_load() {
    let _one = SERIAL_SCENARIOS.lock().await;
    let groups = [STEADY, SERIAL];
    let rig = Rig::start(true, &groups).await;
    let config = WorkerConfig::new(&handlers_of(&groups)).env("FAULT_DELAY_MS", 2);
    rig.start_workers(3, &config).await;
    let feeder = rig.feed(10, Duration::from_millis(40), |_| fate::OK);
    for _ in 0..3 {
        tokio::time::sleep(between(
            &rig.rng,
            Duration::from_millis(1000),
            Duration::from_millis(2000),
        ))
        .await;
        let down = between(
            &rig.rng,
            Duration::from_millis(200),
            Duration::from_millis(1500),
        );
        rig.restart_redis(down).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let published = feeder.stop().await;
    let v = rig
        .settle("redis kill -9 + AOF restart x3", Duration::from_secs(90))
        .await;
    rig.assert_exactly_one_place(&v).await;
    assert_eq!(v.acked, published);
    assert_eq!(v.faults.get("redis kill -9 + restart"), Some(&3));
    for g in &v.groups {
        assert_eq!(
            g.dead, 0,
            "{}: nothing here should be dead-lettered",
            g.group
        );
    }
}
