//! The outbox's cost (BENCHMARKS.md § Outbox): `cargo bench -p opsc-events-postgres --bench
//! outbox` against a private redis-server and a fresh database on the PostgreSQL at
//! 127.0.0.1:5432 (as the tests). `OPSC_BENCH_QUICK=1` for a run at a twenty-fifth of the
//! sizes; `cargo test` runs it once at a hundredth as a smoke check.
//!
//! 1. Relay throughput: rows already committed, then one relay publishes them all (staged →
//!    published, events per second), for batch sizes 64 and 256.
//! 2. Staging cost: one-event transactions committed back to back, with and without a staged
//!    event.
//! 3. Latency at 1 k events/s: one-event transactions committed at a steady 1,000 per second
//!    with a relay running; the time from the start of the transaction (begin, stage, commit)
//!    to the entry being readable in Redis (a blocking `XREAD`), against the same from calling
//!    `publish` directly.
//!
//! `OPSC_BENCH_ONLY=relay,staging,latency` runs only the sections named.

// Bench code: the support module is shared with the tests; unwrapping is how a bench fails.
#![allow(unreachable_pub, clippy::unwrap_used, missing_debug_implementations)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{TestDb, reader};
use opsc_events::prelude::*;
use opsc_events_postgres::{Outbox, Relay, RelayConfig};
use opsc_events_testkit::RedisServer;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "bench-outbox", name = "asset_created", version = 1)]
struct AssetCreated {
    asset_id: i64,
    hostname: String,
    tags: Vec<String>,
}

fn asset(i: i64) -> AssetCreated {
    AssetCreated {
        asset_id: i,
        hostname: format!("host-{i}.example.net"),
        tags: vec!["prod".into(), format!("rack-{}", i % 16)],
    }
}

const STREAM: &str = "bench-outbox";

/// How much to run: `cargo bench` passes `--bench`; `cargo test --all-targets` (CI) does not,
/// and gets a smoke check at a hundredth of the sizes.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Full,
    Quick,
    Smoke,
}

fn mode() -> Mode {
    if !std::env::args().any(|a| a == "--bench") {
        Mode::Smoke
    } else if std::env::var("OPSC_BENCH_QUICK").is_ok_and(|v| v == "1") {
        Mode::Quick
    } else {
        Mode::Full
    }
}

/// `full` scaled down for quick runs (a twenty-fifth) and smoke checks (a hundredth).
fn size(full: u64) -> u64 {
    match mode() {
        Mode::Full => full,
        Mode::Quick => (full / 25).max(1),
        Mode::Smoke => (full / 100).max(1),
    }
}

async fn relay_throughput(batch: usize, n: i64) {
    let (db, redis) = (TestDb::create().await, RedisServer::start());
    let rt = reader(&redis.url()).await;
    let outbox = Outbox::for_publisher(&rt.publisher());
    let events: Vec<AssetCreated> = (0..n).map(asset).collect();
    for chunk in events.chunks(500) {
        let mut tx = db.pool.begin().await.unwrap();
        outbox.stage_all(&mut tx, chunk).await.unwrap();
        tx.commit().await.unwrap();
    }
    let config = RelayConfig {
        batch_size: batch,
        ..RelayConfig::default()
    };
    let relay = Relay::new(db.pool.clone(), rt.publisher(), config);
    let started = Instant::now();
    let published = relay.relay_once().await.unwrap();
    let took = started.elapsed();
    assert_eq!(published as i64, n);
    println!(
        "relay throughput   batch {batch:>3}: {n} rows staged → published in {:>6.0} ms = {:>7.0} events/s",
        took.as_secs_f64() * 1e3,
        n as f64 / took.as_secs_f64()
    );
}

async fn staging_cost(n: i64) {
    let db = TestDb::create().await;
    sqlx::raw_sql("CREATE TABLE assets (id BIGINT PRIMARY KEY, hostname TEXT)")
        .execute(&db.pool)
        .await
        .unwrap();
    let outbox = Outbox::new("bench");
    for staged in [false, true] {
        let started = Instant::now();
        for i in 0..n {
            let id = i + if staged { n } else { 0 };
            let mut tx = db.pool.begin().await.unwrap();
            sqlx::query("INSERT INTO assets (id, hostname) VALUES ($1, $2)")
                .bind(id)
                .bind("host")
                .execute(&mut *tx)
                .await
                .unwrap();
            if staged {
                outbox.stage(&mut tx, &asset(id)).await.unwrap();
            }
            tx.commit().await.unwrap();
        }
        let per = started.elapsed() / n as u32;
        println!(
            "staging cost       one-row transaction {:<16} {:>7.1} µs each ({:>6.0} tx/s)",
            if staged { "+ staged event:" } else { "alone:" },
            per.as_secs_f64() * 1e6,
            1.0 / per.as_secs_f64()
        );
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Entries of `bench-outbox` as they arrive, by asset id, with the instant each was read.
async fn watch_arrivals(url: String, prefix_key: String, until: usize) -> HashMap<i64, Instant> {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut last = "0-0".to_owned();
    let mut seen = HashMap::new();
    while seen.len() < until {
        // Short blocks: the client's response timeout is shorter than a long one.
        let reply: Option<redis::streams::StreamReadReply> = redis::cmd("XREAD")
            .arg("BLOCK")
            .arg(100)
            .arg("STREAMS")
            .arg(&prefix_key)
            .arg(&last)
            .query_async(&mut conn)
            .await
            .unwrap();
        let now = Instant::now();
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            for entry in key.ids {
                let fields = entry
                    .map
                    .iter()
                    .map(|(k, v)| match v {
                        redis::Value::BulkString(b) => (k.as_bytes(), b.as_slice()),
                        _ => (k.as_bytes(), &[][..]),
                    })
                    .collect::<Vec<_>>();
                let env = Envelope::from_fields(fields).unwrap();
                let event: AssetCreated = envelope::decode_event(&env).unwrap();
                seen.entry(event.asset_id).or_insert(now);
                last = entry.id;
            }
        }
    }
    seen
}

async fn latency(rate: u64, events: u64) {
    let (db, redis) = (TestDb::create().await, RedisServer::start());
    let rt = reader(&redis.url()).await;
    let key = rt.keys().events(STREAM);
    let n = events as usize;
    for via_outbox in [false, true] {
        // A fresh stream per run: the ids restart at 0.
        let _: () = redis::cmd("DEL")
            .arg(&key)
            .query_async(
                &mut redis::Client::open(redis.url())
                    .unwrap()
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap(),
            )
            .await
            .unwrap();
        let watcher = tokio::spawn(watch_arrivals(redis.url(), key.clone(), n));
        let stop = CancellationToken::new();
        let relay = if via_outbox {
            let config = RelayConfig::default();
            Some(tokio::spawn(
                Relay::new(db.pool.clone(), rt.publisher(), config).run(stop.clone()),
            ))
        } else {
            None
        };
        let outbox = Outbox::for_publisher(&rt.publisher());
        let publisher = rt.publisher();
        let done: Arc<Mutex<HashMap<i64, (Instant, Instant)>>> = Arc::default();
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut writers = Vec::new();
        for i in 0..n as i64 {
            tick.tick().await;
            let (pool, outbox, publisher, done) = (
                db.pool.clone(),
                outbox.clone(),
                publisher.clone(),
                done.clone(),
            );
            // Each transaction on its own task, as concurrent requests of a service would be.
            writers.push(tokio::spawn(async move {
                // From the moment the service decides: before the commit, or the publish.
                let start = Instant::now();
                if via_outbox {
                    let mut tx = pool.begin().await.unwrap();
                    outbox.stage(&mut tx, &asset(i)).await.unwrap();
                    tx.commit().await.unwrap();
                } else {
                    publisher.publish(&asset(i)).await.unwrap();
                }
                done.lock().await.insert(i, (start, Instant::now()));
            }));
        }
        for w in writers {
            w.await.unwrap();
        }
        let arrivals = tokio::time::timeout(Duration::from_secs(60), watcher)
            .await
            .expect("every event arrives")
            .unwrap();
        stop.cancel();
        if let Some(r) = relay {
            r.await.unwrap();
        }
        let done = done.lock().await;
        let mut lat: Vec<Duration> = done
            .iter()
            .map(|(i, (start, _))| arrivals[i].saturating_duration_since(*start))
            .collect();
        let mut after: Vec<Duration> = done
            .iter()
            .map(|(i, (_, returned))| arrivals[i].saturating_duration_since(*returned))
            .collect();
        lat.sort();
        after.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "latency at {rate}/s  {:<36} p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>6.2} ms  ({n} events)",
            if via_outbox {
                "begin..commit → in Redis (outbox):"
            } else {
                "publish() → in Redis (direct):"
            },
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99)),
            ms(lat.last().copied().unwrap_or_default()),
        );
        if via_outbox {
            println!(
                "latency at {rate}/s  {:<36} p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>6.2} ms",
                "commit returned → in Redis (relay):",
                ms(percentile(&after, 0.5)),
                ms(percentile(&after, 0.99)),
                ms(after.last().copied().unwrap_or_default()),
            );
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let only = std::env::var("OPSC_BENCH_ONLY").unwrap_or_default();
    let run = |section: &str| only.is_empty() || only.split(',').any(|s| s == section);
    if mode() == Mode::Smoke {
        println!(
            "smoke check (`cargo test`): the figures mean nothing; run `cargo bench -p opsc-events-postgres --bench outbox`"
        );
    }
    if run("relay") {
        for batch in [64, 256] {
            relay_throughput(batch, size(50_000) as i64).await;
        }
    }
    if run("staging") {
        staging_cost(size(5_000) as i64).await;
    }
    if run("latency") {
        // 10 s at 1,000 events/s; a fraction of a second in smoke checks.
        latency(1000, size(10_000)).await;
    }
}
