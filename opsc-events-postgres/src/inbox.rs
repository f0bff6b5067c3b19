//! The inbox: handlers whose database effects happen once per event, however often the event is
//! delivered.

use opsc_events_runtime::Context;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::error::{Error, Result};

/// Opens the inbox of the handler's group: `ctx.inbox(&pool)`.
pub trait InboxExt {
    /// The inbox of this delivery's consumer group, in the database of `pool`.
    fn inbox<'p>(&self, pool: &'p PgPool) -> Inbox<'p>;
}

impl InboxExt for Context {
    fn inbox<'p>(&self, pool: &'p PgPool) -> Inbox<'p> {
        Inbox {
            pool,
            group: self.group().to_owned(),
            event_id: self.event_id(),
            stream: self.stream(),
        }
    }
}

/// One delivery's entry in the inbox table (`opsc_inbox`), keyed by `(group, event id)`.
///
/// [`begin`](Self::begin) opens a transaction that already records the event as applied by the
/// group; the handler writes its effects through it and commits. The common case is three lines:
///
/// ```no_run
/// use opsc_events::prelude::*;
/// use opsc_events_postgres::InboxExt;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Event, Serialize, Deserialize)]
/// # #[event(stream = "assets")]
/// # struct AssetCreated { asset_id: i64 }
///
/// #[handler(stream = "assets")]
/// async fn count_asset(
///     event: AssetCreated,
///     ctx: Context,
///     State(pool): State<sqlx::PgPool>,
/// ) -> Result<(), HandlerError> {
///     let Some(mut tx) = ctx.inbox(&pool).begin().await? else { return Ok(()) }; // seen: skip
///     sqlx::query("INSERT INTO asset_counts (asset_id) VALUES ($1)")
///         .bind(event.asset_id)
///         .execute(&mut *tx)
///         .await?;
///     tx.commit().await?;
///     Ok(())
/// }
/// ```
///
/// **The guarantee.** The writes made through the returned transaction commit at most once per
/// `(consumer group, event id)`: the inbox row and the effects commit together or not at all,
/// and a later delivery of the same event — a redelivery after a crash or a lost ack, a reclaim,
/// a replayed dead letter, the outbox relay publishing a row again — finds the row and gets
/// `None`. Two deliveries running at once (a reclaim racing a slow handler) cannot both commit:
/// the second waits on the first's row lock, then gets `None` if the first committed, or goes
/// ahead if it rolled back. Together with at-least-once delivery, the effects of a handler that
/// eventually succeeds are applied exactly once. Not covered: anything done outside the
/// transaction (HTTP calls, publishes — stage those in the outbox through the same transaction
/// instead), and an event id seen again after its inbox row was purged
/// ([`purge_inbox`](crate::purge_inbox)), and an event whose id is the nil UUID (refused:
/// [`Error::NilEventId`]). Other groups have their own rows: each applies the
/// event once.
#[derive(Debug)]
pub struct Inbox<'p> {
    pool: &'p PgPool,
    group: String,
    event_id: Uuid,
    stream: &'static str,
}

impl<'p> Inbox<'p> {
    /// An inbox entry for any `(group, event id)` (handlers use [`InboxExt::inbox`]).
    pub fn new(
        pool: &'p PgPool,
        group: impl Into<String>,
        event_id: Uuid,
        stream: &'static str,
    ) -> Self {
        Inbox {
            pool,
            group: group.into(),
            event_id,
            stream,
        }
    }

    /// A transaction that records the event in the inbox, for the handler's writes; `None` when
    /// the group already applied the event (nothing to do: return `Ok`, so that it is acked).
    /// Dropping the transaction without committing rolls back the record with the writes.
    ///
    /// An event whose id is the nil UUID (written by another program) is refused with
    /// [`Error::NilEventId`]: it cannot be told apart from other such events.
    pub async fn begin(self) -> Result<Option<Transaction<'static, Postgres>>> {
        if self.event_id.is_nil() {
            return Err(Error::NilEventId { group: self.group });
        }
        let mut tx = self.pool.begin().await.map_err(Error::db("inbox: begin"))?;
        let inserted = sqlx::query(
            "INSERT INTO opsc_inbox (consumer_group, event_id, stream) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(&self.group)
        .bind(self.event_id)
        .bind(self.stream)
        .execute(&mut *tx)
        .await
        .map_err(Error::db("inbox: record the event"))?
        .rows_affected();
        if inserted == 0 {
            tracing::debug!(group = %self.group, event_id = %self.event_id, "inbox: event already applied; skipping");
            metrics::counter!("opsc_events_inbox_duplicates_total", "group" => self.group.clone())
                .increment(1);
            tx.rollback().await.map_err(Error::db("inbox: roll back"))?;
            return Ok(None);
        }
        Ok(Some(tx))
    }

    /// Whether the group already applied the event (committed); for handlers that must decide
    /// before doing work outside the database.
    pub async fn seen(&self) -> Result<bool> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM opsc_inbox WHERE consumer_group = $1 AND event_id = $2)",
        )
        .bind(&self.group)
        .bind(self.event_id)
        .fetch_one(self.pool)
        .await
        .map_err(Error::db("inbox: look the event up"))
    }
}

/// Deletes inbox rows older than `age` and returns how many. An event delivered again after its
/// row is gone is applied again: keep rows longer than any redelivery or replay can come (the
/// dead-letter replay window included).
pub async fn purge_inbox(pool: &PgPool, age: std::time::Duration) -> Result<u64> {
    let done =
        sqlx::query("DELETE FROM opsc_inbox WHERE handled_at < now() - make_interval(secs => $1)")
            .bind(age.as_secs_f64())
            .execute(pool)
            .await
            .map_err(Error::db("inbox: delete old rows"))?;
    Ok(done.rows_affected())
}
