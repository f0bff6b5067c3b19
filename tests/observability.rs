//! Observability (SPEC §9): the metrics a runtime records through the `metrics` facade, and
//! `Runtime::health()` following a consumer through a Redis outage.
//!
//! One `DebuggingRecorder` is installed for the whole binary; its snapshots reset what they
//! read, so every test reads through one accumulator (`Recorded`) and uses its own streams.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{spawn, stop, wait_until};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use opsc_events::health::ConsumerState;
use opsc_events::prelude::*;
use opsc_events_testkit::RedisServer;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// Everything recorded so far, by `name{label=value,...}` (labels sorted).
#[derive(Default)]
struct Recorded {
    counters: HashMap<String, u64>,
    samples: HashMap<String, Vec<f64>>,
    /// The highest value each gauge was seen at.
    gauge_max: HashMap<String, f64>,
}

fn recorded() -> std::sync::MutexGuard<'static, Recorded> {
    static SNAP: OnceLock<(Snapshotter, Mutex<Recorded>)> = OnceLock::new();
    let (snapshotter, acc) = SNAP.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder.install().expect("the only metrics recorder");
        (snapshotter, Mutex::new(Recorded::default()))
    });
    let mut acc = acc.lock().unwrap_or_else(|e| e.into_inner());
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        match value {
            DebugValue::Counter(n) => *acc.counters.entry(name).or_default() += n,
            DebugValue::Histogram(xs) => acc
                .samples
                .entry(name)
                .or_default()
                .extend(xs.into_iter().map(|x| x.into_inner())),
            DebugValue::Gauge(g) => {
                let g = g.into_inner();
                let max = acc.gauge_max.entry(name).or_insert(f64::MIN);
                *max = max.max(g);
            }
        }
    }
    acc
}

fn counter(name: &str) -> u64 {
    recorded().counters.get(name).copied().unwrap_or(0)
}

fn samples(name: &str) -> Vec<f64> {
    recorded().samples.get(name).cloned().unwrap_or_default()
}

fn gauge_max(name: &str) -> Option<f64> {
    recorded().gauge_max.get(name).copied()
}

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "obs_metrics")]
pub struct Measured {
    pub n: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "obs_lag")]
pub struct Queued {
    pub n: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "obs_health")]
pub struct Beat {
    pub n: u64,
}

pub mod measured {
    use super::*;

    /// Even numbers succeed after a short sleep, odd ones fail permanently (dead-lettered).
    #[handler(stream = "obs_metrics", group = "obs.measured", retries = 0)]
    pub async fn measure(event: Measured) -> Result<(), HandlerError> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if event.n.is_multiple_of(2) {
            Ok(())
        } else {
            Err(HandlerError::permanent("odd"))
        }
    }
}

/// Holds the lag test's handler until opened.
#[derive(Clone)]
pub struct Gate(Arc<watch::Sender<bool>>);

pub mod queued {
    use super::*;

    #[handler(stream = "obs_lag", group = "obs.queued", concurrency = 1)]
    pub async fn hold(_event: Queued, State(gate): State<Gate>) {
        let _ = gate.0.subscribe().wait_for(|open| *open).await;
    }
}

pub mod beat {
    use super::*;

    #[handler(stream = "obs_health", group = "obs.beat")]
    pub async fn beat(_event: Beat) {}
}

#[tokio::test]
async fn publishes_outcomes_and_durations_are_recorded() {
    drop(recorded()); // installed before the runtime registers its metrics
    let rt = Runtime::builder()
        .service("obs")
        .memory()
        .trim_interval(Duration::from_millis(100))
        .only(|h| h.module_path().ends_with("::measured"))
        .build()
        .await
        .unwrap();
    let publisher = rt.publisher();
    let running = spawn(rt);

    for n in 0..4 {
        publisher.publish(&Measured { n }).await.unwrap();
    }
    let batch: Vec<Measured> = (4..10).map(|n| Measured { n }).collect();
    publisher.publish_all(&batch).await.unwrap();

    let labels = "group=obs.measured,stream=obs_metrics";
    wait_until("10 handler durations", Duration::from_secs(20), || async {
        samples(&format!("opsc_events_handler_duration_seconds{{{labels}}}")).len() == 10
    })
    .await;
    wait_until(
        "5 dead letters in the gauge",
        Duration::from_secs(20),
        || async { gauge_max("opsc_events_dead_letters{stream=obs_metrics}") == Some(5.0) },
    )
    .await;
    stop(running).await;

    assert_eq!(
        counter("opsc_events_published_total{stream=obs_metrics}"),
        10
    );
    assert_eq!(
        counter(&format!("opsc_events_handled_total{{{labels}}}")),
        5
    );
    assert_eq!(
        counter(
            "opsc_events_dead_lettered_total{group=obs.measured,reason=permanent,stream=obs_metrics}"
        ),
        5
    );
    let durations = samples(&format!("opsc_events_handler_duration_seconds{{{labels}}}"));
    assert!(
        durations.iter().all(|d| (0.015..10.0).contains(d)),
        "every call slept 20 ms: {durations:?}"
    );
}

#[tokio::test]
async fn the_lag_gauge_shows_the_backlog() {
    drop(recorded());
    let gate = Gate(Arc::new(watch::channel(false).0));
    let rt = Runtime::builder()
        .service("obs")
        .memory()
        .state(gate.clone())
        .trim_interval(Duration::from_millis(100))
        .only(|h| h.module_path().ends_with("::queued"))
        .build()
        .await
        .unwrap();
    let publisher = rt.publisher();
    let running = spawn(rt);
    let batch: Vec<Queued> = (0..8).map(|n| Queued { n }).collect();
    publisher.publish_all(&batch).await.unwrap();

    // One call in flight (concurrency 1) and one more entry read ahead (no call time is known
    // yet, so the read-ahead queue holds one entry per slot): 2 pending, 6 not yet delivered.
    // (The gauges are read as the highest value seen: the recorder drains them.)
    let lag = "opsc_events_lag{group=obs.queued,stream=obs_lag}";
    let pending = "opsc_events_pending{group=obs.queued,stream=obs_lag}";
    wait_until("the gauges at 6 and 2", Duration::from_secs(20), || async {
        gauge_max(pending) == Some(2.0) && gauge_max(lag).is_some_and(|l| l >= 6.0)
    })
    .await;
    assert!(
        gauge_max(lag).is_some_and(|l| l <= 7.0),
        "the lag gauge never showed undelivered entries that were delivered"
    );
    gate.0.send_replace(true);
    stop(running).await;
}

#[tokio::test]
async fn health_follows_the_consumers_through_a_redis_outage() {
    let mut server = RedisServer::start();
    let rt = Runtime::builder()
        .service("obs")
        .redis(server.url())
        .connect_timeout(Duration::from_secs(1))
        .response_timeout(Duration::from_secs(1))
        .shutdown_timeout(Duration::from_secs(5))
        .only(|h| h.module_path().ends_with("::beat"))
        .build()
        .await
        .unwrap();
    let health = rt.health();

    // Built, not running: the broker answers, the consumer has not started.
    let report = health.check().await;
    assert!(!report.healthy, "{report:?}");
    assert_eq!(report.transport, "redis");
    assert!(report.broker.is_ok(), "{report:?}");
    assert_eq!(report.consumers.len(), 1);
    assert_eq!(report.consumers[0].group, "obs.beat");
    assert_eq!(report.consumers[0].state, ConsumerState::NotStarted);

    let running = spawn(rt);
    let healthy = || async { health.check().await.healthy };
    wait_until("healthy once running", Duration::from_secs(20), healthy).await;
    let report = health.check().await;
    assert_eq!(report.consumers[0].state, ConsumerState::Reading);
    assert_eq!(report.consumers[0].lag, Some(0));
    assert_eq!(report.consumers[0].pending, Some(0));

    server.kill();
    wait_until(
        "unhealthy, with the broker and the consumer failing",
        Duration::from_secs(20),
        || async {
            let r = health.check().await;
            !r.healthy
                && r.broker.is_err()
                && r.consumers[0].state == ConsumerState::Failing
                && r.consumers[0].last_error.is_some()
        },
    )
    .await;
    // The check itself stays bounded while Redis is down.
    let started = std::time::Instant::now();
    let report = health.check().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the check took {:?}: {report:?}",
        started.elapsed()
    );

    server.restart();
    wait_until(
        "healthy again after the restart",
        Duration::from_secs(30),
        healthy,
    )
    .await;
    let report = health.check().await;
    assert_eq!(report.consumers[0].failures, 0);

    stop(running).await;
    let report = health.check().await;
    assert!(!report.healthy);
    assert_eq!(report.consumers[0].state, ConsumerState::Stopped);
}

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "obs_observed")]
pub struct Observed {
    pub n: u64,
}

pub mod observed {
    use super::*;

    /// Calls so far.
    pub static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

    /// Zero fails permanently (dead-lettered); the others succeed.
    #[handler(stream = "obs_observed", group = "obs.observed", retries = 0)]
    pub async fn observed(event: Observed) -> Result<(), HandlerError> {
        CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if event.n == 0 {
            Err(HandlerError::permanent("zero"))
        } else {
            Ok(())
        }
    }
}

/// An observer that panics on every call (user code) must not stop settlement: every success
/// is still acknowledged and the failure still dead-lettered, on Redis as on the embedded
/// broker, and each panic is counted.
#[tokio::test]
async fn a_panicking_observer_does_not_stop_settlement() {
    let server = RedisServer::start();
    let broker = MemoryBroker::new();
    let panics = "opsc_events_observer_panics_total{group=obs.observed,stream=obs_observed}";
    for redis in [true, false] {
        observed::CALLS.store(0, std::sync::atomic::Ordering::SeqCst);
        let before = counter(panics);
        let builder = || {
            let b = Runtime::builder().service("obs");
            if redis {
                b.redis(server.url())
            } else {
                b.memory_with(broker.clone())
            }
        };
        let rt = builder()
            .observer(|o: &opsc_events::observe::Observation| {
                panic!("observer bug on {}", o.message_id)
            })
            .only(|h| h.module_path().ends_with("::observed"))
            .build()
            .await
            .unwrap();
        let check = builder().no_handlers().build().await.unwrap();
        let publisher = rt.publisher();
        let running = spawn(rt);
        let events: Vec<Observed> = (0..20).map(|n| Observed { n }).collect();
        publisher.publish_all(&events).await.unwrap();
        wait_until(
            "every call settled despite the observer",
            Duration::from_secs(20),
            || async {
                let info = check.stream_info("obs_observed").await.unwrap();
                let letters = check
                    .dead_letters()
                    .list(&DeadLetterFilter::stream("obs_observed"))
                    .await
                    .unwrap();
                observed::CALLS.load(std::sync::atomic::Ordering::SeqCst) == 20
                    && letters.len() == 1
                    && info
                        .groups
                        .iter()
                        .any(|g| g.name == "obs.observed" && g.pending == 0 && g.lag == Some(0))
            },
        )
        .await;
        stop(running).await;
        assert!(
            counter(panics) >= before + 20,
            "every observer panic is counted"
        );
    }
}
