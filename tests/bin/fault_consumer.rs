//! A consumer process for fault tests: `fault-consumer <redis-url> <mode>`.
//!
//! Modes:
//! - `hold`: takes work items and never finishes them (so they stay pending on this consumer
//!   until the process is killed).
//! - `backoff`: fails every attempt, with a 3 s backoff between attempts.
//! - `crash`: handles work items, but aborts the whole process on item 13.
//! - `serve`: handles work items (printing `done <n>`) until SIGINT or SIGTERM, then drains and
//!   exits 0.
//! - `skewed`: fails first attempts, takes 2 s over retries; meant to run with its wall clock
//!   skewed (`OPSC_FAULT_CLOCK_OFFSET_MS`, honoured with the runtime's `fault-injection`
//!   feature). Publishes work item 999 first, so the test can read the clock it stamped.
//!
//! Prints `ready <consumer-name>` once the runtime is built, then `start <n>` as each handler
//! call begins, so the test knows what this process holds.

#[path = "../common/fault_events.rs"]
mod fault_events;

use std::io::Write;

use fault_events::WorkItem;
use opsc_events::prelude::*;

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[handler(
    stream = "faults",
    group = "fault.worker",
    concurrency = 64,
    timeout = "10m",
    claim_after = "20m"
)]
async fn hold(event: WorkItem) {
    say(&format!("start {}", event.n));
    std::future::pending::<()>().await;
}

#[handler(
    stream = "faults",
    group = "fault.retry",
    retries = 3,
    backoff = "fixed(3s)"
)]
async fn backoff(event: WorkItem, ctx: Context) -> Result<(), HandlerError> {
    say(&format!("attempt {} {}", event.n, ctx.attempt()));
    Err("always fails here".into())
}

#[handler(
    stream = "faults",
    group = "fault.crash",
    retries = 2,
    timeout = "1s",
    claim_after = "2s"
)]
async fn crash(event: WorkItem, ctx: Context) {
    say(&format!("attempt {} {}", event.n, ctx.attempt()));
    if event.n == 13 {
        std::process::abort();
    }
    say(&format!("done {}", event.n));
}

/// Fails every first attempt; a retry takes 2 s (long enough for another consumer to try to
/// take its lease). Work item 999 is only a marker, handled at once.
#[handler(
    stream = "faults",
    group = "fault.skew",
    retries = 3,
    backoff = "fixed(100ms)",
    timeout = "5s",
    claim_after = "6s"
)]
async fn skewed(event: WorkItem, ctx: Context) -> Result<(), HandlerError> {
    if event.n == 999 {
        return Ok(());
    }
    say(&format!("attempt {} {}", event.n, ctx.attempt()));
    if ctx.attempt() == 1 {
        return Err("first attempts fail".into());
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    say(&format!("done {} {}", event.n, ctx.attempt()));
    Ok(())
}

#[handler(stream = "faults", group = "fault.serve", concurrency = 4)]
async fn serve(event: WorkItem) {
    say(&format!("done {}", event.n));
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(mode)) = (args.next(), args.next()) else {
        eprintln!("usage: fault-consumer <redis-url> <mode>");
        std::process::exit(2);
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .try_init();
    let mode_is_skewed = mode == "skewed";
    let rt = Runtime::builder()
        .service("fault")
        .redis(url)
        .only(move |h| h.name() == mode)
        .build()
        .await;
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    if mode_is_skewed && let Err(e) = rt.publisher().publish(&WorkItem { n: 999 }).await {
        eprintln!("{e}");
        std::process::exit(1);
    }
    say(&format!("ready {}", rt.consumer_name()));
    if let Err(e) = rt.run().await {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
