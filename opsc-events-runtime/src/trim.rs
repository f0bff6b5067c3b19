//! Trimming: lossless by default (below the oldest entry any group still needs: pending, not
//! yet delivered, or scheduled for retry), with optional hard caps per stream whose drops of
//! needed entries are logged and counted.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::envelope::now_ms;
use crate::error::Result;
use crate::keys::Keys;
use crate::message_id::MessageId;
use crate::transport::{Broker, Transport, with_broker};

/// Hard caps for one stream. Without any, a stream is only trimmed losslessly.
///
/// ```
/// use std::time::Duration;
/// use opsc_events_runtime::trim::StreamLimits;
///
/// let limits = StreamLimits::new().max_len(1_000_000).max_age(Duration::from_secs(7 * 24 * 3600));
/// # let _ = limits;
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamLimits {
    pub(crate) max_len: Option<u64>,
    pub(crate) max_age: Option<Duration>,
}

impl StreamLimits {
    /// No caps.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keep at most `n` entries, even ones a group still needs.
    pub fn max_len(mut self, n: u64) -> Self {
        self.max_len = Some(n);
        self
    }

    /// Drop entries older than `age`, even ones a group still needs.
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }
}

/// What one trim of one stream did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrimReport {
    /// The stream name.
    pub stream: String,
    /// Entries removed because no group needed them any more.
    pub trimmed: u64,
    /// Entries removed by the hard caps.
    pub capped: u64,
    /// Of those, entries some group had not handled yet (lost to that group).
    pub capped_undelivered: u64,
}

/// Trims `streams` once.
pub(crate) async fn trim_all(
    transport: &Transport,
    keys: &Keys,
    streams: &BTreeMap<String, StreamLimits>,
) -> Result<Vec<TrimReport>> {
    let mut reports = Vec::with_capacity(streams.len());
    for (stream, limits) in streams {
        reports.push(trim_one(transport, keys, stream, limits).await?);
    }
    Ok(reports)
}

async fn trim_one(
    transport: &Transport,
    keys: &Keys,
    stream: &str,
    limits: &StreamLimits,
) -> Result<TrimReport> {
    let k = keys.stream(stream);
    let min_id = limits.max_age.map(|age| {
        MessageId::new(
            now_ms().saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX)),
            0,
        )
    });
    // The group list is read first and checked again inside the atomic step; if a group was
    // created or removed in between, read it again.
    for _ in 0..5 {
        let counts = with_broker!(transport, r => {
            let groups = r.groups(&k).await?;
            r.trim(&k, &groups, limits.max_len, min_id).await?
        });
        if let Some(c) = counts {
            let report = TrimReport {
                stream: stream.to_owned(),
                trimmed: c.trimmed,
                capped: c.capped,
                capped_undelivered: c.capped_needed,
            };
            if c.trimmed > 0 {
                tracing::debug!(
                    stream,
                    trimmed = c.trimmed,
                    "trimmed entries no group needs"
                );
                metrics::counter!("opsc_events_trimmed_total", "stream" => stream.to_owned())
                    .increment(c.trimmed);
            }
            if c.capped_needed > 0 {
                tracing::warn!(
                    stream,
                    capped = c.capped,
                    undelivered = c.capped_needed,
                    "hard cap dropped entries that a group had not handled yet"
                );
                metrics::counter!("opsc_events_capped_undelivered_total", "stream" => stream.to_owned())
                    .increment(c.capped_needed);
            }
            return Ok(report);
        }
    }
    tracing::warn!(
        stream,
        "groups kept changing during trimming; skipped this round"
    );
    Ok(TrimReport {
        stream: stream.to_owned(),
        trimmed: 0,
        capped: 0,
        capped_undelivered: 0,
    })
}
