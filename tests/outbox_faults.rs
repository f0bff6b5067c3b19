//! The outbox and the inbox under faults: writers commit business rows with staged events at a
//! steady rate (and roll some back after staging) while the service processes — each a relay
//! and an inbox handler — are killed with SIGKILL and restarted, and Redis is killed and
//! restarted. Then: every committed event was handled, no rolled-back event was ever published,
//! and the side-effect table holds each event once although deliveries repeat. Figures are
//! printed (`--nocapture`) and kept in `docs/RELIABILITY.md`.

#[path = "../opsc-events-postgres/tests/common/mod.rs"]
mod pg;

use std::collections::{BTreeSet, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use opsc_events::prelude::*;
use opsc_events_postgres::Outbox;
use opsc_events_testkit::{RedisServer, ServerOptions};
use pg::{TestDb, eventually, published, reader};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::Mutex;

/// The fault service's event (same stream, name, version and fields).
#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "outbox-faults", name = "work", version = 1)]
struct Work {
    seq: i64,
}

const SERVICES: usize = 3;
const WRITERS: usize = 2;
/// Each writer commits about this many transactions a second.
const WRITER_RATE: u64 = 150;
const CHAOS: Duration = Duration::from_secs(16);

fn spawn_service(redis: &str, db: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_outbox-fault-service"))
        .args([redis, db])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the fault service")
}

#[derive(Default)]
struct Outcomes {
    committed: BTreeSet<i64>,
    rolled_back: BTreeSet<i64>,
}

async fn writer(
    pool: PgPool,
    next: Arc<AtomicI64>,
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Outcomes>>,
) {
    let outbox = Outbox::new("outbox-faults");
    let period = Duration::from_micros(1_000_000 / WRITER_RATE);
    let mut tick = tokio::time::interval(period);
    while !stop.load(Ordering::SeqCst) {
        tick.tick().await;
        let seq = next.fetch_add(1, Ordering::SeqCst);
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("INSERT INTO business (seq) VALUES ($1)")
            .bind(seq)
            .execute(&mut *tx)
            .await
            .unwrap();
        outbox.stage(&mut tx, &Work { seq }).await.unwrap();
        // One in five changes its mind after staging.
        if seq % 5 == 4 {
            tx.rollback().await.unwrap();
            out.lock().await.rolled_back.insert(seq);
        } else {
            tx.commit().await.unwrap();
            out.lock().await.committed.insert(seq);
        }
    }
}

async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_committed_event_is_applied_once_and_no_rolled_back_one_is_published() {
    let db = TestDb::create().await;
    sqlx::raw_sql(
        "CREATE TABLE business (seq BIGINT PRIMARY KEY);
         CREATE TABLE deliveries (seq BIGINT NOT NULL, event_id UUID NOT NULL);
         CREATE TABLE effects (seq BIGINT NOT NULL, event_id UUID NOT NULL)",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    // Durable: an acknowledged XADD survives the restart (what the relay marks sent is there).
    let mut redis = RedisServer::start_with(ServerOptions::durable());
    let url = redis.url();
    let mut services: Vec<Child> = (0..SERVICES)
        .map(|_| spawn_service(&url, &db.url))
        .collect();

    let (next, stop) = (
        Arc::new(AtomicI64::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            tokio::spawn(writer(
                db.pool.clone(),
                next.clone(),
                stop.clone(),
                outcomes.clone(),
            ))
        })
        .collect();

    // Chaos: a service killed (SIGKILL) and started again every 1.5 s, round robin; Redis killed
    // and restarted once in the middle. Services that exited (Redis down at their start) are
    // started again at every tick.
    let started = Instant::now();
    let (mut kills, mut redis_restarts, mut tick) = (0, 0, 0usize);
    while started.elapsed() < CHAOS {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        tick += 1;
        let victim = &mut services[tick % SERVICES];
        let _ = victim.kill();
        let _ = victim.wait();
        kills += 1;
        *victim = spawn_service(&url, &db.url);
        if tick == 5 {
            redis.kill();
            tokio::time::sleep(Duration::from_millis(700)).await;
            redis.restart();
            redis_restarts += 1;
        }
        for s in services.iter_mut() {
            if !matches!(s.try_wait(), Ok(None)) {
                *s = spawn_service(&url, &db.url);
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }
    let out = std::mem::take(&mut *outcomes.lock().await);
    let committed = out.committed.len() as i64;

    // Every service alive again (one may have exited while Redis was down), then the backlog
    // drains: every committed event applied.
    let drained = eventually(Duration::from_secs(120), || {
        for s in services.iter_mut() {
            if !matches!(s.try_wait(), Ok(None)) {
                *s = spawn_service(&url, &db.url);
            }
        }
        let pool = db.pool.clone();
        async move { scalar(&pool, "SELECT count(DISTINCT seq) FROM effects").await >= committed }
    })
    .await;
    let rt = reader(&url).await;
    let stream: Vec<(uuid::Uuid, Work)> = published(&rt, "outbox-faults").await;
    for s in services.iter_mut() {
        let _ = s.kill();
        let _ = s.wait();
    }
    assert!(
        drained,
        "not every committed event was applied: {} of {committed}",
        scalar(&db.pool, "SELECT count(DISTINCT seq) FROM effects").await
    );

    let effects: Vec<(i64, uuid::Uuid)> = sqlx::query_as("SELECT seq, event_id FROM effects")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    let applied: BTreeSet<i64> = effects.iter().map(|(s, _)| *s).collect();
    let deliveries = scalar(&db.pool, "SELECT count(*) FROM deliveries").await;
    let mut per_event: HashMap<uuid::Uuid, usize> = HashMap::new();
    for (id, _) in &stream {
        *per_event.entry(*id).or_default() += 1;
    }
    let published_seqs: BTreeSet<i64> = stream.iter().map(|(_, w)| w.seq).collect();
    let republished = stream.len() - per_event.len();
    let rolled_back_published = published_seqs.intersection(&out.rolled_back).count();
    let business = scalar(&db.pool, "SELECT count(*) FROM business").await;
    println!(
        "outbox faults: {} transactions ({committed} committed, {} rolled back after staging) in {:?}; \
         {kills} SIGKILLs of {SERVICES} relay+consumer processes, {redis_restarts} Redis restart; \
         stream entries {} ({republished} published again after a relay crash); deliveries {deliveries}; \
         effects {} rows for {} events ({} duplicates); rolled-back events published: {rolled_back_published}",
        committed as usize + out.rolled_back.len(),
        out.rolled_back.len(),
        CHAOS,
        stream.len(),
        effects.len(),
        applied.len(),
        effects.len() - applied.len(),
    );
    assert_eq!(
        business, committed,
        "the business rows are the committed transactions"
    );
    assert_eq!(
        applied, out.committed,
        "every committed event applied, nothing else"
    );
    assert_eq!(effects.len(), applied.len(), "no event applied twice");
    assert_eq!(rolled_back_published, 0, "no rolled-back event published");
    assert!(out.committed.is_subset(&published_seqs));
    assert!(deliveries >= effects.len() as i64);
    assert_eq!(
        scalar(
            &db.pool,
            "SELECT count(*) FROM opsc_outbox WHERE sent_at IS NULL"
        )
        .await,
        0
    );
}
