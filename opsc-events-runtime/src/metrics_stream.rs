//! The metrics stream: with [`RuntimeBuilder::metrics_stream`](crate::RuntimeBuilder::metrics_stream),
//! each runtime publishes a [`RuntimeMetrics`] event every interval to the stream
//! [`METRICS_STREAM`] (`<prefix>:{metrics}:events`), kept to [`METRICS_STREAM_LEN`] entries by
//! the runtime's trimming. Any service can follow it with an ordinary handler (with the
//! `opsc_events` facade: `use opsc_events::prelude::*;` and `#[handler(stream = "metrics")]`;
//! here, inside the runtime crate, the macro is named by its path):
//!
//! ```
//! use opsc_events_runtime::metrics_stream::RuntimeMetrics;
//!
//! #[opsc_events_derive::handler(stream = "metrics", crate = "opsc_events_runtime")]
//! async fn watch(m: RuntimeMetrics) {
//!     for h in &m.handlers {
//!         println!("{} {}: {} handled, lag {:?}", m.service, h.group, h.handled, h.lag);
//!     }
//! }
//! ```
//!
//! Counts are totals since the runtime started (a consumer of the stream takes differences);
//! latency quantiles are over the interval (from a histogram with power-of-two buckets, so a
//! quantile is the upper bound of its bucket: within a factor of two); lag and pending are read
//! from Redis at the tick.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The stream the metrics events go to.
pub const METRICS_STREAM: &str = "metrics";

/// How many metrics events the stream keeps (trimmed with the runtime's trimming pass).
pub const METRICS_STREAM_LEN: u64 = 10_000;

/// One runtime's figures at one tick: the event of the metrics stream.
#[derive(opsc_events_derive::Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(
    crate = "crate",
    stream = "metrics",
    name = "runtime_metrics",
    version = 1
)]
pub struct RuntimeMetrics {
    /// The service name.
    pub service: String,
    /// The runtime's consumer name (one per process).
    pub consumer: String,
    /// When the figures were taken, in ms since the epoch (this host's clock).
    pub at_ms: u64,
    /// The interval between two ticks, in ms.
    pub interval_ms: u64,
    /// One entry per handler of the runtime.
    pub handlers: Vec<HandlerMetrics>,
}

/// One handler's figures.
#[derive(opsc_events_derive::EventSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event_schema(crate = "crate")]
pub struct HandlerMetrics {
    /// The handler's full path.
    pub handler: String,
    /// Its stream.
    pub stream: String,
    /// Its consumer group.
    pub group: String,
    /// Messages handled (acknowledged) since the runtime started.
    pub handled: u64,
    /// Failed attempts since the runtime started.
    pub failed: u64,
    /// Retries scheduled since the runtime started.
    pub retried: u64,
    /// Messages dead-lettered since the runtime started.
    pub dead_lettered: u64,
    /// Messages dropped after their last attempt (dead letters off) since the runtime started.
    pub dropped: u64,
    /// Calls finished during the interval.
    pub calls: u64,
    /// Call time quantiles over the interval, in ms (`None` without calls).
    pub latency_p50_ms: Option<f64>,
    /// 90th percentile.
    pub latency_p90_ms: Option<f64>,
    /// 99th percentile.
    pub latency_p99_ms: Option<f64>,
    /// Entries of the stream the group has not read (Redis 7 `XINFO GROUPS` lag).
    pub lag: Option<u64>,
    /// Entries delivered to the group and not acknowledged.
    pub pending: u64,
}

/// Power-of-two buckets of call time in microseconds: bucket `i` holds calls under `2^i` µs.
const BUCKETS: usize = 40;

/// A consumer's counts, kept by the settler and the call runner.
#[derive(Debug)]
pub(crate) struct Counts {
    handled: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
    dropped: AtomicU64,
    /// Call times are recorded only when a metrics stream reads them.
    timing: AtomicBool,
    latency: [AtomicU64; BUCKETS],
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            handled: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            timing: AtomicBool::new(false),
            latency: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Counts {
    pub(crate) fn handled(&self, n: u64) {
        self.handled.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn retried(&self) {
        self.retried.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn dead_lettered(&self) {
        self.dead_lettered.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// A call took `d`.
    pub(crate) fn took(&self, d: Duration) {
        if !self.timing.load(Ordering::Relaxed) {
            return;
        }
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = (u64::BITS - us.leading_zeros()) as usize;
        self.latency[i.min(BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
    }

    /// Starts recording call times.
    pub(crate) fn time_calls(&self) {
        self.timing.store(true, Ordering::Relaxed);
    }

    fn buckets(&self) -> [u64; BUCKETS] {
        std::array::from_fn(|i| self.latency[i].load(Ordering::Relaxed))
    }
}

/// The figures of one handler at one tick, with the histogram kept for the next interval.
pub(crate) struct Sampler {
    last: [u64; BUCKETS],
}

impl Sampler {
    pub(crate) fn new() -> Self {
        Sampler { last: [0; BUCKETS] }
    }

    /// Fills the counts and the interval's quantiles of `m` from `counts`.
    pub(crate) fn sample(&mut self, counts: &Counts, m: &mut HandlerMetrics) {
        m.handled = counts.handled.load(Ordering::Relaxed);
        m.failed = counts.failed.load(Ordering::Relaxed);
        m.retried = counts.retried.load(Ordering::Relaxed);
        m.dead_lettered = counts.dead_lettered.load(Ordering::Relaxed);
        m.dropped = counts.dropped.load(Ordering::Relaxed);
        let now = counts.buckets();
        let interval: [u64; BUCKETS] = std::array::from_fn(|i| now[i].saturating_sub(self.last[i]));
        self.last = now;
        m.calls = interval.iter().sum();
        m.latency_p50_ms = quantile(&interval, m.calls, 0.50);
        m.latency_p90_ms = quantile(&interval, m.calls, 0.90);
        m.latency_p99_ms = quantile(&interval, m.calls, 0.99);
    }
}

/// The upper bound, in ms, of the bucket holding quantile `q` of `total` calls.
fn quantile(buckets: &[u64; BUCKETS], total: u64, q: f64) -> Option<f64> {
    if total == 0 {
        return None;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= rank {
            // Bucket i holds calls under 2^i µs.
            return Some((1u64 << i) as f64 / 1000.0);
        }
    }
    None
}

/// What the metrics task reads.
pub(crate) struct Source {
    pub(crate) publisher: crate::Publisher,
    pub(crate) transport: crate::transport::Transport,
    pub(crate) keys: crate::keys::Keys,
    pub(crate) service: String,
    pub(crate) consumer: String,
    /// Each handler's path and status.
    pub(crate) handlers: Vec<(String, std::sync::Arc<crate::health::ConsumerStatus>)>,
}

/// Publishes a [`RuntimeMetrics`] every `every` until `stop`. A failed tick is logged (rate
/// limited) and the next one tried: the metrics stream never stops the runtime.
pub(crate) async fn run(
    source: Source,
    every: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    use crate::transport::{Broker, with_broker};
    let mut samplers: Vec<Sampler> = source.handlers.iter().map(|_| Sampler::new()).collect();
    let mut warn_every = crate::util::RateLimit::new(Duration::from_secs(60));
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate: skip it, so the first interval is a whole one.
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = stop.cancelled() => return,
        }
        crate::fault::hit("", "metrics_stream").await;
        let mut handlers = Vec::with_capacity(source.handlers.len());
        let mut infos: std::collections::HashMap<&str, crate::info::StreamInfo> =
            std::collections::HashMap::new();
        for ((path, status), sampler) in source.handlers.iter().zip(samplers.iter_mut()) {
            if !infos.contains_key(status.stream) {
                let keys = source.keys.stream(status.stream);
                match with_broker!(&source.transport, b => b.stream_info(&keys).await) {
                    Ok(info) => {
                        infos.insert(status.stream, info);
                    }
                    Err(e) => {
                        tracing::debug!(stream = status.stream, error = %e, "metrics stream: cannot read the backlog");
                    }
                }
            }
            let group = infos
                .get(status.stream)
                .and_then(|i| i.groups.iter().find(|g| *g.name == *status.group));
            let mut m = HandlerMetrics {
                handler: path.clone(),
                stream: status.stream.to_owned(),
                group: status.group.to_string(),
                handled: 0,
                failed: 0,
                retried: 0,
                dead_lettered: 0,
                dropped: 0,
                calls: 0,
                latency_p50_ms: None,
                latency_p90_ms: None,
                latency_p99_ms: None,
                lag: group.and_then(|g| g.lag),
                pending: group.map_or(0, |g| g.pending),
            };
            sampler.sample(&status.counts, &mut m);
            handlers.push(m);
        }
        let event = RuntimeMetrics {
            service: source.service.clone(),
            consumer: source.consumer.clone(),
            at_ms: crate::envelope::now_ms(),
            interval_ms: u64::try_from(every.as_millis()).unwrap_or(u64::MAX),
            handlers,
        };
        if let Err(e) = source.publisher.publish(&event).await
            && let Some(held) = warn_every.check()
        {
            tracing::warn!(error = %e, repeated = held, "cannot publish to the metrics stream; trying again next interval");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_the_upper_bounds_of_their_buckets_over_the_interval() {
        let counts = Counts::default();
        counts.time_calls();
        for _ in 0..90 {
            counts.took(Duration::from_micros(100)); // bucket 7: < 128 µs
        }
        for _ in 0..10 {
            counts.took(Duration::from_millis(3)); // bucket 12: < 4096 µs
        }
        let mut m = HandlerMetrics {
            handler: "h".into(),
            stream: "s".into(),
            group: "g".into(),
            handled: 0,
            failed: 0,
            retried: 0,
            dead_lettered: 0,
            dropped: 0,
            calls: 0,
            latency_p50_ms: None,
            latency_p90_ms: None,
            latency_p99_ms: None,
            lag: None,
            pending: 0,
        };
        let mut s = Sampler::new();
        s.sample(&counts, &mut m);
        assert_eq!(m.calls, 100);
        assert_eq!(m.latency_p50_ms, Some(0.128));
        assert_eq!(m.latency_p90_ms, Some(0.128));
        assert_eq!(m.latency_p99_ms, Some(4.096));
        // The next interval has no calls.
        s.sample(&counts, &mut m);
        assert_eq!((m.calls, m.latency_p50_ms), (0, None));
    }

    #[test]
    fn call_times_are_not_recorded_unless_asked() {
        let counts = Counts::default();
        counts.took(Duration::from_millis(1));
        assert_eq!(counts.buckets().iter().sum::<u64>(), 0);
    }
}
