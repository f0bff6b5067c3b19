//! The relay: publishes committed outbox rows to Redis, per stream in order, and deletes sent
//! rows after the retention period.

use std::sync::Arc;
use std::time::Duration;

use opsc_events_runtime::Publisher;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::entry;
use crate::error::{Error, Result};

/// The channel the outbox trigger notifies at every commit that staged rows.
pub const CHANNEL: &str = "opsc_outbox";

/// The first of the two keys of a stream's advisory lock (`pg_try_advisory_xact_lock(int, int)`,
/// the second being `hashtext(stream)`): "opsc" in ASCII.
const LOCK_CLASS: i32 = 0x6f70_7363;

/// How a relay works; the defaults suit most services.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The most rows of one stream published in one round trip (default 256).
    pub batch_size: usize,
    /// How often the relay looks for rows when no notification came (default 1 s): the bound on
    /// the delay when `LISTEN` is down, or when rows were inserted by something other than
    /// [`Outbox`](crate::Outbox) without the trigger.
    pub poll_interval: Duration,
    /// How long sent rows are kept before they are deleted (default 1 h; for audits and
    /// `opsc-outbox status`).
    pub retention: Duration,
    /// How often sent rows past the retention are deleted (default 60 s).
    pub cleanup_interval: Duration,
    /// The longest pause after a failure (PostgreSQL or Redis down) before trying again; the
    /// pause doubles from 50 ms up to it (default 5 s).
    pub max_backoff: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            batch_size: 256,
            poll_interval: Duration::from_secs(1),
            retention: Duration::from_secs(3600),
            cleanup_interval: Duration::from_secs(60),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Publishes the rows staged by [`Outbox`](crate::Outbox) once their transaction commits.
///
/// Usually started by the runtime ([`RuntimeBuilderExt::outbox`](crate::RuntimeBuilderExt::outbox));
/// [`run`](Self::run) runs one on its own, and [`relay_once`](Self::relay_once) relays what is
/// there now (tests, tools).
///
/// **Order**: the rows of one stream are published in `id` order by one relay at a time (a
/// transaction-scoped advisory lock per stream, tried without waiting: a relay that does not get
/// it moves on to the next stream). A row is visible to the relay only once its transaction has
/// committed, and a transaction that commits before another stages has the lower ids, so a
/// stream's events reach Redis in commit order; events of transactions that overlap may go in
/// either order, as they may commit in either.
///
/// **Delivery**: at least once. A batch is appended, then marked sent in the same PostgreSQL
/// transaction that holds the stream's lock; a relay killed between the two leaves the rows
/// unsent and the next relay appends them again, with the same event ids (the inbox skips
/// them). A rolled-back transaction's rows never existed for the relay.
#[derive(Debug, Clone)]
pub struct Relay {
    pool: PgPool,
    publisher: Publisher,
    config: Arc<RelayConfig>,
}

/// One outbox row read by the relay.
#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    event_id: Uuid,
    entry: Vec<u8>,
}

impl Relay {
    /// A relay publishing through `publisher` (the runtime's) the rows of the outbox in `pool`.
    pub fn new(pool: PgPool, publisher: Publisher, config: RelayConfig) -> Self {
        Relay {
            pool,
            publisher,
            config: Arc::new(config),
        }
    }

    /// Relays until `stop` is cancelled: everything unsent at start, then every commit it is
    /// notified of (`LISTEN opsc_outbox`), and every `poll_interval` whatever it heard; deletes
    /// sent rows past the retention every `cleanup_interval`. Failures (PostgreSQL or Redis
    /// unreachable) are logged and retried with backoff; it returns only at the stop.
    pub async fn run(self, stop: CancellationToken) {
        let wake = Arc::new(Notify::new());
        tokio::select! {
            () = listen(self.pool.clone(), wake.clone(), self.config.max_backoff) => {}
            () = self.relay_loop(&wake, &stop) => {}
        }
    }

    async fn relay_loop(&self, wake: &Notify, stop: &CancellationToken) {
        let mut backoff = Backoff::new(self.config.max_backoff);
        let mut next_cleanup = tokio::time::Instant::now();
        loop {
            if stop.is_cancelled() {
                return;
            }
            // Taken before the pass: a notification during the pass wakes the next wait.
            let notified = wake.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            let failed = match self.pass(stop).await {
                Ok(_) => false,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox relay: a pass failed; trying again");
                    metrics::counter!("opsc_events_outbox_relay_failures_total").increment(1);
                    true
                }
            };
            if tokio::time::Instant::now() >= next_cleanup {
                if let Err(e) = self.purge_sent().await {
                    tracing::warn!(error = %e, "outbox relay: deleting sent rows failed");
                }
                next_cleanup = tokio::time::Instant::now() + self.config.cleanup_interval;
            }
            let pause = if failed {
                backoff.next()
            } else {
                backoff.reset();
                self.config.poll_interval
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = &mut notified, if !failed => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Publishes every unsent row there is now, stream by stream, and returns how many rows it
    /// published. Streams another relay is publishing are skipped (that relay publishes them).
    pub async fn relay_once(&self) -> Result<usize> {
        self.pass(&CancellationToken::new()).await
    }

    /// [`relay_once`](Self::relay_once), ending early between two batches once `stop` is
    /// cancelled (what is left is published by the next relay to run).
    async fn pass(&self, stop: &CancellationToken) -> Result<usize> {
        let streams: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT stream FROM opsc_outbox WHERE sent_at IS NULL")
                .fetch_all(&self.pool)
                .await
                .map_err(Error::db("relay: list streams with unsent rows"))?;
        let mut total = 0;
        for stream in streams {
            loop {
                if stop.is_cancelled() {
                    return Ok(total);
                }
                let n = self.relay_batch(&stream).await?;
                total += n;
                if n < self.config.batch_size {
                    break;
                }
            }
        }
        Ok(total)
    }

    /// Publishes up to `batch_size` unsent rows of `stream` in order, under the stream's lock;
    /// 0 when there is none or another relay holds the lock.
    async fn relay_batch(&self, stream: &str) -> Result<usize> {
        let mut tx = self.pool.begin().await.map_err(Error::db("relay: begin"))?;
        // A relay that stops answering (paused, cut off) must not keep the stream's lock until
        // TCP notices: PostgreSQL ends its session after this long idle in the transaction.
        // The marks need no flush to disk before the commit returns: a mark lost to a database
        // crash makes its rows published again (a duplicate, which delivery allows anyway),
        // never lost, and it saves a WAL flush per batch.
        let locked: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_xact_lock($1, hashtext($2))
             FROM (SELECT set_config('idle_in_transaction_session_timeout', '60000', true),
                          set_config('synchronous_commit', 'off', true)) AS s",
        )
        .bind(LOCK_CLASS)
        .bind(stream)
        .fetch_one(&mut *tx)
        .await
        .map_err(Error::db("relay: lock the stream"))?;
        if !locked {
            return Ok(0);
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, event_id, entry FROM opsc_outbox
             WHERE stream = $1 AND sent_at IS NULL ORDER BY id LIMIT $2",
        )
        .bind(stream)
        .bind(i64::try_from(self.config.batch_size).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await
        .map_err(Error::db("relay: read unsent rows"))?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut entries = Vec::with_capacity(rows.len());
        let mut sent = Vec::with_capacity(rows.len());
        let mut bad = Vec::new();
        for row in &rows {
            match entry::unpack(&row.entry) {
                Ok(e) => {
                    entries.push(e);
                    sent.push(row.id);
                }
                Err(reason) => {
                    let error = Error::BadRow { id: row.id, reason };
                    tracing::error!(event_id = %row.event_id, stream, error = %error, "outbox relay: a row cannot be published; marking it failed");
                    metrics::counter!("opsc_events_outbox_bad_rows_total").increment(1);
                    bad.push((row.id, error.to_string()));
                }
            }
        }
        let ids = if entries.is_empty() {
            Vec::new()
        } else {
            self.publisher
                .append_encoded(stream, &entries)
                .await
                .map_err(|source| Error::Publish {
                    stream: stream.to_owned(),
                    rows: entries.len(),
                    source,
                })?
        };
        let entry_ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        sqlx::query(
            "UPDATE opsc_outbox o SET sent_at = now(), entry_id = u.entry_id
             FROM unnest($1::bigint[], $2::text[]) AS u(id, entry_id) WHERE o.id = u.id",
        )
        .bind(&sent)
        .bind(&entry_ids)
        .execute(&mut *tx)
        .await
        .map_err(Error::db("relay: mark rows sent"))?;
        if !bad.is_empty() {
            let (ids, errors): (Vec<i64>, Vec<String>) = bad.into_iter().unzip();
            sqlx::query(
                "UPDATE opsc_outbox o SET sent_at = now(), error = u.error
                 FROM unnest($1::bigint[], $2::text[]) AS u(id, error) WHERE o.id = u.id",
            )
            .bind(&ids)
            .bind(&errors)
            .execute(&mut *tx)
            .await
            .map_err(Error::db("relay: mark unreadable rows"))?;
        }
        tx.commit()
            .await
            .map_err(Error::db("relay: commit the rows sent"))?;
        metrics::counter!("opsc_events_outbox_published_total", "stream" => stream.to_owned())
            .increment(ids.len() as u64);
        Ok(rows.len())
    }

    /// Deletes sent rows older than the retention and returns how many.
    pub async fn purge_sent(&self) -> Result<u64> {
        purge_sent(&self.pool, self.config.retention).await
    }
}

/// Deletes rows sent more than `retention` ago and returns how many.
pub async fn purge_sent(pool: &PgPool, retention: Duration) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM opsc_outbox WHERE sent_at IS NOT NULL
         AND sent_at < now() - make_interval(secs => $1)",
    )
    .bind(retention.as_secs_f64())
    .execute(pool)
    .await
    .map_err(Error::db("relay: delete sent rows past the retention"))?;
    Ok(done.rows_affected())
}

/// Wakes the relay at every notification on [`CHANNEL`]; reconnects with backoff when the
/// connection drops (the relay polls meanwhile). Never returns.
async fn listen(pool: PgPool, wake: Arc<Notify>, max_backoff: Duration) {
    let mut backoff = Backoff::new(max_backoff);
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "outbox relay: cannot connect to LISTEN; polling meanwhile");
                tokio::time::sleep(backoff.next()).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "outbox relay: LISTEN failed; polling meanwhile");
            tokio::time::sleep(backoff.next()).await;
            continue;
        }
        backoff.reset();
        // Rows committed while no one listened are found by the pass this wakes.
        wake.notify_one();
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => wake.notify_one(),
                Ok(None) => {
                    tracing::info!("outbox relay: the LISTEN connection was lost; reconnecting");
                    wake.notify_one();
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "outbox relay: LISTEN failed; reconnecting");
                    tokio::time::sleep(backoff.next()).await;
                    break;
                }
            }
        }
    }
}

/// Doubling pauses from 50 ms up to a cap.
#[derive(Debug)]
struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(50);

    fn new(max: Duration) -> Self {
        Backoff {
            next: Self::FIRST.min(max),
            max,
        }
    }

    fn next(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(self.max);
        now
    }

    fn reset(&mut self) {
        self.next = Self::FIRST.min(self.max);
    }
}
