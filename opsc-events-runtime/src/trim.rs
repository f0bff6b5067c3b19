//! Trimming: lossless by default (below the oldest entry any group still needs: pending or not
//! yet delivered; a message scheduled for retry keeps a copy of its fields), with optional hard
//! caps per stream whose drops of needed entries are logged and counted. Work is bounded: each
//! step is one script removing at most about 100,000 entries per kind of trim, and one instance
//! at a time trims a stream.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::Result;
use crate::keys::{Keys, StreamKeys};
use crate::priority::Priority;
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

/// Trim steps one stream gets per pass (each removes at most about 100,000 entries per kind of
/// trim, in one script; Redis serves other clients between steps).
const MAX_STEPS: usize = 100;

/// Trims `streams` once, each in bounded steps. A stream that fails does not stop the others:
/// they are trimmed, and the first error is returned after. `token` names this instance for the
/// lock that lets one instance at a time trim a stream.
pub(crate) async fn trim_all(
    transport: &Transport,
    keys: &Keys,
    streams: &BTreeMap<String, StreamLimits>,
    token: &str,
) -> Result<Vec<TrimReport>> {
    let mut reports = Vec::with_capacity(streams.len());
    let mut first_error = None;
    for (stream, limits) in streams {
        match trim_one(transport, keys, stream, limits, token).await {
            Ok(report) => reports.push(report),
            Err(e) => {
                tracing::warn!(stream, error = %e, "trimming this stream failed; the others are trimmed");
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(reports),
    }
}

async fn trim_one(
    transport: &Transport,
    keys: &Keys,
    stream: &str,
    limits: &StreamLimits,
    token: &str,
) -> Result<TrimReport> {
    let family = keys.stream(stream);
    let mut report = TrimReport {
        stream: stream.to_owned(),
        trimmed: 0,
        capped: 0,
        capped_undelivered: 0,
    };
    // Every priority lane of the stream is trimmed the same way (the caps apply to each lane).
    let lanes = with_broker!(transport, r => r.lanes(&family).await?);
    for lane in std::iter::once(Priority::Normal).chain(lanes.extra()) {
        trim_lane(transport, &family.lane(lane), limits, token, &mut report).await?;
    }
    if report.trimmed > 0 {
        tracing::debug!(
            stream,
            trimmed = report.trimmed,
            "trimmed entries no group needs"
        );
        metrics::counter!("opsc_events_trimmed_total", "stream" => stream.to_owned())
            .increment(report.trimmed);
    }
    if report.capped_undelivered > 0 {
        tracing::warn!(
            stream,
            capped = report.capped,
            undelivered = report.capped_undelivered,
            "hard cap dropped entries that a group had not handled yet"
        );
        metrics::counter!("opsc_events_capped_undelivered_total", "stream" => stream.to_owned())
            .increment(report.capped_undelivered);
    }
    Ok(report)
}

/// Trims one lane of a stream in bounded steps, adding to `report`.
async fn trim_lane(
    transport: &Transport,
    k: &StreamKeys,
    limits: &StreamLimits,
    token: &str,
    report: &mut TrimReport,
) -> Result<()> {
    let stream = k.stream.as_str();
    for step in 0..MAX_STEPS {
        crate::fault::hit(stream, "trim").await;
        let counts = with_broker!(transport, r => {
            r.trim(k, limits.max_len, limits.max_age, token).await?
        });
        let Some(c) = counts else {
            tracing::debug!(stream, "another instance is trimming this stream");
            break;
        };
        report.trimmed += c.trimmed;
        report.capped += c.capped;
        report.capped_undelivered += c.capped_needed;
        if !c.more {
            break;
        }
        if step + 1 == MAX_STEPS {
            tracing::info!(
                stream,
                "more to trim than one pass does; the next pass goes on"
            );
        }
        tokio::task::yield_now().await;
    }
    Ok(())
}
