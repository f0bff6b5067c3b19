//! Priority lanes (issue 16): under a backlog of low-priority events, how long a critical event
//! waits from its publish to its handler's start; and what lanes cost when a stream does not use
//! them, or has them without traffic (end to end against the hand-written consume loop, same run).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opsc_events::Priority;
use opsc_events::prelude::*;
use redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};

use crate::events::{LaneFlowing, body, e2e_lanes, now_ns};
use crate::framework::{self, Done, Running, del, key};
use crate::report::{Sample, sample};

const STREAM: &str = "bench_prio";
/// `seq` of the critical probes starts here; below it, the backlog.
const PROBE: u64 = 1 << 40;

/// The backlog's events (low by type) and, published with `PublishOptions::priority`, the
/// critical probes.
#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "bench_prio", priority = "low")]
pub struct Chore {
    pub seq: u64,
    pub sent_ns: u64,
    pub body: String,
}

/// Probe latencies (ns), backlog calls.
pub static PROBES: Mutex<Vec<u64>> = Mutex::new(Vec::new());
pub static BACKLOG_CALLS: AtomicU64 = AtomicU64::new(0);
static PROBED: tokio::sync::Notify = tokio::sync::Notify::const_new();

pub mod lanes {
    use super::*;

    /// A backlog event takes about a millisecond (an I/O-bound handler), 8 at a time; a probe
    /// records how long it waited and returns at once.
    #[handler(stream = "bench_prio", concurrency = 8, start = "earliest")]
    pub async fn chores(event: Chore) {
        if event.seq >= PROBE {
            let waited = now_ns().saturating_sub(event.sent_ns);
            PROBES.lock().expect("not poisoned").push(waited);
            PROBED.notify_one();
            return;
        }
        BACKLOG_CALLS.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

pub struct PriorityRun {
    /// Probe latencies, ns, sorted.
    pub probes: Vec<u64>,
    pub backlog: usize,
    /// Backlog events handled while the probes ran, and how many were left after.
    pub backlog_handled: u64,
    pub backlog_left: u64,
    /// How long the backlog would keep a normal (FIFO) event waiting at the rate measured.
    pub fifo_wait_s: f64,
}

fn lane_keys(stream: &str) -> Vec<String> {
    let mut keys = vec![
        key(stream),
        format!("opsconductor:{{{stream}}}:lanes"),
        format!("opsconductor:{{{stream}}}:dead_letter"),
    ];
    for lane in ["low", "high", "critical"] {
        keys.push(format!("opsconductor:{{{stream}}}:lane:{lane}:events"));
    }
    keys
}

/// A backlog of `backlog` low events, then `probes` critical ones, one at a time, each once the
/// previous one reached its handler (10 ms apart).
pub async fn critical_latency(
    url: &str,
    conn: &mut MultiplexedConnection,
    backlog: usize,
    probes: usize,
) -> Result<PriorityRun, String> {
    del(conn, &lane_keys(STREAM)).await;
    PROBES.lock().expect("not poisoned").clear();
    BACKLOG_CALLS.store(0, Ordering::Relaxed);
    let publisher_rt = framework::runtime(url, None, None).await;
    let p = publisher_rt.publisher();
    let padding = body(100);
    let chores: Vec<Chore> = (0..backlog as u64)
        .map(|seq| Chore {
            seq,
            sent_ns: 0,
            body: padding.clone(),
        })
        .collect();
    for chunk in chores.chunks(500) {
        p.publish_all(chunk).await.map_err(|e| e.to_string())?;
    }
    drop(chores);
    let critical = PublishOptions::new().priority(Priority::Critical);
    // One probe before the handler's runtime is built: the lane is found at build.
    p.publish_with(
        &Chore {
            seq: PROBE - 1,
            sent_ns: 0,
            body: padding.clone(),
        },
        &critical,
    )
    .await
    .map_err(|e| e.to_string())?;
    let rt = framework::runtime(url, Some("priority::lanes"), None).await;
    let started = Instant::now();
    let running = Running::spawn(rt);
    // Warmed up: the backlog is flowing.
    while BACKLOG_CALLS.load(Ordering::Relaxed) < 100 {
        if started.elapsed() > Duration::from_secs(60) {
            return Err("the backlog did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let handled_before = BACKLOG_CALLS.load(Ordering::Relaxed);
    let sampling = Instant::now();
    for i in 0..probes as u64 {
        let probed = PROBED.notified();
        p.publish_with(
            &Chore {
                seq: PROBE + i,
                sent_ns: now_ns(),
                body: padding.clone(),
            },
            &critical,
        )
        .await
        .map_err(|e| e.to_string())?;
        if tokio::time::timeout(Duration::from_secs(30), probed)
            .await
            .is_err()
        {
            return Err(format!("probe {i} was not handled within 30 s"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sampled_s = sampling.elapsed().as_secs_f64();
    let handled = BACKLOG_CALLS.load(Ordering::Relaxed);
    running.stop().await;
    del(conn, &lane_keys(STREAM)).await;
    let mut probes = std::mem::take(&mut *PROBES.lock().expect("not poisoned"));
    probes.sort_unstable();
    let rate = (handled - handled_before) as f64 / sampled_s;
    Ok(PriorityRun {
        probes,
        backlog,
        backlog_handled: handled - handled_before,
        backlog_left: (backlog as u64).saturating_sub(handled),
        fifo_wait_s: (backlog as u64).saturating_sub(handled) as f64 / rate.max(1.0),
    })
}

/// The end-to-end figure (concurrency 64, no-op handler, `n` entries of ~100 B) on a stream with
/// lanes in use but empty (its marker names `low`, so every handler reads two lanes through its
/// priority gate), measured like `e2e`'s figure.
pub async fn unused_lanes_e2e(
    url: &str,
    conn: &mut MultiplexedConnection,
    publisher: &Publisher,
    n: usize,
) -> Sample {
    let stream = "bench_e2e_lanes";
    let k = key(stream);
    let events = Arc::new(LaneFlowing::same(n, 100));
    framework::publish_batched(publisher, &events, 500).await;
    let _: i64 = redis::cmd("SADD")
        .arg(format!("opsconductor:{{{stream}}}:lanes"))
        .arg("low")
        .query_async(conn)
        .await
        .expect("SADD");
    let s = sample(
        n,
        framework::consume(
            url,
            conn,
            stream,
            "::e2e_lanes",
            "bench.noop_lanes",
            &e2e_lanes::CALLS,
            n,
            Done::Acked,
        ),
    )
    .await;
    let mut keys = lane_keys(stream);
    keys.push(k);
    del(conn, &keys).await;
    s
}
