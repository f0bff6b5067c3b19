//! Peak memory of a runtime with 100 handlers (10 streams × 10 groups) over a large backlog,
//! measured in a child process (this binary, re-run with `OPSC_BENCH_CHILD=rss`) so that only
//! the runtime's own memory counts: its `VmHWM` from `/proc/self/status`.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use opsc_events::prelude::*;
use redis::aio::MultiplexedConnection;

use crate::baseline::pipelined_xadd;
use crate::events::{Calls, RSS_STREAMS, rss_fields};
use crate::framework::{del, key};

/// What the child saw.
#[derive(Debug, Default)]
pub struct RssResult {
    pub handlers: usize,
    pub vmhwm_kb: u64,
    pub vmrss_kb: u64,
    pub handled: u64,
    pub secs: f64,
}

/// A `kB` field of this process's `/proc/self/status` (`VmHWM:`, `VmRSS:`), 0 when absent.
pub fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Fills every stream of the scenario with `per_stream` entries, runs the child for `secs`,
/// then deletes the streams.
pub async fn measure(
    url: &str,
    conn: &mut MultiplexedConnection,
    per_stream: usize,
    secs: f64,
) -> Result<RssResult, String> {
    let keys: Vec<String> = RSS_STREAMS.iter().map(|s| key(s)).collect();
    del(conn, &keys).await;
    for (i, k) in keys.iter().enumerate() {
        pipelined_xadd(conn, k, &rss_fields(i, 100), per_stream, 500).await;
    }
    let result = run_child(
        "rss",
        &[
            ("OPSC_BENCH_URL", url.to_owned()),
            ("OPSC_BENCH_RSS_SECS", secs.to_string()),
        ],
    )
    .await;
    del(conn, &keys).await;
    let mut r = RssResult::default();
    for (k, v) in result? {
        match k.as_str() {
            "handlers" => r.handlers = v.parse().unwrap_or(0),
            "vmhwm_kb" => r.vmhwm_kb = v.parse().unwrap_or(0),
            "vmrss_kb" => r.vmrss_kb = v.parse().unwrap_or(0),
            "handled" => r.handled = v.parse().unwrap_or(0),
            "secs" => r.secs = v.parse().unwrap_or(0.0),
            _ => {}
        }
    }
    Ok(r)
}

/// Re-runs this binary as the child scenario `kind` (`OPSC_BENCH_CHILD`) with `envs`, and
/// returns the `key=value` pairs of the line it prints starting with `kind`.
pub async fn run_child(
    kind: &str,
    envs: &[(&str, String)],
) -> Result<Vec<(String, String)>, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.env("OPSC_BENCH_CHILD", kind);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .await
        .map_err(|e| format!("cannot run the child: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(kind))
        .ok_or_else(|| {
            format!(
                "the child printed no result ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    Ok(line
        .split_whitespace()
        .skip(1)
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

/// The child: runs the 100 handlers for `OPSC_BENCH_RSS_SECS` and prints its peak RSS.
pub fn child() {
    let url = std::env::var("OPSC_BENCH_URL").expect("OPSC_BENCH_URL");
    let secs: f64 = std::env::var("OPSC_BENCH_RSS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    tokio.block_on(async {
        let calls = Calls::default();
        let rt = Runtime::builder()
            .service("bench")
            .redis(url)
            .state(calls.clone())
            .shutdown_timeout(Duration::from_secs(10))
            .only(|h| h.stream().starts_with("rss"))
            .build()
            .await
            .expect("the memory scenario's runtime builds");
        let handlers = rt.handlers().len();
        let start = Instant::now();
        rt.run_until(tokio::time::sleep(Duration::from_secs_f64(secs)))
            .await
            .expect("runtime");
        println!(
            "rss handlers={handlers} vmhwm_kb={} vmrss_kb={} handled={} secs={:.2}",
            status_kb("VmHWM:"),
            status_kb("VmRSS:"),
            calls.0.load(Ordering::Relaxed),
            start.elapsed().as_secs_f64()
        );
    });
}
