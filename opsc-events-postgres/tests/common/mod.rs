//! Test support: a database of its own per test on the PostgreSQL at 127.0.0.1:5432 (user
//! `postgres`, trust auth; `.ci/run` installs and starts it), dropped at the end, and helpers
//! to read what reached Redis.

#![allow(dead_code)] // Each test binary uses part of it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use opsc_events::prelude::*;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};

/// The server every test uses; `OPSC_TEST_PG` overrides it (without a database name).
pub fn server_url() -> String {
    std::env::var("OPSC_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A database created for one test, migrated, and dropped when this is dropped.
pub struct TestDb {
    pub pool: PgPool,
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn create() -> TestDb {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "opsc_test_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        );
        let mut admin = PgConnection::connect(&format!("{}/postgres", server_url()))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "these tests need PostgreSQL on {} (user postgres, trust auth; `.ci/run` installs and starts it): {e}",
                    server_url()
                )
            });
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        admin.close().await.ok();
        let url = format!("{}/{name}", server_url());
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&url)
            .await
            .expect("connect to the test database");
        opsc_events_postgres::migrate(&pool).await.expect("migrate");
        TestDb { pool, name, url }
    }

    /// A new pool on the same database.
    pub async fn pool(&self, max: u32) -> PgPool {
        PgPoolOptions::new()
            .max_connections(max)
            .connect(&self.url)
            .await
            .expect("connect to the test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Dropped from async tests too: a thread of its own, with its own runtime.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            rt.block_on(async {
                if let Ok(mut admin) =
                    PgConnection::connect(&format!("{}/postgres", server_url())).await
                {
                    let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut admin)
                        .await;
                }
            });
        });
        let _ = dropped.join();
    }
}

/// A runtime on `url` that runs no handler (to publish and read).
pub async fn reader(url: &str) -> Runtime {
    Runtime::builder()
        .service("outbox-test")
        .redis(url)
        .no_handlers()
        .build()
        .await
        .expect("runtime")
}

/// Every event of `stream` in stream order, decoded, with its event id.
pub async fn published<E: Event>(rt: &Runtime, stream: &str) -> Vec<(uuid::Uuid, E)> {
    let entries = rt
        .read(stream, None, 1_000_000)
        .await
        .expect("read the stream");
    entries
        .iter()
        .map(|e| {
            let env =
                Envelope::from_fields(e.fields.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())))
                    .expect("an envelope");
            let event: E = envelope::decode_event(&env).expect("decode");
            (env.meta.event_id, event)
        })
        .collect()
}

/// Waits until `check` holds, up to `limit`, polling every 20 ms; false when it never did.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
