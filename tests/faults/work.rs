//! The work the fault suite publishes and the handlers that do it, shared by the harness
//! (`tests/faults`) and the `fault-worker` process (`tests/bin/fault_worker.rs`).
//!
//! Every job carries its sequence number and its *fate*: what its handler does with it. A
//! handler reports a success to its [`Sink`] as the very last thing before returning `Ok`, with
//! no `.await` in between, so a message that was handled and acknowledged has always been
//! recorded (a process killed between the record and the `XACK` produces a duplicate record,
//! never a missing one).
#![allow(dead_code)] // the worker and the harness use different parts

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

/// The stream every scenario uses.
pub const STREAM: &str = "ledger";
/// Its key under the default prefix.
pub const KEY: &str = "opsconductor:{ledger}:events";

/// Fast group: 16 in flight per process.
pub const STEADY: &str = "ledger.steady";
/// One in flight per process (stream order per consumer).
pub const SERIAL: &str = "ledger.serial";
/// The group that is left behind (scenario f, soak).
pub const LAGGING: &str = "ledger.lagging";

/// Attempts per message of every handler here: the first try and 3 retries.
pub const MAX_ATTEMPTS: u32 = 4;

/// What a job's handler does.
pub mod fate {
    /// Succeeds.
    pub const OK: u8 = 0;
    /// Fails its first attempt with a retryable error, then succeeds.
    pub const TRANSIENT: u8 = 1;
    /// Panics on every attempt → dead letter `panic`.
    pub const PANIC: u8 = 2;
    /// Sleeps far past the handler timeout on every attempt → dead letter `timeout`.
    pub const HANG: u8 = 3;
    /// Fails with a permanent error → dead letter `permanent` after one attempt.
    pub const PERMANENT: u8 = 4;
    /// Aborts its consumer process on every attempt → dead letter `crashed`.
    pub const CRASH: u8 = 5;
    /// Succeeds after 300 ms (so that it is still running when another job crashes the
    /// process).
    pub const SLOW: u8 = 6;

    /// A short name for reports.
    pub fn name(f: u8) -> &'static str {
        match f {
            OK => "ok",
            TRANSIENT => "transient",
            PANIC => "panic",
            HANG => "hang",
            PERMANENT => "permanent",
            CRASH => "crash",
            SLOW => "slow",
            _ => "unknown",
        }
    }

    /// The dead-letter reason a job of this fate must end with, or `None` when it must be
    /// handled.
    pub fn expected_reason(f: u8) -> Option<&'static str> {
        match f {
            OK | TRANSIENT | SLOW => None,
            PANIC => Some("panic"),
            HANG => Some("timeout"),
            PERMANENT => Some("permanent"),
            CRASH => Some("crashed"),
            _ => Some("permanent"),
        }
    }
}

/// One unit of work.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "ledger", name = "job")]
pub struct Job {
    /// Identifies the job in the ledger.
    pub seq: u64,
    /// See [`fate`].
    pub fate: u8,
}

/// A successful handling, as reported to the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    pub group: String,
    pub seq: u64,
    pub message_id: MessageId,
    pub attempt: u32,
    pub delivery_count: u32,
}

impl Handled {
    /// The line a worker prints: `h <group> <seq> <message id> <attempt> <delivery count>`.
    pub fn line(&self) -> String {
        format!(
            "h {} {} {} {} {}",
            self.group, self.seq, self.message_id, self.attempt, self.delivery_count
        )
    }

    /// Parses [`Handled::line`].
    pub fn parse(line: &str) -> Option<Handled> {
        let mut it = line.strip_prefix("h ")?.split(' ');
        let group = it.next()?.to_owned();
        let seq = it.next()?.parse().ok()?;
        let message_id = it.next()?.parse().ok()?;
        let attempt = it.next()?.parse().ok()?;
        let delivery_count = it.next()?.parse().ok()?;
        Some(Handled {
            group,
            seq,
            message_id,
            attempt,
            delivery_count,
        })
    }
}

type Record = dyn Fn(&Handled) + Send + Sync;

/// Where handlers report successes, and what a `CRASH` job does in this process.
#[derive(Clone)]
pub struct Sink {
    record: Arc<Record>,
    /// True in worker processes: a `CRASH` job aborts the process. In the test process it is
    /// refused with a permanent error instead.
    pub abort_on_crash: bool,
    /// Each call first sleeps a random time up to this many milliseconds (so that a kill finds
    /// work in flight).
    pub max_delay_ms: u64,
}

impl Sink {
    pub fn new(record: impl Fn(&Handled) + Send + Sync + 'static) -> Self {
        Sink {
            record: Arc::new(record),
            abort_on_crash: false,
            max_delay_ms: 0,
        }
    }

    /// A sink that records nothing (runtimes built only to create groups or trim).
    pub fn null() -> Self {
        Sink::new(|_| {})
    }
}

/// A small, seedable random source (SplitMix64); the test crates have no `rand`.
#[derive(Debug)]
pub struct Rng(AtomicU64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(AtomicU64::new(seed))
    }

    /// Seeded from the clock and the process id.
    pub fn from_entropy() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Rng::new(nanos ^ (u64::from(std::process::id()) << 32))
    }

    pub fn next_u64(&self) -> u64 {
        let mut z = self
            .0
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`0` when `n == 0`).
    pub fn below(&self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// True with probability `p`.
    pub fn chance(&self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / ((1u64 << 53) as f64)) < p
    }
}

static RNG: std::sync::LazyLock<Rng> = std::sync::LazyLock::new(Rng::from_entropy);

/// Does `job` according to its fate; records a success in `sink` just before returning `Ok`.
pub async fn work(job: &Job, ctx: &Context, sink: &Sink) -> Result<(), HandlerError> {
    if sink.max_delay_ms > 0 {
        let ms = RNG.below(sink.max_delay_ms + 1);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    match job.fate {
        fate::OK => {}
        fate::TRANSIENT if ctx.attempt() <= 1 => {
            return Err(format!("job {} fails its first attempt", job.seq).into());
        }
        fate::TRANSIENT => {}
        fate::SLOW => tokio::time::sleep(Duration::from_millis(300)).await,
        fate::PANIC => panic!("job {} panics", job.seq),
        fate::HANG => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        fate::CRASH if sink.abort_on_crash => std::process::abort(),
        _ => {
            return Err(HandlerError::permanent(format!(
                "job {} is rejected ({})",
                job.seq,
                fate::name(job.fate)
            )));
        }
    }
    // Nothing is awaited from here on: recorded means `Ok` is returned.
    (sink.record)(&Handled {
        group: ctx.group().to_owned(),
        seq: job.seq,
        message_id: ctx.message_id(),
        attempt: ctx.attempt(),
        delivery_count: ctx.delivery_count(),
    });
    Ok(())
}

/// Many in flight per process.
#[handler(
    stream = "ledger",
    group = "ledger.steady",
    concurrency = 16,
    retries = 3,
    backoff = "exponential(10ms, 200ms)",
    timeout = "1s",
    claim_after = "3s"
)]
pub async fn steady(job: Job, ctx: Context, State(sink): State<Sink>) -> Result<(), HandlerError> {
    work(&job, &ctx, &sink).await
}

/// One in flight per process.
#[handler(
    stream = "ledger",
    group = "ledger.serial",
    concurrency = 1,
    retries = 3,
    backoff = "fixed(50ms)",
    timeout = "1s",
    claim_after = "3s"
)]
pub async fn serial(job: Job, ctx: Context, State(sink): State<Sink>) -> Result<(), HandlerError> {
    work(&job, &ctx, &sink).await
}

/// The group that falls behind and catches up.
#[handler(
    stream = "ledger",
    group = "ledger.lagging",
    concurrency = 64,
    retries = 3,
    backoff = "exponential(10ms, 200ms)",
    timeout = "1s",
    claim_after = "3s"
)]
pub async fn lagging(job: Job, ctx: Context, State(sink): State<Sink>) -> Result<(), HandlerError> {
    work(&job, &ctx, &sink).await
}

/// The handler fn name of a group.
pub fn handler_of(group: &str) -> &'static str {
    match group {
        STEADY => "steady",
        SERIAL => "serial",
        LAGGING => "lagging",
        other => panic!("no handler for group {other}"),
    }
}
