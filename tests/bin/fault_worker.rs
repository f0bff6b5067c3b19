//! A consumer process for the fault-injection suite (`tests/faults`):
//! `fault-worker <redis-url> <handler>[,<handler>...]`, handlers from `tests/faults/work.rs`
//! (`steady`, `serial`, `lagging`).
//!
//! Prints `ready <consumer-name>` once the runtime is built, then one line per successful
//! handling (`h <group> <seq> <message id> <attempt> <delivery count>`), written and flushed
//! before the handler returns `Ok` — the harness's ledger. A job with the `crash` fate aborts the
//! process. Exits 0 on SIGTERM after draining, 1 when the runtime cannot be built.
//!
//! Environment (all optional):
//! - `FAULT_DELAY_MS`: each handler call first sleeps up to this long (default 0).
//! - `FAULT_TRIM_MS`: trim interval (default 30 s).
//! - `FAULT_IDLE_MS`: consumer idle timeout (default 1 h).
//! - `FAULT_SHUTDOWN_MS`: shutdown timeout (default 2 s).

#[path = "../faults/work.rs"]
mod work;

use std::io::Write;
use std::time::Duration;

use opsc_events::prelude::*;
use work::Sink;

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // A write error means the harness is gone; nothing is left to report to.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn env_ms(name: &str) -> Option<Duration> {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(handlers)) = (args.next(), args.next()) else {
        eprintln!("usage: fault-worker <redis-url> <handler>[,<handler>...]");
        std::process::exit(2);
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    let mut sink = Sink::new(|h| say(&h.line()));
    sink.abort_on_crash = true;
    sink.max_delay_ms = env_ms("FAULT_DELAY_MS").map_or(0, |d| d.as_millis() as u64);
    let names: Vec<String> = handlers.split(',').map(str::to_owned).collect();
    let mut builder = Runtime::builder()
        .service("faults")
        .redis(url)
        .state(sink)
        .connect_timeout(Duration::from_secs(2))
        .response_timeout(Duration::from_secs(2))
        .shutdown_timeout(env_ms("FAULT_SHUTDOWN_MS").unwrap_or(Duration::from_secs(2)))
        .only(move |h| names.iter().any(|n| n == h.name()));
    if let Some(d) = env_ms("FAULT_TRIM_MS") {
        builder = builder.trim_interval(d);
    }
    if let Some(d) = env_ms("FAULT_IDLE_MS") {
        builder = builder.consumer_idle_timeout(d);
    }
    let rt = match builder.build().await {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    say(&format!("ready {}", rt.consumer_name()));
    if let Err(e) = rt.run().await {
        eprintln!("{e}");
        std::process::exit(1);
    }
    say("bye");
}
