//! How long one trimming step blocks Redis (issue: "trimming does unbounded work inside one
//! script"): a stream of `entries` entries, a fast group that read everything, a slow group
//! half-way with `scheduled` retries in its schedule (with their attempt records). Each trim step
//! is one script; its duration on the server is read from `SLOWLOG` (threshold 0 during the run).

use std::time::Duration;

use opsc_events::prelude::*;
use redis::aio::MultiplexedConnection;

use crate::framework::{del, key};

/// What one trimming pass did.
pub struct TrimRun {
    pub trimmed: u64,
    /// Script calls of the pass.
    pub steps: usize,
    /// The longest one, in microseconds, on the server.
    pub longest_us: u64,
    /// All of them together.
    pub total_us: u64,
    /// For context: what reading the slow group's whole schedule costs (what a trimming script
    /// that looked at the schedules did every round, per group), in microseconds.
    pub schedule_scan_us: u64,
}

const STREAM: &str = "bench_trim";

pub async fn measure(
    url: &str,
    conn: &mut MultiplexedConnection,
    entries: usize,
    scheduled: usize,
) -> Result<TrimRun, String> {
    let k = key(STREAM);
    let schedule = format!("opsconductor:{{{STREAM}}}:retry:slow");
    let lock = format!("opsconductor:{{{STREAM}}}:trim_lock");
    del(conn, &[&k, &schedule, &lock]).await;
    let payload = [b'p'; 100];
    let mut ids: Vec<String> = Vec::with_capacity(entries);
    for chunk in 0..entries.div_ceil(10_000) {
        let mut pipe = redis::pipe();
        for _ in 0..10_000.min(entries - chunk * 10_000) {
            pipe.cmd("XADD")
                .arg(&k)
                .arg("*")
                .arg("x@1")
                .arg(&payload[..]);
        }
        let mut got: Vec<String> = pipe.query_async(conn).await.map_err(|e| e.to_string())?;
        ids.append(&mut got);
    }
    let half = &ids[entries / 2];
    let q = |c: &mut redis::Cmd| c.clone();
    let _: () = q(redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&k)
        .arg("fast")
        .arg("$"))
    .query_async(conn)
    .await
    .map_err(|e| e.to_string())?;
    let _: () = q(redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&k)
        .arg("slow")
        .arg(half))
    .query_async(conn)
    .await
    .map_err(|e| e.to_string())?;
    // Scheduled retries of the slow group: entries it read and failed (below its position).
    for chunk in ids[..entries / 2]
        .chunks(10_000)
        .take(scheduled.div_ceil(10_000))
    {
        let mut pipe = redis::pipe();
        for id in chunk {
            pipe.cmd("ZADD")
                .arg(&schedule)
                .arg(u64::MAX / 2)
                .arg(id)
                .ignore();
            pipe.cmd("HSET")
                .arg(format!("opsconductor:{{{STREAM}}}:attempt:slow:{id}"))
                .arg("attempts")
                .arg(1)
                .arg("copied")
                .arg(1)
                .arg("f:x@1")
                .arg(&payload[..])
                .ignore();
        }
        let () = pipe.query_async(conn).await.map_err(|e| e.to_string())?;
    }
    let rt = Runtime::builder()
        .service("bench")
        .redis(url)
        .response_timeout(Duration::from_secs(60))
        .no_handlers()
        .stream_limits(STREAM, StreamLimits::new())
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let slowlog = |args: &[&str]| {
        let mut c = redis::cmd("SLOWLOG");
        for a in args {
            c.arg(*a);
        }
        c
    };
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(0)
        .arg("slowlog-max-len")
        .arg(10_000)
        .query_async(conn)
        .await
        .map_err(|e| e.to_string())?;
    let _: () = slowlog(&["RESET"])
        .query_async(conn)
        .await
        .map_err(|e| e.to_string())?;
    let report = rt.trim_now().await.map_err(|e| e.to_string())?;
    let log: Vec<redis::Value> = slowlog(&["GET", "10000"])
        .query_async(conn)
        .await
        .map_err(|e| e.to_string())?;
    let mut durations = Vec::new();
    for item in log {
        let redis::Value::Array(fields) = item else {
            continue;
        };
        let (Some(redis::Value::Int(us)), Some(redis::Value::Array(args))) =
            (fields.get(2), fields.get(3))
        else {
            continue;
        };
        if let Some(redis::Value::BulkString(cmd)) = args.first()
            && cmd.eq_ignore_ascii_case(b"EVALSHA")
        {
            durations.push(u64::try_from(*us).unwrap_or(0));
        }
    }
    let _: () = slowlog(&["RESET"])
        .query_async(conn)
        .await
        .map_err(|e| e.to_string())?;
    let _: Vec<String> = redis::cmd("ZRANGE")
        .arg(&schedule)
        .arg(0)
        .arg(-1)
        .query_async(conn)
        .await
        .map_err(|e| e.to_string())?;
    let scan: Vec<redis::Value> = slowlog(&["GET", "10"])
        .query_async(conn)
        .await
        .map_err(|e| e.to_string())?;
    let schedule_scan_us = scan
        .iter()
        .filter_map(|item| match item {
            redis::Value::Array(f) => match f.get(2) {
                Some(redis::Value::Int(us)) => u64::try_from(*us).ok(),
                _ => None,
            },
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(10_000)
        .query_async(conn)
        .await
        .map_err(|e| e.to_string())?;
    del(conn, &[&k, &schedule, &lock]).await;
    Ok(TrimRun {
        trimmed: report.first().map_or(0, |r| r.trimmed),
        steps: durations.len(),
        longest_us: durations.iter().copied().max().unwrap_or(0),
        total_us: durations.iter().sum(),
        schedule_scan_us,
    })
}
