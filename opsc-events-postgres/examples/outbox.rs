//! The outbox and the inbox in one process: the assets service creates an asset row and stages
//! `AssetCreated` in one transaction; the relay publishes it once the transaction commits; the
//! inventory service's handler applies it through the inbox, so that a redelivery changes
//! nothing. A rolled-back creation publishes nothing.
//!
//! `cargo run -p opsc-events-postgres --example outbox` — needs Redis (`REDIS_URL`, default
//! `redis://127.0.0.1:6379`) and PostgreSQL (`DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`); it creates its tables if missing.

use std::time::Duration;

use opsc_events::prelude::*;
use opsc_events_postgres::{InboxExt, Outbox, RuntimeBuilderExt};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::watch;

/// assets → everyone: an asset was created.
#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "outbox-demo-assets", name = "asset_created", version = 1)]
pub struct AssetCreated {
    pub asset_id: i64,
    pub hostname: String,
}

/// Counts deliveries, so that the example stops once everything was delivered.
#[derive(Clone)]
struct Delivered(watch::Sender<usize>);

/// inventory: one row per asset in its own table, exactly once per event.
#[handler(stream = "outbox-demo-assets")]
async fn add_to_inventory(
    event: AssetCreated,
    ctx: Context,
    State(pool): State<PgPool>,
    State(delivered): State<Delivered>,
) -> Result<(), HandlerError> {
    delivered.0.send_modify(|n| *n += 1);
    let Some(mut tx) = ctx.inbox(&pool).begin().await? else {
        println!("[inventory] event {} seen before: skipped", ctx.event_id());
        return Ok(());
    };
    sqlx::query("INSERT INTO demo_inventory (asset_id, hostname) VALUES ($1, $2)")
        .bind(event.asset_id)
        .bind(&event.hostname)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    println!(
        "[inventory] asset {} ({}) added",
        event.asset_id, event.hostname
    );
    Ok(())
}

/// The assets service's write: the row and its event, or neither.
async fn create_asset(
    pool: &PgPool,
    outbox: &Outbox,
    hostname: &str,
    commit: bool,
) -> Result<(i64, uuid::Uuid), Box<dyn std::error::Error>> {
    let mut tx = pool.begin().await?;
    let asset_id: i64 =
        sqlx::query_scalar("INSERT INTO demo_assets (hostname) VALUES ($1) RETURNING id")
            .bind(hostname)
            .fetch_one(&mut *tx)
            .await?;
    let event_id = outbox
        .stage(
            &mut tx,
            &AssetCreated {
                asset_id,
                hostname: hostname.to_owned(),
            },
        )
        .await?;
    if commit {
        tx.commit().await?;
        println!("[assets]    asset {asset_id} ({hostname}) created, event {event_id} staged");
    } else {
        tx.rollback().await?;
        println!("[assets]    asset {asset_id} ({hostname}) rolled back: its event is gone too");
    }
    Ok((asset_id, event_id))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let database = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let pool = PgPool::connect(&database).await?;
    opsc_events_postgres::migrate(&pool).await?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS demo_assets (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, hostname TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS demo_inventory (asset_id BIGINT NOT NULL, hostname TEXT NOT NULL)",
    )
    .execute(&pool)
    .await?;

    let delivered = Delivered(watch::Sender::new(0));
    let rt = Runtime::builder()
        .service("outbox-demo")
        .redis(&redis)
        .state(pool.clone())
        .state(delivered.clone())
        .outbox(pool.clone()) // the relay runs while the runtime runs
        .shutdown_timeout(Duration::from_secs(5))
        .build()
        .await?;
    let publisher = rt.publisher();
    let outbox = Outbox::for_publisher(&publisher);
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM demo_inventory")
        .fetch_one(&pool)
        .await?;

    let (first_asset, first) = create_asset(&pool, &outbox, "db-1", true).await?;
    create_asset(&pool, &outbox, "web-1", true).await?;
    create_asset(&pool, &outbox, "tmp-1", false).await?;
    // A relay that crashed after publishing but before marking the row sent publishes it again,
    // with the same event id: the inbox skips it.
    let copy = publisher
        .publish_with(
            &AssetCreated {
                asset_id: first_asset,
                hostname: "db-1".into(),
            },
            &PublishOptions::new().event_id(first),
        )
        .await?;
    println!("[assets]    event {first} published again as {copy}, as after a relay crash");

    let mut seen = delivered.0.subscribe();
    rt.run_until(async move {
        let all = seen.wait_for(|n| *n >= 3);
        if tokio::time::timeout(Duration::from_secs(15), all)
            .await
            .is_err()
        {
            eprintln!("not every event was delivered within 15 s");
        }
    })
    .await?;
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM demo_inventory")
        .fetch_one(&pool)
        .await?;
    println!(
        "{} deliveries, {} inventory rows added (one per committed asset); outbox:\n{}",
        *delivered.0.borrow(),
        after - before,
        opsc_events_postgres::render_status(&opsc_events_postgres::status(&pool).await?)
    );
    Ok(())
}
