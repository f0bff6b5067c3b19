//! The outbox against a real PostgreSQL and a private redis-server: what is staged in a
//! committed transaction is published once, in commit order per stream; what is rolled back
//! never is; relays in parallel neither duplicate nor reorder; LISTEN/NOTIFY wakes them; sent
//! rows leave after the retention.

// Test code: every `pub` of a test binary is unreachable, and unwrapping is how a test fails.
#![allow(unreachable_pub, clippy::unwrap_used, missing_debug_implementations)]

mod common;

use std::time::Duration;

use common::{TestDb, eventually, published, reader};
use opsc_events::prelude::*;
use opsc_events_postgres::{Outbox, Relay, RelayConfig, RuntimeBuilderExt};
use opsc_events_testkit::RedisServer;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "outbox-assets", name = "asset_created", version = 1)]
struct AssetCreated {
    asset_id: i64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "outbox-users", name = "user_registered", version = 1)]
struct UserRegistered {
    user: String,
}

const ASSETS: &str = "outbox-assets";

fn relay(db: &TestDb, rt: &Runtime, config: RelayConfig) -> Relay {
    Relay::new(db.pool.clone(), rt.publisher(), config)
}

async fn unsent(db: &TestDb) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM opsc_outbox WHERE sent_at IS NULL")
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_committed_stage_is_published_with_the_id_fixed_at_staging() {
    let (db, redis) = (TestDb::create().await, RedisServer::start());
    let rt = reader(&redis.url()).await;
    let outbox = Outbox::for_publisher(&rt.publisher());

    let mut tx = db.pool.begin().await.unwrap();
    let id = outbox
        .stage(&mut tx, &AssetCreated { asset_id: 7 })
        .await
        .unwrap();
    assert!(published::<AssetCreated>(&rt, ASSETS).await.is_empty());
    // Not committed yet: the relay sees nothing.
    assert_eq!(
        relay(&db, &rt, RelayConfig::default())
            .relay_once()
            .await
            .unwrap(),
        0
    );
    tx.commit().await.unwrap();

    assert_eq!(
        relay(&db, &rt, RelayConfig::default())
            .relay_once()
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        published::<AssetCreated>(&rt, ASSETS).await,
        vec![(id, AssetCreated { asset_id: 7 })]
    );
    // Marked sent with its entry id: a second pass publishes nothing.
    assert_eq!(unsent(&db).await, 0);
    let entry_id: Option<String> = sqlx::query_scalar("SELECT entry_id FROM opsc_outbox")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(entry_id.is_some_and(|e| e.contains('-')));
    assert_eq!(
        relay(&db, &rt, RelayConfig::default())
            .relay_once()
            .await
            .unwrap(),
        0
    );
    assert_eq!(published::<AssetCreated>(&rt, ASSETS).await.len(), 1);
}

#[tokio::test]
async fn a_rolled_back_stage_is_never_published() {
    let (db, redis) = (TestDb::create().await, RedisServer::start());
    let rt = reader(&redis.url()).await;
    let outbox = Outbox::new("inventory");

    let mut tx = db.pool.begin().await.unwrap();
    outbox
        .stage(&mut tx, &AssetCreated { asset_id: 1 })
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let mut tx = db.pool.begin().await.unwrap();
    outbox
        .stage(&mut tx, &AssetCreated { asset_id: 2 })
        .await
        .unwrap();
    drop(tx); // dropped without commit: rolled back too
    let mut tx = db.pool.begin().await.unwrap();
    let kept = outbox
        .stage(&mut tx, &AssetCreated { asset_id: 3 })
        .await
        .unwrap();
    tx.commit().await.unwrap();

    assert_eq!(
        relay(&db, &rt, RelayConfig::default())
            .relay_once()
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        published::<AssetCreated>(&rt, ASSETS).await,
        vec![(kept, AssetCreated { asset_id: 3 })]
    );
}

#[tokio::test]
async fn a_stream_is_published_in_commit_order_not_staging_order() {
    let (db, redis) = (TestDb::create().await, RedisServer::start());
    let rt = reader(&redis.url()).await;
    let outbox = Outbox::new("inventory");
    let relay = relay(&db, &rt, RelayConfig::default());

    // A stages first (lower id) but commits after B.
    let mut a = db.pool.begin().await.unwrap();
    outbox
        .stage(&mut a, &AssetCreated { asset_id: 1 })
        .await
        .unwrap();
    let mut b = db.pool.begin().await.unwrap();
    outbox
        .stage(&mut b, &AssetCreated { asset_id: 2 })
        .await
        .unwrap();
    b.commit().await.unwrap();
    assert_eq!(relay.relay_once().await.unwrap(), 1);
    a.commit().await.unwrap();
    assert_eq!(relay.relay_once().await.unwrap(), 1);

    let order: Vec<i64> = published::<AssetCreated>(&rt, ASSETS)
        .await
        .into_iter()
        .map(|(_, e)| e.asset_id)
        .collect();
    assert_eq!(order, [2, 1]);
}

#[tokio::test]
async fn stage_all_keeps_the_order_of_the_events_and_streams_are_relayed_apart() {
    let (db, redis) = (TestDb::create().await, RedisServer::start());
    let rt = reader(&redis.url()).await;
    let outbox = Outbox::new("inventory");

    let assets: Vec<AssetCreated> = (0..600).map(|i| AssetCreated { asset_id: i }).collect();
    let mut tx = db.pool.begin().await.unwrap();
    let ids = outbox.stage_all(&mut tx, &assets).await.unwrap();
    outbox
        .stage(&mut tx, &UserRegistered { user: "ada".into() })
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // 600 rows in batches of 256: three round trips, all in order.
    let config = RelayConfig {
        batch_size: 256,
        ..RelayConfig::default()
    };
    assert_eq!(relay(&db, &rt, config).relay_once().await.unwrap(), 601);
    let got = published::<AssetCreated>(&rt, ASSETS).await;
    assert_eq!(got.iter().map(|(id, _)| *id).collect::<Vec<_>>(), ids);
    assert_eq!(got.into_iter().map(|(_, e)| e).collect::<Vec<_>>(), assets);
    let users = published::<UserRegistered>(&rt, "outbox-users").await;
    assert_eq!(users.len(), 1);
}

#[tokio::test]
async fn relays_in_parallel_publish_each_row_once_and_in_order() {
    let (db, redis) = (TestDb::create().await, RedisServer::start());
    let rt = reader(&redis.url()).await;
    let outbox = Outbox::new("inventory");
    let stop = CancellationToken::new();
    // Four relays with small batches, polling fast, each on its own pool (as in four processes).
    let mut relays = Vec::new();
    for _ in 0..4 {
        let config = RelayConfig {
            batch_size: 7,
            poll_interval: Duration::from_millis(5),
            ..RelayConfig::default()
        };
        let relay = Relay::new(db.pool(4).await, rt.publisher(), config);
        relays.push(tokio::spawn(relay.run(stop.clone())));
    }
    const N: i64 = 400;
    let writer = {
        let pool = db.pool.clone();
        let outbox = outbox.clone();
        tokio::spawn(async move {
            for i in 0..N {
                let mut tx = pool.begin().await.unwrap();
                outbox
                    .stage(&mut tx, &AssetCreated { asset_id: i })
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }
        })
    };
    writer.await.unwrap();
    assert!(
        eventually(Duration::from_secs(30), || async {
            rt.read(ASSETS, None, 10_000).await.unwrap().len() >= N as usize
                && unsent(&db).await == 0
        })
        .await,
        "the relays did not publish every row"
    );
    stop.cancel();
    for r in relays {
        tokio::time::timeout(Duration::from_secs(10), r)
            .await
            .expect("a relay stops at the stop")
            .unwrap();
    }
    let order: Vec<i64> = published::<AssetCreated>(&rt, ASSETS)
        .await
        .into_iter()
        .map(|(_, e)| e.asset_id)
        .collect();
    assert_eq!(
        order,
        (0..N).collect::<Vec<_>>(),
        "each row once, in commit order"
    );
}

#[tokio::test]
async fn a_notification_wakes_the_relay_long_before_its_poll() {
    let (db, redis) = (TestDb::create().await, RedisServer::start());
    let rt = reader(&redis.url()).await;
    let outbox = Outbox::new("inventory");
    let stop = CancellationToken::new();
    let config = RelayConfig {
        poll_interval: Duration::from_secs(3600),
        ..RelayConfig::default()
    };
    let task = tokio::spawn(relay(&db, &rt, config).run(stop.clone()));
    // Let the relay finish its first pass and listen: it polls only hourly after that.
    assert!(
        eventually(Duration::from_secs(10), || async {
            let listening: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'",
            )
            .fetch_one(&db.pool)
            .await
            .unwrap();
            listening > 0
        })
        .await
    );
    for i in 0..3 {
        let mut tx = db.pool.begin().await.unwrap();
        outbox
            .stage(&mut tx, &AssetCreated { asset_id: i })
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert!(
            eventually(Duration::from_secs(5), || async {
                rt.read(ASSETS, None, 100).await.unwrap().len() == i as usize + 1
            })
            .await,
            "commit {i} was not relayed within 5 s though the relay polls hourly"
        );
    }
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn sent_rows_are_deleted_after_the_retention_and_unsent_rows_never() {
    let (db, redis) = (TestDb::create().await, RedisServer::start());
    let rt = reader(&redis.url()).await;
    let outbox = Outbox::new("inventory");
    let mut tx = db.pool.begin().await.unwrap();
    outbox
        .stage_all(
            &mut tx,
            &[AssetCreated { asset_id: 1 }, AssetCreated { asset_id: 2 }],
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let long = relay(&db, &rt, RelayConfig::default());
    assert_eq!(long.relay_once().await.unwrap(), 2);
    // Staged after the pass: unsent.
    let mut tx = db.pool.begin().await.unwrap();
    outbox
        .stage(&mut tx, &AssetCreated { asset_id: 3 })
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // Within the retention (1 h): kept.
    assert_eq!(long.purge_sent().await.unwrap(), 0);
    let short = relay(
        &db,
        &rt,
        RelayConfig {
            retention: Duration::ZERO,
            ..RelayConfig::default()
        },
    );
    assert_eq!(short.purge_sent().await.unwrap(), 2);
    let left: Vec<i64> =
        sqlx::query_scalar("SELECT count(*) FROM opsc_outbox WHERE sent_at IS NULL")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(left, [1], "the unsent row stays");
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM opsc_outbox")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(total, 1);
}

#[tokio::test]
async fn an_unreadable_row_is_marked_failed_and_does_not_block_its_stream() {
    let (db, redis) = (TestDb::create().await, RedisServer::start());
    let rt = reader(&redis.url()).await;
    let outbox = Outbox::new("inventory");
    sqlx::query(
        "INSERT INTO opsc_outbox (stream, event_id, event_type, entry)
         VALUES ($1, gen_random_uuid(), 'asset_created', '\\x0100'::bytea)",
    )
    .bind(ASSETS)
    .execute(&db.pool)
    .await
    .unwrap();
    let mut tx = db.pool.begin().await.unwrap();
    outbox
        .stage(&mut tx, &AssetCreated { asset_id: 9 })
        .await
        .unwrap();
    tx.commit().await.unwrap();

    assert_eq!(
        relay(&db, &rt, RelayConfig::default())
            .relay_once()
            .await
            .unwrap(),
        2
    );
    let got = published::<AssetCreated>(&rt, ASSETS).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, AssetCreated { asset_id: 9 });
    let status = opsc_events_postgres::status(&db.pool).await.unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(
        (status[0].unsent, status[0].sent, status[0].failed),
        (0, 1, 1)
    );
    let error: Option<String> =
        sqlx::query_scalar("SELECT error FROM opsc_outbox WHERE error IS NOT NULL")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(error.is_some_and(|e| e.contains("cut short")));
}

#[tokio::test]
async fn the_runtime_runs_the_relay_and_status_shows_the_backlog() {
    let (db, redis) = (TestDb::create().await, RedisServer::start());
    let watcher = reader(&redis.url()).await;
    let outbox = Outbox::new("inventory");
    let mut tx = db.pool.begin().await.unwrap();
    outbox
        .stage_all(
            &mut tx,
            &[AssetCreated { asset_id: 1 }, AssetCreated { asset_id: 2 }],
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let status = opsc_events_postgres::status(&db.pool).await.unwrap();
    assert_eq!(
        (status[0].stream.as_str(), status[0].unsent, status[0].sent),
        (ASSETS, 2, 0)
    );
    assert!(opsc_events_postgres::render_status(&status).contains(ASSETS));

    let rt = Runtime::builder()
        .service("inventory")
        .redis(redis.url())
        .no_handlers()
        .outbox(db.pool.clone())
        .build()
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let run = tokio::spawn(rt.run_until(stop.clone().cancelled_owned()));
    assert!(
        eventually(Duration::from_secs(10), || async {
            watcher.read(ASSETS, None, 10).await.unwrap().len() == 2
        })
        .await,
        "the runtime's relay did not publish the staged rows"
    );
    // The relay publishes, then marks the rows sent when its transaction commits: the entries
    // can be in Redis a moment before the status says so.
    assert!(
        eventually(Duration::from_secs(10), || async {
            let status = opsc_events_postgres::status(&db.pool).await.unwrap();
            (status[0].unsent, status[0].sent) == (0, 2)
        })
        .await,
        "the rows were not marked sent: {:?}",
        opsc_events_postgres::status(&db.pool).await.unwrap()
    );
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the runtime stops")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn migrate_is_idempotent() {
    let db = TestDb::create().await;
    opsc_events_postgres::migrate(&db.pool).await.unwrap();
    let (a, b) = tokio::join!(
        opsc_events_postgres::migrate(&db.pool),
        opsc_events_postgres::migrate(&db.pool)
    );
    a.unwrap();
    b.unwrap();
    let versions: Vec<i32> = sqlx::query_scalar("SELECT version FROM opsc_events_migrations")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(versions, [1]);
}

#[tokio::test]
async fn opsc_outbox_status_prints_the_backlog_per_stream() {
    let db = TestDb::create().await;
    let outbox = Outbox::new("inventory");
    let mut tx = db.pool.begin().await.unwrap();
    outbox
        .stage_all(
            &mut tx,
            &[AssetCreated { asset_id: 1 }, AssetCreated { asset_id: 2 }],
        )
        .await
        .unwrap();
    outbox
        .stage(&mut tx, &UserRegistered { user: "ada".into() })
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_opsc-outbox"))
        .args(["--database-url", &db.url, "status"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let line = |stream: &str| -> Vec<String> {
        text.lines()
            .find(|l| l.starts_with(stream))
            .unwrap_or_else(|| panic!("no line for {stream} in:\n{text}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(line(ASSETS)[1], "2", "unsent rows of {ASSETS}:\n{text}");
    assert_eq!(line("outbox-users")[1], "1");

    let bad = tokio::process::Command::new(env!("CARGO_BIN_EXE_opsc-outbox"))
        .args([
            "--database-url",
            "postgres://postgres@127.0.0.1:1/none",
            "status",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
}

#[tokio::test]
async fn without_notifications_the_relay_still_publishes_by_polling() {
    let (db, redis) = (TestDb::create().await, RedisServer::start());
    let rt = reader(&redis.url()).await;
    // Rows inserted without the trigger (another tool, or the trigger dropped): no NOTIFY.
    sqlx::raw_sql("ALTER TABLE opsc_outbox DISABLE TRIGGER opsc_outbox_notify")
        .execute(&db.pool)
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let config = RelayConfig {
        poll_interval: Duration::from_millis(100),
        ..RelayConfig::default()
    };
    let task = tokio::spawn(relay(&db, &rt, config).run(stop.clone()));
    let mut tx = db.pool.begin().await.unwrap();
    Outbox::new("inventory")
        .stage(&mut tx, &AssetCreated { asset_id: 5 })
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            rt.read(ASSETS, None, 10).await.unwrap().len() == 1
        })
        .await,
        "the polling relay did not publish the row"
    );
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_running_relay_deletes_sent_rows_once_the_retention_ends() {
    let (db, redis) = (TestDb::create().await, RedisServer::start());
    let rt = reader(&redis.url()).await;
    let stop = CancellationToken::new();
    let config = RelayConfig {
        poll_interval: Duration::from_millis(50),
        retention: Duration::from_millis(200),
        cleanup_interval: Duration::from_millis(50),
        ..RelayConfig::default()
    };
    let task = tokio::spawn(relay(&db, &rt, config).run(stop.clone()));
    let mut tx = db.pool.begin().await.unwrap();
    Outbox::new("inventory")
        .stage_all(
            &mut tx,
            &[AssetCreated { asset_id: 1 }, AssetCreated { asset_id: 2 }],
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let rows = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM opsc_outbox")
            .fetch_one(&db.pool)
            .await
            .unwrap()
    };
    assert!(
        eventually(Duration::from_secs(10), || async {
            rt.read(ASSETS, None, 10).await.unwrap().len() == 2
        })
        .await
    );
    assert!(
        eventually(Duration::from_secs(10), || async { rows().await == 0 }).await,
        "sent rows were not deleted after the retention"
    );
    assert_eq!(
        rt.read(ASSETS, None, 10).await.unwrap().len(),
        2,
        "published once"
    );
    stop.cancel();
    task.await.unwrap();
}
