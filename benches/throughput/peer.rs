//! The best Rust peer: [ruststream] 0.7 with its Redis broker `ruststream-fred` 0.7 (over the
//! `fred` client), used as its documentation shows, in its fastest configuration, on the
//! benchmark's event (`seq`, `sent_ns`, `body` padded to about `bytes`), in ruststream's own wire
//! format: one stream field `_payload` holding the body encoded by ruststream's `MsgpackCodec`.
//!
//! What is measured:
//!
//! * [`publish`]: `n` typed publishes (`message(..).to(stream).with_codec(MsgpackCodec)`) into
//!   owned transactions; clock started once the broker's pool is connected, stopped when the
//!   last `EXEC` has answered.
//! * [`consume`]: a service (`RustStream` app) with one subscription through a new consumer group
//!   created at `0`, a no-op handler and acknowledgements; clock started before the service
//!   starts, stopped when the handler has seen `n` events (it counts them, nothing more) and
//!   `XPENDING` of the group, polled every 2 ms over a separate redis-rs connection, is 0.
//!
//! Best settings found (2 cores, Redis 7.0 on loopback, n = 100 000, ~100 B events; medians of
//! 3-5 runs on a machine shared with other builds, so ±15 %):
//!
//! * Publishing: ruststream-fred has no publish-side `.pipeline()` (that step exists only on
//!   subscriptions); its one batching API is the owned transaction (`owned_transaction()`, a
//!   client-side buffer flushed as one `MULTI`/`EXEC`). Best: transactions of 1000 publishes, 4
//!   in flight (one per pooled connection, default pool of 4): ~255-300k msg/s (500 per
//!   transaction: ~215-275k; 250 × 8: ~250k; 1000 × 2: ~260k; pool 8: no change). Plain
//!   concurrent publishes, which `fred` writes to its socket back to back: 500 tasks ~170k,
//!   128 tasks ~160k, 500 futures in one `FuturesUnordered` ~145k.
//! * Consuming: the per-message path reads with a fixed `XREADGROUP COUNT 64` (`PREFETCH`, not
//!   configurable) and, without `.pipeline()`, acks each entry with its own `XACK`: 1 worker
//!   ~9k msg/s, `workers(64)` ~89k, `workers(512)` ~82k. `.pipeline()` settles a read's 64
//!   entries in one `XACK`: 1 worker ~104k, 16 ~116k, 64 ~111k, 256 ~96k, 512 ~93k. A batch
//!   handler (`&[Event]`, `.batch(n)` = `XREADGROUP COUNT n`) with `.pipeline()` acks each batch
//!   with one `XACK`: batch 500 × `workers(4)` ~220k msg/s (plateau 180-235k for batch
//!   256-2000 × 1-8 workers); without `.pipeline()` a batch is acked entry by entry, ~11k.
//!   Best: batch 500, 4 workers, pipelined ([`BATCH`] = 0 selects the best per-message setup,
//!   `.pipeline()` with 16 workers, for a like-for-like handler).
//!
//! This file as it stands, 5 runs back to back (load average ~2.5): publish 216-242k msg/s
//! (median 229k), consume 163-178k (median 172k); per-message consume at the same time ~91k.
//!
//! Wire note: ruststream's `MsgpackCodec` writes a struct as a MessagePack array (no field
//! names), so the benchmark's ~100 B event (named fields) is ~77 B here, in one entry field.
//!
//! [ruststream]: https://crates.io/crates/ruststream

use std::future::{Future, ready};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis::streams::StreamPendingReply;
use ruststream::ConnectedBroker;
use ruststream::codec::MsgpackCodec;
use ruststream_fred::stream::prelude::*;
use ruststream_fred::{ConnectedRedisBroker, RedisPublisher};
use serde::{Deserialize, Serialize};

/// Publishes per owned transaction (one `MULTI`/`EXEC`).
const TXN_SIZE: usize = 1000;
/// Transactions in flight (each on a task of its own).
const TXN_IN_FLIGHT: usize = 4;
/// `XREADGROUP COUNT` and handler batch of the best (batch-handler) setup.
pub const BATCH: usize = 500;
/// Concurrent batches (batch handler) under `.pipeline()`.
const BATCH_WORKERS: usize = 4;
/// Concurrent deliveries of the per-message handler (`BATCH` = 0) under `.pipeline()`.
const EACH_WORKERS: usize = 16;
/// Longest wait for a consume run before giving up.
const CONSUME_LIMIT: Duration = Duration::from_secs(300);

/// The benchmark's event.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PeerEvent {
    seq: u64,
    sent_ns: u64,
    body: String,
}

// What `#[derive(Outgoing)]` (feature `macros`) writes for a type without a fixed destination.
impl OutgoingDestination for PeerEvent {
    type Form = CallerName;
}

impl MessageHeaders for PeerEvent {
    type Contract = NoHeaders;
}

/// The body `events::body` of the benchmark: ~`bytes` of named-field MessagePack (70 x at 100).
fn body(bytes: usize) -> String {
    "x".repeat(bytes.saturating_sub(30).max(1))
}

async fn connect(url: &str) -> ConnectedRedisBroker {
    RedisBroker::standalone(url)
        .connect()
        .await
        .expect("ruststream-fred connects to the benchmark's Redis")
}

/// `n` events into `stream` in transactions of [`TXN_SIZE`], [`TXN_IN_FLIGHT`] at a time.
async fn publish_all(publisher: &RedisPublisher, stream: &str, n: usize, bytes: usize) {
    let body = body(bytes);
    let chunks = n.div_ceil(TXN_SIZE);
    let mut tasks = tokio::task::JoinSet::new();
    for first in 0..TXN_IN_FLIGHT.min(chunks) {
        let (publisher, stream, body) = (publisher.clone(), stream.to_owned(), body.clone());
        tasks.spawn(async move {
            for chunk in (first..chunks).step_by(TXN_IN_FLIGHT) {
                let mut txn = publisher
                    .owned_transaction()
                    .await
                    .expect("ruststream opens a transaction");
                for seq in chunk * TXN_SIZE..((chunk + 1) * TXN_SIZE).min(n) {
                    let event = PeerEvent {
                        seq: seq as u64,
                        sent_ns: 0,
                        body: body.clone(),
                    };
                    txn.message(&event)
                        .to(stream.as_str())
                        .with_codec(MsgpackCodec)
                        .publish()
                        .await
                        .expect("ruststream buffers a publish");
                }
                txn.commit()
                    .await
                    .expect("ruststream commits a transaction");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a publishing task completes");
    }
}

/// Publishes `n` events of about `bytes` bytes to stream `stream` with ruststream's best
/// publishing setup; returns msg/s (the clock starts after the client is connected).
pub async fn publish(url: &str, stream: &str, n: usize, bytes: usize) -> f64 {
    let broker = connect(url).await;
    let publisher = broker.publisher();
    let start = Instant::now();
    publish_all(&publisher, stream, n, bytes).await;
    let rate = n as f64 / start.elapsed().as_secs_f64();
    broker.shutdown().await.expect("ruststream-fred shuts down");
    rate
}

/// Writes `n` events of about `bytes` bytes into `stream` in ruststream's wire format
/// (so that `consume` has a backlog), as fast as convenient (not measured).
pub async fn fill(url: &str, stream: &str, n: usize, bytes: usize) {
    let broker = connect(url).await;
    publish_all(&broker.publisher(), stream, n, bytes).await;
    broker.shutdown().await.expect("ruststream-fred shuts down");
}

/// The no-op per-message handler; it only counts its calls.
#[derive(Debug)]
struct Each(Arc<AtomicUsize>);

impl Handle<PeerEvent> for Each {
    fn handle(
        &self,
        _event: &PeerEvent,
        _outs: &(),
        _ctx: &mut Context<'_>,
    ) -> impl Future<Output = Result<(), HandlerOutcome>> + Send {
        self.0.fetch_add(1, Ordering::Relaxed);
        ready(Ok(()))
    }
}

/// The no-op batch handler; it only counts the events it is handed.
#[derive(Debug)]
struct Batch(Arc<AtomicUsize>);

impl Handle<[PeerEvent]> for Batch {
    fn handle(
        &self,
        events: &[PeerEvent],
        _outs: &(),
        _ctx: &mut Context<'_>,
    ) -> impl Future<Output = Result<(), Vec<HandlerOutcome>>> + Send {
        self.0.fetch_add(events.len(), Ordering::Relaxed);
        ready(Ok(()))
    }
}

/// Consumes `n` events already in stream `stream` (published beforehand by `fill`) through a
/// new consumer group named `group` (created from the start of the stream), with a no-op
/// handler and acknowledgements, in ruststream's best consuming setup; returns msg/s measured
/// from the moment the consumer is started until the n-th ack has been done; stops the consumer
/// cleanly before returning.
///
/// `batch`: 0 for a per-message handler (the same programming model as the framework's
/// handlers), else a batch handler reading `batch` entries at a time ([`BATCH`] is the best).
pub async fn consume(url: &str, stream: &str, group: &str, n: usize, batch: usize) -> f64 {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let source = RedisStream::new(stream)
        .group(group)
        .start_id(StreamStart::Beginning);
    let app = RustStream::new(AppInfo::new("peer", "0.1.0")).with_broker_codec(
        RedisBroker::standalone(url),
        MsgpackCodec,
        move |b| match NonZeroUsize::new(batch) {
            Some(size) => {
                b.include(
                    subscriber(source, Batch(counted))
                        .batch(size)
                        .workers(NonZeroUsize::new(BATCH_WORKERS).expect("BATCH_WORKERS > 0"))
                        .pipeline()
                        .build(),
                );
            }
            None => {
                b.include(
                    subscriber(source, Each(counted))
                        .workers(NonZeroUsize::new(EACH_WORKERS).expect("EACH_WORKERS > 0"))
                        .pipeline()
                        .build(),
                );
            }
        },
    );
    let mut check = redis::Client::open(url)
        .expect("a valid Redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("redis-rs connects to the benchmark's Redis");

    let start = Instant::now();
    let running = app.start().await.expect("the ruststream service starts");
    let drained = async {
        loop {
            tokio::time::sleep(Duration::from_millis(2)).await;
            if calls.load(Ordering::Relaxed) < n {
                continue;
            }
            let pending: StreamPendingReply = check
                .xpending(stream, group)
                .await
                .expect("XPENDING answers");
            if pending.count() == 0 {
                break;
            }
        }
    };
    tokio::time::timeout(CONSUME_LIMIT, drained)
        .await
        .expect("ruststream handled and acknowledged every event within the limit");
    let rate = n as f64 / start.elapsed().as_secs_f64();
    running
        .shutdown()
        .await
        .expect("the ruststream service stops");
    rate
}
