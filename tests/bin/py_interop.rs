//! The Rust side of the Python client's cross-language tests (`python/tests/test_interop.py`):
//!
//! - `py-interop fingerprint` prints `interop_event 1 <fingerprint>`;
//! - `py-interop publish <redis-url> <n>` publishes `n` [`InteropEvent`]s (`sample(0..n)`)
//!   through a runtime of service `py_interop`, then prints `published <n>`;
//! - `py-interop handle <redis-url> <n>` runs the `#[handler]` `record` (group
//!   `py_interop.record`), prints `ready`, then for every event it handles
//!   `handled <event as JSON> <service> <event id> <correlation id>` (or `refused <seq>` for an
//!   event labelled `fail…`, which it dead-letters as permanent), and exits 0 once it has taken
//!   `n` (1 after 30 s without them);
//! - `py-interop dead-letters <redis-url> <stream>` prints each dead letter of the stream as one
//!   JSON line, read through the runtime's dead-letter API (what `opsc dlq` uses);
//! - `py-interop registry <redis-url>` prints the schema registry as the runtime reads it, one
//!   JSON object: `entries` (re-serialized by Rust), `unreadable` fields and `mismatches`.
//!
//! Every command but `fingerprint` builds a runtime of service `py_interop`, which records its
//! entries in the schema registry: a producer of `interop_event` v1 (declared, since the binary
//! also handles it), and with `handle` the consumer entry of `record`.
//!
//! The event covers the serde forms a Python service meets most: integers (u64, u128, i64),
//! f32, strings, `Vec`, `Option`, a map, a UUID and an externally tagged enum with unit, newtype
//! and struct variants. Its definition is mirrored in `python/tests/interop_event.py`.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

#[derive(Serialize, Deserialize, EventSchema, Debug, Clone, PartialEq)]
pub enum Status {
    Up,
    Code(u16),
    Degraded {
        since_ms: u64,
        reason: Option<String>,
    },
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "interop", name = "interop_event", version = 1)]
pub struct InteropEvent {
    pub seq: u64,
    pub label: String,
    pub tags: Vec<String>,
    pub note: Option<String>,
    pub id: uuid::Uuid,
    pub big: u128,
    pub delta: i64,
    pub ratio: f32,
    pub status: Status,
    pub attrs: BTreeMap<String, i64>,
}

/// The event number `seq` that `publish` sends (mirrored by `sample` in the Python tests).
fn sample(seq: u64) -> InteropEvent {
    let status = match seq % 3 {
        0 => Status::Up,
        1 => Status::Code(500 + seq as u16),
        _ => Status::Degraded {
            since_ms: 1_700_000_000_000 + seq,
            reason: Some(format!("r{seq}")),
        },
    };
    InteropEvent {
        seq,
        label: format!("rust-{seq}"),
        tags: (0..seq % 3).map(|i| format!("t{i}")).collect(),
        note: seq.is_multiple_of(2).then(|| format!("note {seq}")),
        id: uuid::Uuid::from_u128(0x0193_717c_4a00_7000_8000_0000_0000_0000 + u128::from(seq)),
        big: u128::MAX - u128::from(seq),
        delta: -(seq as i64) * 1000,
        ratio: 0.5,
        status,
        attrs: BTreeMap::from([("n".to_owned(), seq as i64), ("neg".to_owned(), -1)]),
    }
}

#[derive(Clone)]
struct Progress(watch::Sender<u64>);

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // A write error means the test harness is gone; nothing is left to report to.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Handles every event; one whose label starts with `fail` is refused as permanent (a dead
/// letter written by Rust, for the Python reader), and counts as handled.
#[handler(stream = "interop")]
async fn record(
    event: InteropEvent,
    ctx: Context,
    State(progress): State<Progress>,
) -> Result<(), HandlerError> {
    if event.label.starts_with("fail") {
        progress.0.send_modify(|n| *n += 1);
        say(&format!("refused {}", event.seq));
        return Err(HandlerError::permanent(format!("refused {}", event.label)));
    }
    let json = serde_json::to_string(&event).unwrap_or_else(|e| format!("\"{e}\""));
    say(&format!(
        "handled {json} {} {} {}",
        ctx.published_by(),
        ctx.event_id(),
        ctx.correlation_id()
    ));
    progress.0.send_modify(|n| *n += 1);
    Ok(())
}

fn usage() -> ! {
    eprintln!(
        "usage: py-interop fingerprint | publish <redis-url> <n> | handle <redis-url> <n> | dead-letters <redis-url> <stream> | registry <redis-url>"
    );
    std::process::exit(2);
}

async fn runtime(url: &str, progress: Progress, handlers: bool) -> Runtime {
    let mut builder = Runtime::builder()
        .service("py_interop")
        .redis(url)
        .state(progress)
        .connect_timeout(Duration::from_secs(2))
        .shutdown_timeout(Duration::from_secs(2));
    if !handlers {
        builder = builder.no_handlers().publishes::<InteropEvent>();
    }
    match builder.build().await {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let progress = Progress(watch::Sender::new(0));
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["fingerprint"] => say(&format!(
            "{} {} {}",
            InteropEvent::NAME,
            InteropEvent::VERSION,
            InteropEvent::schema().fingerprint_hex()
        )),
        ["publish", url, n] => {
            let n: u64 = n.parse().unwrap_or_else(|_| usage());
            let rt = runtime(url, progress, false).await;
            let events: Vec<InteropEvent> = (0..n).map(sample).collect();
            if let Err(e) = rt.publisher().publish_all(&events).await {
                eprintln!("{e}");
                std::process::exit(1);
            }
            say(&format!("published {n}"));
        }
        ["handle", url, n] => {
            let n: u64 = n.parse().unwrap_or_else(|_| usage());
            let rt = runtime(url, progress.clone(), true).await;
            say("ready");
            let mut handled = progress.0.subscribe();
            let done = rt
                .run_until(async move {
                    let all = handled.wait_for(|h| *h >= n);
                    // The count is checked below; a timeout only ends the run.
                    let _ = tokio::time::timeout(Duration::from_secs(30), all).await;
                })
                .await;
            match done {
                Ok(()) if *progress.0.borrow() >= n => say("done"),
                Ok(()) => {
                    eprintln!("handled {} of {n} within 30 s", *progress.0.borrow());
                    std::process::exit(1);
                }
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            }
        }
        ["dead-letters", url, stream] => {
            let rt = runtime(url, progress, false).await;
            let filter = DeadLetterFilter::stream(*stream).limit(1000);
            match rt.dead_letters().list(&filter).await {
                Ok(letters) => {
                    for l in letters {
                        let json = serde_json::json!({
                            "id": l.id.to_string(),
                            "original_id": l.original_id.to_string(),
                            "stream": l.stream,
                            "group": l.group,
                            "handler": l.handler,
                            "event_type": l.event_type,
                            "version": l.version,
                            "reason": l.reason.as_str(),
                            "error": l.error,
                            "attempts": l.attempts,
                            "replays": l.replays,
                            "first_failed_at": l.first_failed_at,
                            "failed_at": l.failed_at,
                            "data_len": l.data.len(),
                        });
                        say(&json.to_string());
                    }
                }
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            }
        }
        ["registry", url] => {
            let rt = runtime(url, progress, false).await;
            match rt.schema_registry().await {
                Ok((entries, unreadable)) => {
                    let mismatches = opsc_events::contracts::mismatches(&entries);
                    let json = serde_json::json!({
                        "entries": entries,
                        "unreadable": unreadable.iter()
                            .map(|u| serde_json::json!({"field": u.field, "reason": u.reason}))
                            .collect::<Vec<_>>(),
                        "mismatches": mismatches.iter()
                            .map(|m| serde_json::json!({"event": m.event(), "problem": m.to_string()}))
                            .collect::<Vec<_>>(),
                    });
                    say(&json.to_string());
                }
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            }
        }
        _ => usage(),
    }
}
