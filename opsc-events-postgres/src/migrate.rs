//! The crate's tables, created by [`migrate`] or by the service's own migration tool from
//! [`MIGRATIONS`].

use sqlx::PgPool;

use crate::error::{Error, Result};

/// The crate's migrations in order, as `(version, name, SQL)`: apply them with [`migrate`], or
/// copy them into the service's own migration tool (then do not call [`migrate`]).
pub const MIGRATIONS: &[(i32, &str, &str)] = &[(
    1,
    "outbox_inbox",
    include_str!("../migrations/0001_outbox_inbox.sql"),
)];

/// The advisory lock key that serializes concurrent `migrate` calls (several replicas starting).
const MIGRATE_LOCK: i64 = 0x6f70_7363_6d69_6772; // "opscmigr"

/// Creates or upgrades the outbox and inbox tables: the migrations not yet applied run, each in
/// the one transaction that records it in `opsc_events_migrations`. Safe to call at every start
/// and from several processes at once (an advisory lock serializes them). Its own bookkeeping
/// table, rather than `sqlx::migrate!`'s, so that it never clashes with the service's own sqlx
/// migrations (sqlx refuses a database holding migrations its source does not list).
///
/// ```no_run
/// # async fn demo(pool: sqlx::PgPool) -> opsc_events_postgres::Result<()> {
/// opsc_events_postgres::migrate(&pool).await?;
/// # Ok(()) }
/// ```
pub async fn migrate(pool: &PgPool) -> Result<()> {
    let mut tx = pool.begin().await.map_err(Error::db("migrate: begin"))?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATE_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(Error::db("migrate: lock"))?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS opsc_events_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )
    .execute(&mut *tx)
    .await
    .map_err(Error::db("migrate: bookkeeping table"))?;
    let applied: Option<i32> =
        sqlx::query_scalar("SELECT max(version) FROM opsc_events_migrations")
            .fetch_one(&mut *tx)
            .await
            .map_err(Error::db("migrate: read the applied version"))?;
    let applied = applied.unwrap_or(0);
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if applied > known {
        return Err(Error::NewerSchema {
            found: applied,
            known,
        });
    }
    for &(version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > applied) {
        sqlx::raw_sql(sql)
            .execute(&mut *tx)
            .await
            .map_err(Error::db("migrate: apply a migration"))?;
        sqlx::query("INSERT INTO opsc_events_migrations (version, name) VALUES ($1, $2)")
            .bind(version)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(Error::db("migrate: record a migration"))?;
        tracing::info!(version, name, "opsc-events-postgres migration applied");
    }
    tx.commit().await.map_err(Error::db("migrate: commit"))
}
