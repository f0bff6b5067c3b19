//! How the cost grows with the number of handlers in one process: 1, 100 and 1,000 handlers
//! (consumer loops, each with its own group and reader connection), measured in a child process
//! (this binary, re-run with `OPSC_BENCH_CHILD=scale`): CPU time per handled message, peak RSS,
//! and CPU used while idle afterwards (every consumer blocked in its read).
//!
//! 100 handlers are the memory scenario's 10 streams × 10 groups; 1,000 are those under ten
//! key prefixes (ten runtimes in the process, so 100 streams × 10 groups).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use opsc_events::prelude::*;
use redis::aio::MultiplexedConnection;

use crate::baseline::pipelined_xadd;
use crate::events::{Calls, RSS_STREAMS, rss_fields};
use crate::framework::del;
use crate::report::cpu_time;
use crate::rss::{run_child, status_kb};

/// What the child saw with one number of handlers.
#[derive(Debug, Default)]
pub struct ScaleResult {
    pub handlers: usize,
    pub handled: u64,
    pub cpu_ns_per_msg: f64,
    pub vmhwm_kb: u64,
    /// CPU time per second of wall time while idle, in percent of one core.
    pub idle_cpu_pct: f64,
    pub secs: f64,
}

/// The key prefixes and whether only one handler runs, for `handlers` handlers.
fn plan(handlers: usize) -> (Vec<String>, bool) {
    match handlers {
        1 => (vec!["scale1".to_owned()], true),
        100 => (vec!["scale100".to_owned()], false),
        _ => ((0..10).map(|i| format!("scale1k{i}")).collect(), false),
    }
}

fn keys(handlers: usize) -> Vec<String> {
    let (prefixes, one) = plan(handlers);
    let streams: &[&str] = if one { &RSS_STREAMS[..1] } else { &RSS_STREAMS };
    prefixes
        .iter()
        .flat_map(|p| streams.iter().map(move |s| format!("{p}:{{{s}}}:events")))
        .collect()
}

/// Fills the streams so that `handlers` handlers make `total` calls in all, runs the child
/// until they are made, then deletes the streams.
pub async fn measure(
    url: &str,
    conn: &mut MultiplexedConnection,
    handlers: usize,
    total: usize,
) -> Result<ScaleResult, String> {
    let keys = keys(handlers);
    // Every group of a stream sees each of its entries: 1 group per stream with one handler,
    // 10 otherwise.
    let groups_per_stream = if handlers == 1 { 1 } else { 10 };
    let per_stream = (total / (keys.len() * groups_per_stream)).max(1);
    del(conn, &keys).await;
    for (i, k) in keys.iter().enumerate() {
        let fields = rss_fields(i % RSS_STREAMS.len(), 100);
        pipelined_xadd(conn, k, &fields, per_stream, 500).await;
    }
    let expected = per_stream * keys.len() * groups_per_stream;
    let result = run_child(
        "scale",
        &[
            ("OPSC_BENCH_URL", url.to_owned()),
            ("OPSC_BENCH_SCALE_HANDLERS", handlers.to_string()),
            ("OPSC_BENCH_SCALE_EXPECTED", expected.to_string()),
        ],
    )
    .await;
    del(conn, &keys).await;
    let mut r = ScaleResult::default();
    for (k, v) in result? {
        match k.as_str() {
            "handlers" => r.handlers = v.parse().unwrap_or(0),
            "handled" => r.handled = v.parse().unwrap_or(0),
            "cpu_ns_per_msg" => r.cpu_ns_per_msg = v.parse().unwrap_or(f64::NAN),
            "vmhwm_kb" => r.vmhwm_kb = v.parse().unwrap_or(0),
            "idle_cpu_pct" => r.idle_cpu_pct = v.parse().unwrap_or(f64::NAN),
            "secs" => r.secs = v.parse().unwrap_or(0.0),
            _ => {}
        }
    }
    Ok(r)
}

/// The child: runs the handlers until the expected calls are made, then idles two seconds.
pub fn child() {
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is set by the parent"));
    let url = env("OPSC_BENCH_URL");
    let handlers: usize = env("OPSC_BENCH_SCALE_HANDLERS").parse().expect("a number");
    let expected: u64 = env("OPSC_BENCH_SCALE_EXPECTED").parse().expect("a number");
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    tokio.block_on(async {
        let calls = Calls::default();
        let (prefixes, one) = plan(handlers);
        // Every runtime is built (groups created) before any runs, so the clock sees all the
        // work.
        let mut built = Vec::new();
        let mut count = 0;
        for prefix in &prefixes {
            let b = Runtime::builder()
                .service("bench")
                .prefix(prefix.as_str())
                .redis(url.as_str())
                .state(calls.clone())
                .shutdown_timeout(Duration::from_secs(10));
            let b = if one {
                b.only(|h| h.group() == "bench.rss0.h0")
            } else {
                b.only(|h| h.stream().starts_with("rss"))
            };
            let rt = b.build().await.expect("the scale scenario's runtime builds");
            count += rt.handlers().len();
            built.push(rt);
        }
        let (start, cpu0) = (Instant::now(), cpu_time());
        let mut running = Vec::new();
        for rt in built {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(rt.run_until(async move {
                let _ = rx.await;
            }));
            running.push((tx, task));
        }
        let limit = Duration::from_secs(300);
        while calls.0.load(Ordering::Relaxed) < expected && start.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let (secs, cpu) = (start.elapsed(), cpu_time().saturating_sub(cpu0));
        let handled = calls.0.load(Ordering::Relaxed);
        let (idle0, idle_cpu0) = (Instant::now(), cpu_time());
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle = cpu_time().saturating_sub(idle_cpu0).as_secs_f64() / idle0.elapsed().as_secs_f64();
        for (tx, task) in running {
            let _ = tx.send(());
            task.await.expect("runtime task").expect("runtime");
        }
        println!(
            "scale handlers={count} handled={handled} cpu_ns_per_msg={:.0} vmhwm_kb={} idle_cpu_pct={:.1} secs={:.2}",
            cpu.as_nanos() as f64 / handled.max(1) as f64,
            status_kb("VmHWM:"),
            idle * 100.0,
            secs.as_secs_f64()
        );
    });
}
