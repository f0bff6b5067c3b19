//! A service process for the outbox fault test (`tests/outbox_faults.rs`), started, killed with
//! SIGKILL and restarted by it: `outbox-fault-service <redis-url> <database-url>`.
//!
//! It runs an outbox relay and the handler `apply`, which records every delivery in
//! `deliveries` (outside any transaction) and applies the event to `effects` through the inbox.
//! Exits 1 when the runtime cannot be built (Redis down: the harness starts it again).

use std::time::Duration;

use opsc_events::prelude::*;
use opsc_events_postgres::{InboxExt, RelayConfig, RuntimeBuilderExt};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

/// One unit of work, numbered by the harness's writers.
#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "outbox-faults", name = "work", version = 1)]
struct Work {
    seq: i64,
}

#[handler(
    stream = "outbox-faults",
    retries = 100,
    backoff = "exponential(100ms, 1s)",
    timeout = "2s",
    claim_after = "3s"
)]
async fn apply(event: Work, ctx: Context, State(pool): State<PgPool>) -> Result<(), HandlerError> {
    sqlx::query("INSERT INTO deliveries (seq, event_id) VALUES ($1, $2)")
        .bind(event.seq)
        .bind(ctx.event_id())
        .execute(&pool)
        .await?;
    let Some(mut tx) = ctx.inbox(&pool).begin().await? else {
        return Ok(());
    };
    sqlx::query("INSERT INTO effects (seq, event_id) VALUES ($1, $2)")
        .bind(event.seq)
        .bind(ctx.event_id())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(redis), Some(database)) = (args.next(), args.next()) else {
        eprintln!("usage: outbox-fault-service <redis-url> <database-url>");
        std::process::exit(2);
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .try_init();
    let pool = match sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect(&database)
        .await
    {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let relay = RelayConfig {
        batch_size: 50,
        poll_interval: Duration::from_millis(200),
        max_backoff: Duration::from_millis(500),
        ..RelayConfig::default()
    };
    let rt = Runtime::builder()
        .service("outbox-faults")
        .redis(redis)
        .state(pool.clone())
        .connect_timeout(Duration::from_secs(2))
        .response_timeout(Duration::from_secs(2))
        .shutdown_timeout(Duration::from_secs(2))
        .outbox_with(pool, relay)
        .build()
        .await;
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    println!("ready {}", rt.consumer_name());
    if let Err(e) = rt.run().await {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
