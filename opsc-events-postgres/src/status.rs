//! The outbox backlog, for operators (`opsc-outbox status`) and health checks.

use sqlx::PgPool;

use crate::error::{Error, Result};

/// One stream's rows in the outbox.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StreamBacklog {
    /// The stream.
    pub stream: String,
    /// Rows committed and not yet published.
    pub unsent: i64,
    /// Seconds since the oldest unsent row was staged (0 when none is unsent).
    pub oldest_unsent_secs: f64,
    /// Rows published and kept until the retention ends.
    pub sent: i64,
    /// Rows the relay could not read and marked failed (see the `error` column).
    pub failed: i64,
}

/// The outbox backlog per stream, streams in name order.
pub async fn status(pool: &PgPool) -> Result<Vec<StreamBacklog>> {
    sqlx::query_as(
        "SELECT stream,
                count(*) FILTER (WHERE sent_at IS NULL) AS unsent,
                COALESCE(EXTRACT(EPOCH FROM now() - min(staged_at) FILTER (WHERE sent_at IS NULL)), 0)::float8
                    AS oldest_unsent_secs,
                count(*) FILTER (WHERE sent_at IS NOT NULL AND error IS NULL) AS sent,
                count(*) FILTER (WHERE error IS NOT NULL) AS failed
         FROM opsc_outbox GROUP BY stream ORDER BY stream",
    )
    .fetch_all(pool)
    .await
    .map_err(Error::db("status: read the outbox"))
}

/// The backlog as a table, one line per stream.
pub fn render(backlog: &[StreamBacklog]) -> String {
    let mut out = format!(
        "{:<32} {:>10} {:>12} {:>10} {:>8}\n",
        "STREAM", "UNSENT", "OLDEST (s)", "SENT", "FAILED"
    );
    for s in backlog {
        out.push_str(&format!(
            "{:<32} {:>10} {:>12.1} {:>10} {:>8}\n",
            s.stream, s.unsent, s.oldest_unsent_secs, s.sent, s.failed
        ));
    }
    if backlog.is_empty() {
        out.push_str("(the outbox is empty)\n");
    }
    out
}
