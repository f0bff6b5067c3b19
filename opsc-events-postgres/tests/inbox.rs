//! The inbox against a real PostgreSQL: an event's effects commit once per consumer group
//! however often it is delivered, concurrently or not; a handler that fails leaves no record.

// Test code: every `pub` of a test binary is unreachable, and unwrapping is how a test fails.
#![allow(unreachable_pub, clippy::unwrap_used, missing_debug_implementations)]

mod common;

use std::time::Duration;

use common::{TestDb, eventually};
use opsc_events::prelude::*;
use opsc_events_postgres::{Inbox, InboxExt, Outbox, RuntimeBuilderExt};
use opsc_events_testkit::RedisServer;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "inbox-payments", name = "payment_received", version = 1)]
struct PaymentReceived {
    account: i64,
    cents: i64,
}

async fn effects_table(pool: &PgPool) {
    sqlx::raw_sql("CREATE TABLE ledger (event_id UUID NOT NULL, account BIGINT, cents BIGINT)")
        .execute(pool)
        .await
        .unwrap();
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[tokio::test]
async fn an_event_already_applied_by_the_group_gets_no_transaction() {
    let db = TestDb::create().await;
    let id = Uuid::now_v7();
    let tx = Inbox::new(&db.pool, "billing.apply", id, "s")
        .begin()
        .await
        .unwrap();
    tx.expect("first delivery").commit().await.unwrap();
    assert!(
        Inbox::new(&db.pool, "billing.apply", id, "s")
            .begin()
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        Inbox::new(&db.pool, "billing.apply", id, "s")
            .seen()
            .await
            .unwrap()
    );
    // Another group applies it once too.
    assert!(
        Inbox::new(&db.pool, "audit.apply", id, "s")
            .begin()
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_rolled_back_handler_leaves_no_record() {
    let db = TestDb::create().await;
    let id = Uuid::now_v7();
    let tx = Inbox::new(&db.pool, "g", id, "s").begin().await.unwrap();
    drop(tx.expect("first delivery")); // the handler failed before committing
    assert!(!Inbox::new(&db.pool, "g", id, "s").seen().await.unwrap());
    assert!(
        Inbox::new(&db.pool, "g", id, "s")
            .begin()
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn two_deliveries_at_once_commit_once() {
    let db = TestDb::create().await;
    effects_table(&db.pool).await;
    let id = Uuid::now_v7();
    let first = Inbox::new(&db.pool, "g", id, "s").begin().await.unwrap();
    let mut first = first.expect("first delivery");
    sqlx::query("INSERT INTO ledger (event_id) VALUES ($1)")
        .bind(id)
        .execute(&mut *first)
        .await
        .unwrap();
    // The second delivery waits on the first's row lock...
    let pool = db.pool.clone();
    let second = tokio::spawn(async move {
        Inbox::new(&pool, "g", id, "s")
            .begin()
            .await
            .unwrap()
            .is_some()
    });
    assert!(
        eventually(Duration::from_secs(10), || async {
            count(&db.pool, "SELECT count(*) FROM pg_locks WHERE NOT granted").await > 0
        })
        .await,
        "the second delivery must wait for the first"
    );
    assert!(!second.is_finished());
    // ...and finds the event applied once the first commits.
    first.commit().await.unwrap();
    assert!(!second.await.unwrap());
    assert_eq!(count(&db.pool, "SELECT count(*) FROM ledger").await, 1);
}

#[tokio::test]
async fn an_event_without_an_id_is_refused_not_skipped() {
    let db = TestDb::create().await;
    for _ in 0..2 {
        let refused = Inbox::new(&db.pool, "g", Uuid::nil(), "s").begin().await;
        assert!(matches!(
            refused,
            Err(opsc_events_postgres::Error::NilEventId { .. })
        ));
    }
    assert_eq!(count(&db.pool, "SELECT count(*) FROM opsc_inbox").await, 0);
}

#[tokio::test]
async fn purge_forgets_old_rows_only() {
    let db = TestDb::create().await;
    let tx = Inbox::new(&db.pool, "g", Uuid::now_v7(), "s")
        .begin()
        .await
        .unwrap();
    tx.unwrap().commit().await.unwrap();
    assert_eq!(
        opsc_events_postgres::purge_inbox(&db.pool, Duration::from_secs(60))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        opsc_events_postgres::purge_inbox(&db.pool, Duration::ZERO)
            .await
            .unwrap(),
        1
    );
}

/// How often the handler ran (deliveries), whatever the inbox decided.
#[derive(Clone, Default)]
struct Deliveries(std::sync::Arc<std::sync::atomic::AtomicUsize>);

#[handler(stream = "inbox-payments", group = "billing.ledger")]
async fn apply_payment(
    event: PaymentReceived,
    ctx: Context,
    State(pool): State<PgPool>,
    State(deliveries): State<Deliveries>,
) -> Result<(), HandlerError> {
    deliveries
        .0
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let Some(mut tx) = ctx.inbox(&pool).begin().await? else {
        return Ok(());
    };
    sqlx::query("INSERT INTO ledger (event_id, account, cents) VALUES ($1, $2, $3)")
        .bind(ctx.event_id())
        .bind(event.account)
        .bind(event.cents)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

#[tokio::test]
async fn a_handler_applies_a_redelivered_event_once() {
    let (db, redis) = (TestDb::create().await, RedisServer::start());
    effects_table(&db.pool).await;
    let deliveries = Deliveries::default();
    let rt = Runtime::builder()
        .service("billing")
        .redis(redis.url())
        .only(|h| h.name() == "apply_payment")
        .state(db.pool.clone())
        .state(deliveries.clone())
        .outbox(db.pool.clone())
        .build()
        .await
        .unwrap();
    let publisher = rt.publisher();
    let stop = CancellationToken::new();
    let run = tokio::spawn(rt.run_until(stop.clone().cancelled_owned()));

    // Staged once through the outbox, then the same event (same id) published twice more, as a
    // relay crash or a replay would.
    let mut tx = db.pool.begin().await.unwrap();
    let event = PaymentReceived {
        account: 1,
        cents: 250,
    };
    let id = Outbox::for_publisher(&publisher)
        .stage(&mut tx, &event)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    for _ in 0..2 {
        publisher
            .publish_with(&event, &PublishOptions::new().event_id(id))
            .await
            .unwrap();
    }
    assert!(
        eventually(Duration::from_secs(15), || async {
            deliveries.0.load(std::sync::atomic::Ordering::SeqCst) >= 3
        })
        .await,
        "three deliveries"
    );
    assert_eq!(count(&db.pool, "SELECT count(*) FROM ledger").await, 1);
    assert_eq!(
        count(&db.pool, "SELECT sum(cents)::bigint FROM ledger").await,
        250
    );
    stop.cancel();
    run.await.unwrap().unwrap();
}
