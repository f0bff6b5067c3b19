//! The events and handlers of the benchmark. Every scenario has its own stream and selects its
//! handlers with `.only(..)` by module, so the runtimes of one run never share a group.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

/// Nanoseconds since the first call in this process (a monotonic clock shared by publisher and
/// handlers, for publish → handler-start latency).
pub fn now_ns() -> u64 {
    static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(std::time::Instant::now);
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The body of an event whose MessagePack payload is about `bytes` long.
pub fn body(bytes: usize) -> String {
    // `seq`, `sent_ns`, `body` and the map and string headers take about 30 bytes.
    "x".repeat(bytes.saturating_sub(30).max(1))
}

/// Defines an event type of the benchmark's shape on `$stream`.
macro_rules! bench_event {
    ($(#[$doc:meta])* $name:ident, $stream:tt) => {
        $(#[$doc])*
        #[derive(Event, Serialize, Deserialize, Debug, Clone)]
        #[event(stream = $stream)]
        pub struct $name {
            /// Sequence number.
            pub seq: u64,
            /// [`now_ns`] just before the publish (latency scenarios).
            pub sent_ns: u64,
            /// Padding to the payload size.
            pub body: String,
        }

        impl $name {
            /// `n` events with bodies padding the payload to about `bytes`.
            #[allow(dead_code)] // the memory scenario's types are written as raw fields
            pub fn batch(n: usize, bytes: usize) -> Vec<$name> {
                let body = body(bytes);
                (0..n as u64)
                    .map(|seq| $name { seq, sent_ns: 0, body: body.clone() })
                    .collect()
            }

            /// `n` copies of one event (`seq` 0): each payload is byte for byte the one the
            /// hand-written baselines write.
            #[allow(dead_code)] // not every scenario uses it
            pub fn same(n: usize, bytes: usize) -> Vec<$name> {
                vec![$name { seq: 0, sent_ns: 0, body: body(bytes) }; n]
            }
        }
    };
}

bench_event!(
    /// Publish scenarios (no handler).
    Published,
    "bench_pub"
);
bench_event!(
    /// End to end: pre-filled backlog → no-op handler → ack.
    Flowing,
    "bench_e2e"
);
bench_event!(
    /// End to end on a stream whose priority lanes are in use but empty.
    LaneFlowing,
    "bench_e2e_lanes"
);
bench_event!(
    /// Latency at a fixed rate.
    Probe,
    "bench_lat"
);
bench_event!(
    /// Fails once, then succeeds.
    Flaky,
    "bench_retry"
);
bench_event!(
    /// Fails permanently: dead-lettered.
    Doomed,
    "bench_dlq"
);

/// Latencies (ns) seen by the latency handler, after the warm-up.
#[derive(Clone, Default)]
pub struct Latencies {
    /// Events whose `seq` is below this are not recorded.
    pub warmup: Arc<AtomicU64>,
    pub samples: Arc<Mutex<Vec<u64>>>,
    pub calls: Arc<AtomicU64>,
}

pub mod e2e64 {
    use super::*;

    /// Calls so far (a process-wide counter: no extractor, so the handler stays a no-op for the
    /// framework; the benchmark watches it instead of polling Redis while the run lasts).
    pub static CALLS: AtomicU64 = AtomicU64::new(0);

    #[handler(stream = "bench_e2e", concurrency = 64, start = "earliest")]
    pub async fn noop64(_event: Flowing) {
        CALLS.fetch_add(1, Ordering::Relaxed);
    }
}

pub mod e2e1 {
    use super::*;

    /// Calls so far, as for `e2e64`.
    pub static CALLS: AtomicU64 = AtomicU64::new(0);

    /// The default concurrency (1).
    #[handler(stream = "bench_e2e", start = "earliest")]
    pub async fn noop1(_event: Flowing) {
        CALLS.fetch_add(1, Ordering::Relaxed);
    }
}

pub mod e2e_lanes {
    use super::*;

    /// Calls so far, as for `e2e64` (the priority section: a stream with lanes in use).
    pub static CALLS: AtomicU64 = AtomicU64::new(0);

    #[handler(stream = "bench_e2e_lanes", concurrency = 64, start = "earliest")]
    pub async fn noop_lanes(_event: LaneFlowing) {
        CALLS.fetch_add(1, Ordering::Relaxed);
    }
}

pub mod e2e_batch {
    use super::*;
    use opsc_events::BatchContext;

    /// Events handled so far by the batch handlers (summed over calls), as for `e2e64`.
    pub static EVENTS: AtomicU64 = AtomicU64::new(0);

    /// A no-op batch handler, one call at a time, batches of up to `peer::BATCH`.
    #[handler(stream = "bench_e2e", batch = 500, start = "earliest")]
    pub async fn noop_batch1(events: Vec<Flowing>, _ctx: BatchContext) {
        EVENTS.fetch_add(events.len() as u64, Ordering::Relaxed);
    }
}

pub mod e2e_batch4 {
    use super::*;

    /// As `e2e_batch`, with up to 4 batch calls in flight (ruststream's best: 4 workers).
    #[handler(stream = "bench_e2e", batch = 500, concurrency = 4, start = "earliest")]
    pub async fn noop_batch4(events: Vec<Flowing>) {
        super::e2e_batch::EVENTS.fetch_add(events.len() as u64, Ordering::Relaxed);
    }
}

pub mod lat {
    use super::*;

    #[handler(stream = "bench_lat", concurrency = 64)]
    pub async fn probe(event: Probe, State(lat): State<Latencies>) {
        let seen = now_ns().saturating_sub(event.sent_ns);
        if event.seq >= lat.warmup.load(Ordering::Relaxed) {
            lat.samples.lock().expect("not poisoned").push(seen);
        }
        lat.calls.fetch_add(1, Ordering::Relaxed);
    }
}

pub mod retry {
    use super::*;

    #[handler(
        stream = "bench_retry",
        concurrency = 512,
        retries = 3,
        backoff = "none",
        start = "earliest"
    )]
    pub async fn fails_once(_event: Flaky, ctx: Context) -> Result<(), HandlerError> {
        if ctx.attempt() == 1 {
            return Err(HandlerError::retryable("the first attempt fails"));
        }
        SUCCEEDED.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Second attempts so far.
    pub static SUCCEEDED: AtomicU64 = AtomicU64::new(0);
}

pub mod dlq {
    use super::*;

    #[handler(stream = "bench_dlq", concurrency = 512, start = "earliest")]
    pub async fn always_fails(_event: Doomed) -> Result<(), HandlerError> {
        CALLS.fetch_add(1, Ordering::Relaxed);
        Err(HandlerError::permanent("this event can never be handled"))
    }

    /// Calls so far.
    pub static CALLS: AtomicU64 = AtomicU64::new(0);
}

/// Counts calls of the memory scenario's handlers.
#[derive(Clone, Default)]
pub struct Calls(pub Arc<AtomicU64>);

/// One handler of the memory scenario, in module `$module` with its own group. (The fn name
/// is written here rather than passed in: `#[handler]` expanded inside a `macro_rules!` needs
/// the fn's name and its parameters to come from the same macro context.)
macro_rules! rss_handler {
    ($module:ident, $event:ident, $stream:tt, $group:tt) => {
        pub mod $module {
            use super::*;

            #[handler(stream = $stream, group = $group, concurrency = 32, start = "earliest")]
            pub async fn handle(_event: $event, State(calls): State<Calls>) {
                calls.0.fetch_add(1, Ordering::Relaxed);
            }
        }
    };
}

/// One stream of the memory scenario: its event type and ten handlers (ten groups).
macro_rules! rss_stream {
    ($event:ident, $stream:tt, [$($module:ident $group:tt),*]) => {
        bench_event!($event, $stream);
        $(rss_handler!($module, $event, $stream, $group);)*
    };
}

/// The streams of the memory scenario (10 streams × 10 handlers = 100 handlers).
pub const RSS_STREAMS: [&str; 10] = [
    "rss0", "rss1", "rss2", "rss3", "rss4", "rss5", "rss6", "rss7", "rss8", "rss9",
];

rss_stream!(Rss0, "rss0", [rss0_h0 "bench.rss0.h0", rss0_h1 "bench.rss0.h1", rss0_h2 "bench.rss0.h2", rss0_h3 "bench.rss0.h3", rss0_h4 "bench.rss0.h4", rss0_h5 "bench.rss0.h5", rss0_h6 "bench.rss0.h6", rss0_h7 "bench.rss0.h7", rss0_h8 "bench.rss0.h8", rss0_h9 "bench.rss0.h9"]);
rss_stream!(Rss1, "rss1", [rss1_h0 "bench.rss1.h0", rss1_h1 "bench.rss1.h1", rss1_h2 "bench.rss1.h2", rss1_h3 "bench.rss1.h3", rss1_h4 "bench.rss1.h4", rss1_h5 "bench.rss1.h5", rss1_h6 "bench.rss1.h6", rss1_h7 "bench.rss1.h7", rss1_h8 "bench.rss1.h8", rss1_h9 "bench.rss1.h9"]);
rss_stream!(Rss2, "rss2", [rss2_h0 "bench.rss2.h0", rss2_h1 "bench.rss2.h1", rss2_h2 "bench.rss2.h2", rss2_h3 "bench.rss2.h3", rss2_h4 "bench.rss2.h4", rss2_h5 "bench.rss2.h5", rss2_h6 "bench.rss2.h6", rss2_h7 "bench.rss2.h7", rss2_h8 "bench.rss2.h8", rss2_h9 "bench.rss2.h9"]);
rss_stream!(Rss3, "rss3", [rss3_h0 "bench.rss3.h0", rss3_h1 "bench.rss3.h1", rss3_h2 "bench.rss3.h2", rss3_h3 "bench.rss3.h3", rss3_h4 "bench.rss3.h4", rss3_h5 "bench.rss3.h5", rss3_h6 "bench.rss3.h6", rss3_h7 "bench.rss3.h7", rss3_h8 "bench.rss3.h8", rss3_h9 "bench.rss3.h9"]);
rss_stream!(Rss4, "rss4", [rss4_h0 "bench.rss4.h0", rss4_h1 "bench.rss4.h1", rss4_h2 "bench.rss4.h2", rss4_h3 "bench.rss4.h3", rss4_h4 "bench.rss4.h4", rss4_h5 "bench.rss4.h5", rss4_h6 "bench.rss4.h6", rss4_h7 "bench.rss4.h7", rss4_h8 "bench.rss4.h8", rss4_h9 "bench.rss4.h9"]);
rss_stream!(Rss5, "rss5", [rss5_h0 "bench.rss5.h0", rss5_h1 "bench.rss5.h1", rss5_h2 "bench.rss5.h2", rss5_h3 "bench.rss5.h3", rss5_h4 "bench.rss5.h4", rss5_h5 "bench.rss5.h5", rss5_h6 "bench.rss5.h6", rss5_h7 "bench.rss5.h7", rss5_h8 "bench.rss5.h8", rss5_h9 "bench.rss5.h9"]);
rss_stream!(Rss6, "rss6", [rss6_h0 "bench.rss6.h0", rss6_h1 "bench.rss6.h1", rss6_h2 "bench.rss6.h2", rss6_h3 "bench.rss6.h3", rss6_h4 "bench.rss6.h4", rss6_h5 "bench.rss6.h5", rss6_h6 "bench.rss6.h6", rss6_h7 "bench.rss6.h7", rss6_h8 "bench.rss6.h8", rss6_h9 "bench.rss6.h9"]);
rss_stream!(Rss7, "rss7", [rss7_h0 "bench.rss7.h0", rss7_h1 "bench.rss7.h1", rss7_h2 "bench.rss7.h2", rss7_h3 "bench.rss7.h3", rss7_h4 "bench.rss7.h4", rss7_h5 "bench.rss7.h5", rss7_h6 "bench.rss7.h6", rss7_h7 "bench.rss7.h7", rss7_h8 "bench.rss7.h8", rss7_h9 "bench.rss7.h9"]);
rss_stream!(Rss8, "rss8", [rss8_h0 "bench.rss8.h0", rss8_h1 "bench.rss8.h1", rss8_h2 "bench.rss8.h2", rss8_h3 "bench.rss8.h3", rss8_h4 "bench.rss8.h4", rss8_h5 "bench.rss8.h5", rss8_h6 "bench.rss8.h6", rss8_h7 "bench.rss8.h7", rss8_h8 "bench.rss8.h8", rss8_h9 "bench.rss8.h9"]);
rss_stream!(Rss9, "rss9", [rss9_h0 "bench.rss9.h0", rss9_h1 "bench.rss9.h1", rss9_h2 "bench.rss9.h2", rss9_h3 "bench.rss9.h3", rss9_h4 "bench.rss9.h4", rss9_h5 "bench.rss9.h5", rss9_h6 "bench.rss9.h6", rss9_h7 "bench.rss9.h7", rss9_h8 "bench.rss9.h8", rss9_h9 "bench.rss9.h9"]);

/// The entry fields of one event of the memory scenario's stream `i`, as the framework encodes
/// them (the parent fills the backlog with copies).
pub fn rss_fields(i: usize, bytes: usize) -> Fields {
    let meta = Metadata::new("bench");
    let b = body(bytes);
    macro_rules! enc {
        ($t:ident) => {
            envelope::encode(
                &$t {
                    seq: 0,
                    sent_ns: 0,
                    body: b,
                },
                &meta,
            )
        };
    }
    let entry = match i {
        0 => enc!(Rss0),
        1 => enc!(Rss1),
        2 => enc!(Rss2),
        3 => enc!(Rss3),
        4 => enc!(Rss4),
        5 => enc!(Rss5),
        6 => enc!(Rss6),
        7 => enc!(Rss7),
        8 => enc!(Rss8),
        _ => enc!(Rss9),
    }
    .expect("encodes");
    owned(&entry)
}

/// Entry fields, owned: `(name, value)`.
pub type Fields = Vec<(String, Vec<u8>)>;

fn owned(entry: &envelope::EncodedEvent) -> Fields {
    entry
        .fields()
        .map(|(k, v)| (k.to_owned(), v.to_vec()))
        .collect()
}

fn published(bytes: usize) -> Published {
    Published {
        seq: 0,
        sent_ns: 0,
        body: body(bytes),
    }
}

/// The entry fields of one `Published` event of about `bytes` of payload, as the framework
/// writes them (wire format v2: one field).
pub fn published_fields(bytes: usize) -> Fields {
    owned(&envelope::encode(&published(bytes), &Metadata::new("bench")).expect("encodes"))
}

/// The same event's payload bytes (its MessagePack, exactly what the framework puts after its
/// header) alone in one field: the least that moves the event — the baseline of SPEC §10.
pub fn payload_fields(bytes: usize) -> Fields {
    vec![(
        "data".to_owned(),
        rmp_serde::to_vec_named(&published(bytes)).expect("encodes"),
    )]
}

/// Layouts that were candidates for wire format v2, written into the hand-written loop to
/// choose by measurement (`docs/DESIGN.md`): the same payload bytes and metadata each time.
pub fn layout_candidates(bytes: usize) -> Vec<(&'static str, Fields)> {
    let v2 = published_fields(bytes);
    let (name, value) = v2[0].clone();
    let payload = payload_fields(bytes).remove(0).1;
    // The v2 value is format byte, header length, header, payload: split it after the header.
    let header_end = value.len() - payload.len();
    let v1 = owned(
        &envelope::encode_as(
            &published(bytes),
            &Metadata::new("bench"),
            opsc_events::WireFormat::V1,
        )
        .expect("encodes"),
    );
    vec![
        (
            "payload alone, 1 field (the baseline)",
            payload_fields(bytes),
        ),
        ("v2: `type@version` → header + payload, 1 field", v2.clone()),
        (
            "`type@version` → header, `data` → payload, 2 fields",
            vec![
                (name.clone(), value[..header_end].to_vec()),
                ("data".to_owned(), payload.clone()),
            ],
        ),
        (
            "`event_type`, `meta` (header), `data`, 3 fields",
            vec![
                ("event_type".to_owned(), b"published".to_vec()),
                ("meta".to_owned(), value[..header_end].to_vec()),
                ("data".to_owned(), payload),
            ],
        ),
        ("v1: 8 text fields", v1),
    ]
}
bench_event!(
    /// Delayed publishing: scheduled, then moved into the stream.
    Later,
    "bench_delayed"
);
