//! Delayed events: how fast they are scheduled, how fast due ones are moved into the stream, and
//! what one mover tick costs with a small and with a large schedule (the issue: "a schedule of a
//! million entries costs no more per tick than a small one").

use std::time::{Duration, Instant};

use opsc_events::prelude::*;
use redis::aio::MultiplexedConnection;

use crate::events::Later;
use crate::framework::{del, key};

pub struct DelayedRun {
    /// `publish_after` calls per second (64 in flight).
    pub scheduled_per_s: f64,
    /// Due events moved into the stream per second (mover ticks back to back).
    pub moved_per_s: f64,
    /// Median round trip of one tick (nothing due) with `small` and with `large` scheduled.
    pub tick_small_us: u64,
    pub tick_large_us: u64,
    pub small: usize,
    pub large: usize,
}

const STREAM: &str = "bench_delayed";

pub async fn measure(
    url: &str,
    conn: &mut MultiplexedConnection,
    n: usize,
    large: usize,
) -> Result<DelayedRun, String> {
    let schedule = format!("opsconductor:{{{STREAM}}}:delayed");
    let data = format!("{schedule}:data");
    let lease = format!("{schedule}:lease");
    del(conn, &[key(STREAM), schedule.clone(), data.clone(), lease]).await;
    // The stream needs a runtime that owns it to move: a limit without caps names it.
    let rt = Runtime::builder()
        .service("bench")
        .redis(url)
        .no_handlers()
        .stream_limits(STREAM, StreamLimits::new())
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let publisher = rt.publisher();
    let events = std::sync::Arc::new(Later::batch(n, 100));
    // Scheduling: 64 in flight, all due at once (delay 0), so that moving has them all.
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..64 {
        let (publisher, events) = (publisher.clone(), events.clone());
        tasks.spawn(async move {
            for e in events.iter().skip(t).step_by(64) {
                publisher.publish_after(e, Duration::ZERO).await?;
            }
            Ok::<(), opsc_events::Error>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    }
    let scheduled_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut moved = 0;
    while moved < n {
        let m = rt.move_due_delayed().await.map_err(|e| e.to_string())?;
        if m == 0 {
            return Err(format!("only {moved} of {n} moved"));
        }
        moved += m;
    }
    let moved_s = started.elapsed().as_secs_f64();
    // Tick cost: nothing due, `small` then `large` scheduled far in the future (written
    // directly, pipelined, with the packed fields of one real delayed event).
    let far = publisher
        .publish_after(&events[0], Duration::from_secs(300 * 24 * 3600))
        .await
        .map_err(|e| e.to_string())?;
    let packed: Vec<u8> = redis::cmd("HGET")
        .arg(&data)
        .arg(far.event_id().to_string())
        .query_async(conn)
        .await
        .map_err(|e| e.to_string())?;
    let small = 1;
    let tick_small_us = median_tick(&rt).await?;
    let mut filled = 1;
    while filled < large {
        let mut pipe = redis::pipe();
        for i in filled..(filled + 10_000).min(large) {
            let id = format!("00000000-0000-7000-8000-{i:012}");
            pipe.cmd("ZADD")
                .arg(&schedule)
                .arg(4_000_000_000_000u64 + i as u64)
                .arg(&id)
                .ignore();
            pipe.cmd("HSET")
                .arg(&data)
                .arg(&id)
                .arg(&packed[..])
                .ignore();
        }
        let () = pipe.query_async(conn).await.map_err(|e| e.to_string())?;
        filled = (filled + 10_000).min(large);
    }
    let tick_large_us = median_tick(&rt).await?;
    del(conn, &[key(STREAM), schedule, data]).await;
    Ok(DelayedRun {
        scheduled_per_s: n as f64 / scheduled_s,
        moved_per_s: n as f64 / moved_s,
        tick_small_us,
        tick_large_us,
        small,
        large,
    })
}

/// The median of 200 ticks' round trips, in microseconds.
async fn median_tick(rt: &Runtime) -> Result<u64, String> {
    let mut times = Vec::with_capacity(200);
    for _ in 0..200 {
        let t = Instant::now();
        rt.move_due_delayed().await.map_err(|e| e.to_string())?;
        times.push(t.elapsed().as_micros() as u64);
    }
    times.sort_unstable();
    Ok(times[times.len() / 2])
}
