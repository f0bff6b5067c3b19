//! Staging: an event written to the outbox table inside the caller's transaction.

use std::sync::Arc;

use opsc_events_runtime::{Event, PublishOptions, Publisher, WireFormat};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::entry;
use crate::error::{Error, Result};

/// Stages events in the caller's own transaction; the relay publishes them once it commits.
///
/// The event is encoded at staging — event id, timestamp, service, payload — so what is
/// published is exactly what was staged, and a re-publish after a relay crash carries the same
/// event id (handlers deduplicate on it, see [`InboxExt`](crate::InboxExt)). A rolled-back
/// transaction takes its staged rows with it: nothing is published.
///
/// ```no_run
/// use opsc_events::prelude::*;
/// use opsc_events_postgres::Outbox;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Event, Serialize, Deserialize)]
/// # #[event(stream = "assets")]
/// # struct AssetCreated { asset_id: i64 }
///
/// # async fn demo(pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
/// let outbox = Outbox::new("inventory");
/// let mut tx = pool.begin().await?;
/// sqlx::query("INSERT INTO assets (id) VALUES ($1)").bind(7_i64).execute(&mut *tx).await?;
/// outbox.stage(&mut tx, &AssetCreated { asset_id: 7 }).await?;
/// tx.commit().await?; // the row and the event, or neither
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Outbox {
    service: Arc<str>,
    format: WireFormat,
}

impl Outbox {
    /// Stages events published by `service` (written to every event's `service` field) in the
    /// current wire format.
    pub fn new(service: impl Into<String>) -> Self {
        Outbox {
            service: service.into().into(),
            format: WireFormat::default(),
        }
    }

    /// Stages events as `publisher` would publish them: its service name and wire format.
    pub fn for_publisher(publisher: &Publisher) -> Self {
        Outbox {
            service: publisher.service().into(),
            format: publisher.wire_format(),
        }
    }

    /// Writes events in `format` instead (v1 only during a rolling upgrade, see [`WireFormat`]).
    pub fn wire_format(mut self, format: WireFormat) -> Self {
        self.format = format;
        self
    }

    /// Stages `event` in the transaction `conn` (pass `&mut tx`) and returns its event id.
    pub async fn stage<E: Event>(&self, conn: &mut PgConnection, event: &E) -> Result<Uuid> {
        self.stage_with(conn, event, &PublishOptions::new()).await
    }

    /// [`stage`](Self::stage) with explicit metadata (event id, correlation and causation ids,
    /// headers), checked as [`Publisher::publish_with`] checks them.
    pub async fn stage_with<E: Event>(
        &self,
        conn: &mut PgConnection,
        event: &E,
        opts: &PublishOptions,
    ) -> Result<Uuid> {
        let (event_id, encoded) = opts
            .encode_now(event, &self.service, self.format)
            .map_err(Error::Encode)?;
        sqlx::query(
            "INSERT INTO opsc_outbox (stream, event_id, event_type, entry) VALUES ($1, $2, $3, $4)",
        )
        .bind(E::STREAM)
        .bind(event_id)
        .bind(E::NAME)
        .bind(entry::pack(&encoded))
        .execute(conn)
        .await
        .map_err(Error::db("stage: insert into opsc_outbox"))?;
        Ok(event_id)
    }

    /// Stages every event in one statement, in order, and returns their event ids. Each event
    /// gets its own event id and starts its own conversation.
    pub async fn stage_all<'a, E, I>(&self, conn: &mut PgConnection, events: I) -> Result<Vec<Uuid>>
    where
        E: Event,
        I: IntoIterator<Item = &'a E>,
    {
        let opts = PublishOptions::new();
        let mut ids = Vec::new();
        let mut entries = Vec::new();
        for event in events {
            let (id, encoded) = opts
                .encode_now(event, &self.service, self.format)
                .map_err(Error::Encode)?;
            ids.push(id);
            entries.push(entry::pack(&encoded));
        }
        if ids.is_empty() {
            return Ok(ids);
        }
        // `WITH ORDINALITY` keeps the identity values in the order of the arrays.
        sqlx::query(
            "INSERT INTO opsc_outbox (stream, event_id, event_type, entry)
             SELECT $1, e.id, $2, e.entry
             FROM unnest($3::uuid[], $4::bytea[]) WITH ORDINALITY AS e(id, entry, n)
             ORDER BY e.n",
        )
        .bind(E::STREAM)
        .bind(E::NAME)
        .bind(&ids)
        .bind(&entries)
        .execute(conn)
        .await
        .map_err(Error::db("stage_all: insert into opsc_outbox"))?;
        Ok(ids)
    }
}
