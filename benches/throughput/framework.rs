//! The framework's scenarios: publishing, end to end, latency at a fixed rate, retries and dead
//! letters. Each returns its figure; runtimes are built before the clock starts and stopped
//! after it stops.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opsc_events::prelude::*;
use redis::Value;
use redis::aio::MultiplexedConnection;
use tokio::sync::oneshot;

use crate::events::{Latencies, Probe, now_ns};

/// How long any one scenario may take before the benchmark gives up on it.
const LIMIT: Duration = Duration::from_secs(300);

/// `opsconductor:{<stream>}:events`.
pub fn key(stream: &str) -> String {
    format!("opsconductor:{{{stream}}}:events")
}

/// A runtime of service `bench` on `url` running the handlers of module `module` (none when
/// `None`).
pub async fn runtime(url: &str, module: Option<&'static str>, lat: Option<Latencies>) -> Runtime {
    let mut b = Runtime::builder()
        .service("bench")
        .redis(url)
        .shutdown_timeout(Duration::from_secs(10));
    b = match module {
        None => b.no_handlers(),
        Some(m) => b.only(move |h| h.module_path().ends_with(m)),
    };
    if let Some(lat) = lat {
        b = b.state(lat);
    }
    b.build().await.expect("the benchmark runtime builds")
}

/// A runtime running in the background until the sender fires.
pub struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<opsc_events::Result<()>>,
}

impl Running {
    pub fn spawn(rt: Runtime) -> Running {
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(rt.run_until(async move {
            let _ = rx.await;
        }));
        Running { stop, task }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task
            .await
            .expect("runtime task")
            .expect("runtime result");
    }
}

/// Deletes keys (streams, with their groups; dead letters; retry schedules).
pub async fn del<K: AsRef<str>>(conn: &mut MultiplexedConnection, keys: &[K]) {
    let mut cmd = redis::cmd("DEL");
    for k in keys {
        cmd.arg(k.as_ref());
    }
    cmd.query_async::<i64>(conn).await.expect("DEL");
}

/// Publishes `events` with `publish_all`, `batch` at a time; msg/s.
pub async fn publish_batched<E: Event>(p: &Publisher, events: &[E], batch: usize) -> f64 {
    let start = Instant::now();
    for chunk in events.chunks(batch) {
        p.publish_all(chunk).await.expect("publish_all");
    }
    events.len() as f64 / start.elapsed().as_secs_f64()
}

/// Publishes `events` one at a time, each awaited; msg/s.
pub async fn publish_sequential<E: Event>(p: &Publisher, events: &[E]) -> f64 {
    let start = Instant::now();
    for e in events {
        p.publish(e).await.expect("publish");
    }
    events.len() as f64 / start.elapsed().as_secs_f64()
}

/// Publishes `events` from `tasks` concurrent tasks, each awaiting its publishes in turn; msg/s.
pub async fn publish_concurrent<E: Event + Clone>(
    p: &Publisher,
    events: Arc<Vec<E>>,
    tasks: usize,
) -> f64 {
    let per = events.len().div_ceil(tasks);
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let (p, events) = (p.clone(), events.clone());
        set.spawn(async move {
            let end = ((t + 1) * per).min(events.len());
            for e in &events[(t * per).min(end)..end] {
                p.publish(e).await.expect("publish");
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("publishing task");
    }
    events.len() as f64 / start.elapsed().as_secs_f64()
}

/// The fields of `group` in `XINFO GROUPS key` (empty when absent).
async fn group_info(
    conn: &mut MultiplexedConnection,
    key: &str,
    group: &str,
) -> HashMap<String, Value> {
    let groups: Vec<HashMap<String, Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(key)
        .query_async(conn)
        .await
        .unwrap_or_default();
    groups
        .into_iter()
        .find(|g| matches!(g.get("name"), Some(Value::BulkString(n)) if n == group.as_bytes()))
        .unwrap_or_default()
}

fn int(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Int(i)) => *i,
        _ => -1,
    }
}

async fn count(conn: &mut MultiplexedConnection, command: &str, key: &str) -> i64 {
    redis::cmd(command)
        .arg(key)
        .query_async::<i64>(conn)
        .await
        .unwrap_or(-1)
}

/// What must hold for a consuming scenario to be over.
pub enum Done<'a> {
    /// Every entry read and acknowledged.
    Acked,
    /// ... and the retry schedule at this key is empty.
    RetriesEmpty(&'a str),
    /// ... and the dead-letter stream at this key holds `n` letters.
    DeadLetters(&'a str),
}

/// Waits until the handler was called `n` times (watching `calls`, so that Redis is not polled
/// while the framework works), then polls every millisecond until the group has read `n`
/// entries, none is pending and `done` holds; returns the time taken since `start`.
pub async fn wait_done(
    conn: &mut MultiplexedConnection,
    key: &str,
    group: &str,
    (calls, n): (&AtomicU64, usize),
    done: Done<'_>,
    start: Instant,
) -> Duration {
    while calls.load(Ordering::Relaxed) < n as u64 {
        assert!(
            start.elapsed() < LIMIT,
            "group {group} on {key} did not call its handler {n} times within {LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let n = n as i64;
    loop {
        assert!(
            start.elapsed() < LIMIT,
            "group {group} on {key} did not finish {n} entries within {LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
        let info = group_info(conn, key, group).await;
        if int(info.get("entries-read")) < n || int(info.get("pending")) != 0 {
            continue;
        }
        let finished = match done {
            Done::Acked => true,
            Done::RetriesEmpty(k) => count(conn, "ZCARD", k).await == 0,
            Done::DeadLetters(k) => count(conn, "XLEN", k).await >= n,
        };
        if finished {
            return start.elapsed();
        }
    }
}

/// Runs the handlers of `module` over the `n` entries already in the stream `stream`, from a
/// new group `group`, until `done`; msg/s. `calls` counts the handler's (successful) calls.
#[allow(clippy::too_many_arguments)] // one scenario, described in full by its caller
pub async fn consume(
    url: &str,
    conn: &mut MultiplexedConnection,
    stream: &str,
    module: &'static str,
    group: &str,
    calls: &AtomicU64,
    n: usize,
    done: Done<'_>,
) -> f64 {
    calls.store(0, Ordering::Relaxed);
    let key = key(stream);
    let _: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("DESTROY")
        .arg(&key)
        .arg(group)
        .query_async(conn)
        .await;
    let rt = runtime(url, Some(module), None).await;
    let start = Instant::now();
    let running = Running::spawn(rt);
    let took = wait_done(conn, &key, group, (calls, n), done, start).await;
    running.stop().await;
    n as f64 / took.as_secs_f64()
}

/// Publish → handler-start latencies at `rate` msg/s for `secs` seconds (after half a second
/// of warm-up that is not recorded), in ns, sorted.
pub async fn latency(url: &str, rate: u64, secs: f64, bytes: usize) -> Vec<u64> {
    let lat = Latencies::default();
    let warm = rate / 2;
    let total = warm + (rate as f64 * secs) as u64;
    lat.warmup.store(warm, Ordering::Relaxed);
    let rt = runtime(url, Some("::lat"), Some(lat.clone())).await;
    let p = rt.publisher();
    let running = Running::spawn(rt);
    // Let the reader reach its blocking read.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut ev = Probe {
        seq: 0,
        sent_ns: 0,
        body: crate::events::body(bytes),
    };
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        tick.tick().await;
        let due = ((start.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
        while sent < due {
            ev.seq = sent;
            ev.sent_ns = now_ns();
            p.publish(&ev).await.expect("publish");
            sent += 1;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while lat.calls.load(Ordering::Relaxed) < total {
        assert!(Instant::now() < deadline, "latency handler fell behind");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    running.stop().await;
    let mut samples = std::mem::take(&mut *lat.samples.lock().expect("not poisoned"));
    samples.sort_unstable();
    samples
}

/// The `q` quantile of sorted `samples`.
pub fn quantile(samples: &[u64], q: f64) -> u64 {
    if samples.is_empty() {
        return 0;
    }
    let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
    samples[i]
}
