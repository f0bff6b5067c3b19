//! Stale groups in `health()` (issue: stale groups block trimming forever): a group left behind
//! by a renamed or removed handler, with entries waiting for it and no consumer active for longer
//! than `RuntimeBuilder::stale_group_after`, is listed in `HealthReport::stale_groups`; the
//! groups of the runtime's own handlers never are, and a stale group does not make the report
//! unhealthy. On a real `redis-server` and on the embedded broker (which records when each
//! consumer last read or claimed, as Redis does).

mod common;

use std::time::Duration;

use common::wait_until;
use opsc_events::health::{HealthReport, StaleGroup};
use opsc_events::prelude::*;
use opsc_events_testkit::RedisServer;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(name = "stale.tick", version = 1, stream = "stale_ticks")]
pub struct Tick {
    pub n: u32,
}

pub mod own {
    use super::*;

    /// The handler of the runtime under test.
    #[handler(stream = "stale_ticks", group = "stale.own")]
    pub async fn own(_event: Tick) -> Result<(), HandlerError> {
        Ok(())
    }
}

pub mod other {
    use super::*;

    /// A handler that runs for a while and is then "removed": its group stays behind.
    #[handler(stream = "stale_ticks", group = "stale.other")]
    pub async fn other(_event: Tick) -> Result<(), HandlerError> {
        Ok(())
    }
}

const STALE_AFTER: Duration = Duration::from_millis(200);
const LIMIT: Duration = Duration::from_secs(20);

fn listed<'a>(report: &'a HealthReport, group: &str) -> Option<&'a StaleGroup> {
    report.stale_groups.iter().find(|s| s.group == group)
}

async fn stale_groups_are_reported(redis: Option<&RedisServer>) {
    let broker = MemoryBroker::new();
    let builder = || {
        let b = Runtime::builder()
            .service("stale")
            .stale_group_after(STALE_AFTER)
            .shutdown_timeout(Duration::from_secs(5));
        match redis {
            Some(server) => b.redis(server.url()),
            None => b.memory_with(broker.clone()),
        }
    };
    let transport = if redis.is_some() { "redis" } else { "memory" };
    // Both groups exist from the start: every entry below is owed to both.
    let own = builder().only(|h| h.name() == "own").build().await.unwrap();
    let other = builder()
        .only(|h| h.name() == "other")
        .build()
        .await
        .unwrap();
    let probe = builder().no_handlers().build().await.unwrap();
    let health = own.health();
    let publisher = probe.publisher();
    let group = |name: &'static str| {
        let probe = &probe;
        async move {
            probe
                .stream_info("stale_ticks")
                .await
                .unwrap()
                .groups
                .into_iter()
                .find(|g| g.name == name)
                .unwrap_or_else(|| panic!("no group {name}"))
        }
    };

    // While `other` runs, its group is not stale, even once it has been idle for longer than
    // the limit: nothing waits for it.
    let running = common::spawn(other);
    for n in 0..3 {
        publisher.publish(&Tick { n }).await.unwrap();
    }
    wait_until("`other` handled everything", LIMIT, || async {
        let g = group("stale.other").await;
        g.lag == Some(0) && g.pending == 0
    })
    .await;
    wait_until("`other` idle past the limit", LIMIT, || async {
        group("stale.other").await.idle() > Some(STALE_AFTER)
    })
    .await;
    let report = health.check().await;
    assert!(
        listed(&report, "stale.other").is_none(),
        "{transport}: {report:?}"
    );

    // `other` is removed; new entries wait for its group, and nobody reads them.
    common::stop(running).await;
    for n in 3..5 {
        publisher.publish(&Tick { n }).await.unwrap();
    }
    wait_until("the left-behind group is reported", LIMIT, || async {
        listed(&health.check().await, "stale.other").is_some()
    })
    .await;
    let report = health.check().await;
    let stale = listed(&report, "stale.other").expect("still listed");
    assert_eq!(stale.stream, "stale_ticks");
    assert_eq!(stale.lag, Some(2), "{transport}: {stale:?}");
    assert_eq!(stale.pending, 0);
    assert!(
        stale.idle.is_some_and(|idle| idle > STALE_AFTER),
        "{transport}: {stale:?}"
    );

    // The runtime's own group is never listed, although by activity it looks stale (never
    // read, entries waiting: the runtime does not run yet).
    let own_group = group("stale.own").await;
    assert!(
        own_group.is_stale(STALE_AFTER),
        "{transport}: {own_group:?}"
    );
    assert!(
        listed(&report, "stale.own").is_none(),
        "{transport}: {report:?}"
    );
    assert_eq!(report.stale_groups.len(), 1, "{transport}: {report:?}");

    // A stale group is a warning for operators, not a failure of this process.
    let running = common::spawn(own);
    wait_until("the runtime is healthy", LIMIT, || async {
        let report = health.check().await;
        assert!(
            listed(&report, "stale.other").is_some(),
            "{transport}: {report:?}"
        );
        report.healthy
    })
    .await;
    common::stop(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_left_behind_group_is_reported_on_redis() {
    let server = RedisServer::start();
    stale_groups_are_reported(Some(&server)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_left_behind_group_is_reported_on_the_embedded_broker() {
    stale_groups_are_reported(None).await;
}

#[tokio::test]
async fn stale_group_after_must_not_be_zero() {
    let err = Runtime::builder()
        .service("stale")
        .memory()
        .no_handlers()
        .stale_group_after(Duration::ZERO)
        .build()
        .await
        .expect_err("zero is refused");
    assert!(err.to_string().contains("stale_group_after"), "{err}");
}
