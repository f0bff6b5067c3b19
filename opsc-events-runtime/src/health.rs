//! Health: whether the broker answers and every handler's consumer is reading, for liveness and
//! readiness probes.
//!
//! Each consumer keeps a [`ConsumerStatus`] that its read loop updates once per read (not per
//! message); [`Health::check`] combines them with a round trip to the broker and the groups'
//! backlog.
//!
//! It also lists the *stale groups* of the runtime's streams ([`HealthReport::stale_groups`]):
//! groups of other handlers (a renamed or removed handler leaves its group behind) with entries
//! waiting for them, in which no consumer has been active for longer than
//! [`RuntimeBuilder::stale_group_after`](crate::RuntimeBuilder::stale_group_after). Such a group
//! keeps every entry it has not read, so lossless trimming never passes it. They are a warning
//! for operators, not a failure of this process: they do not make the report unhealthy.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::info::StreamInfo;
use crate::keys::Keys;
use crate::transport::{Broker, Transport, with_broker};

/// A consumer with no progress for this long is stalled, unless its handler's timeout is
/// longer (then twice that timeout): see [`RuntimeBuilder::stall_after`](crate::RuntimeBuilder::stall_after).
pub const DEFAULT_STALL_AFTER: Duration = Duration::from_secs(60);

/// A group of another handler with no consumer active for this long is reported stale: see
/// [`RuntimeBuilder::stale_group_after`](crate::RuntimeBuilder::stale_group_after).
pub const DEFAULT_STALE_GROUP_AFTER: Duration = Duration::from_secs(24 * 3600);

/// What one handler's consumer is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConsumerState {
    /// The runtime is not running yet.
    NotStarted,
    /// Its last read (or the wait for one) succeeded.
    Reading,
    /// Its last read, or opening its connection, failed; it is retrying with backoff.
    Failing,
    /// It stopped (the runtime shut down).
    Stopped,
    /// It has made no progress for longer than its stall limit: no read returned, no call
    /// finished, or one settlement has been in progress that long, while it should be reading
    /// (see [`ConsumerHealth::stall`]).
    Stalled,
    /// One of its tasks died; the runtime stopped (see [`ConsumerHealth::last_error`]).
    Failed,
}

#[derive(Debug)]
struct StatusInner {
    state: ConsumerState,
    /// Failed reads in a row.
    failures: u32,
    last_error: Option<String>,
    last_read: Option<Instant>,
    /// How long without progress makes the consumer stalled.
    stall_after: Duration,
}

/// Shared between a consumer's read loop and [`Health`].
#[derive(Debug)]
pub(crate) struct ConsumerStatus {
    pub(crate) stream: &'static str,
    pub(crate) group: Arc<str>,
    inner: Mutex<StatusInner>,
    /// The origin of the millisecond clocks below.
    epoch: Instant,
    /// When the consumer last made progress (a read returned, a call finished, a settlement
    /// batch finished), in ms since `epoch`.
    progress_ms: AtomicU64,
    /// When the settlement batch in progress started, in ms since `epoch`, plus one; 0 when
    /// none is.
    settling_ms: AtomicU64,
    /// What became of the deliveries, for the metrics stream.
    pub(crate) counts: crate::metrics_stream::Counts,
}

impl ConsumerStatus {
    pub(crate) fn new(stream: &'static str, group: Arc<str>) -> Self {
        ConsumerStatus {
            stream,
            group,
            inner: Mutex::new(StatusInner {
                state: ConsumerState::NotStarted,
                failures: 0,
                last_error: None,
                last_read: None,
                stall_after: DEFAULT_STALL_AFTER,
            }),
            epoch: Instant::now(),
            progress_ms: AtomicU64::new(0),
            settling_ms: AtomicU64::new(0),
            counts: crate::metrics_stream::Counts::default(),
        }
    }

    fn ms(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// The consumer starts: progress counts from now, and it is stalled after `stall_after`
    /// without progress.
    pub(crate) fn starting(&self, stall_after: Duration) {
        self.lock().stall_after = stall_after;
        self.progress_at(Instant::now());
    }

    /// Progress was made at `at` (a call finished).
    pub(crate) fn progress_at(&self, at: Instant) {
        self.progress_ms.fetch_max(self.ms(at), Ordering::Relaxed);
    }

    /// A settlement batch starts (`true`) or finishes (`false`, which is progress).
    pub(crate) fn settling(&self, busy: bool) {
        let now = Instant::now();
        if busy {
            self.settling_ms.store(self.ms(now) + 1, Ordering::Relaxed);
        } else {
            self.settling_ms.store(0, Ordering::Relaxed);
            self.progress_at(now);
        }
    }

    /// A settlement finished (progress); `busy` when others are still in progress (their
    /// clock restarts: the settler is moving).
    pub(crate) fn settled(&self, busy: bool) {
        let now = Instant::now();
        self.settling_ms
            .store(if busy { self.ms(now) + 1 } else { 0 }, Ordering::Relaxed);
        self.progress_at(now);
    }

    /// One of the consumer's tasks died.
    pub(crate) fn failed(&self, reason: String) {
        let mut s = self.lock();
        s.state = ConsumerState::Failed;
        s.last_error = Some(reason);
    }

    /// Why the consumer is stalled, if it is.
    fn stall(&self, state: ConsumerState, stall_after: Duration) -> Option<String> {
        if state != ConsumerState::Reading {
            return None;
        }
        let now = self.ms(Instant::now());
        let settling = self.settling_ms.load(Ordering::Relaxed);
        if settling != 0 {
            let busy = Duration::from_millis(now.saturating_sub(settling - 1));
            if busy > stall_after {
                return Some(format!(
                    "one settlement (acknowledge, retry or dead-letter) has been in progress for {busy:?}"
                ));
            }
        }
        let idle =
            Duration::from_millis(now.saturating_sub(self.progress_ms.load(Ordering::Relaxed)));
        (idle > stall_after)
            .then(|| format!("no read returned and no call or settlement finished for {idle:?}"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StatusInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A read returned (with or without entries).
    pub(crate) fn read_ok(&self) {
        let mut s = self.lock();
        s.state = ConsumerState::Reading;
        s.failures = 0;
        let now = Instant::now();
        s.last_read = Some(now);
        drop(s);
        self.progress_at(now);
    }

    /// A read, or opening the reader, failed.
    pub(crate) fn read_failed(&self, error: &dyn std::fmt::Display) {
        let mut s = self.lock();
        s.state = ConsumerState::Failing;
        s.failures = s.failures.saturating_add(1);
        s.last_error = Some(error.to_string());
    }

    pub(crate) fn stopped(&self) {
        self.lock().state = ConsumerState::Stopped;
    }
}

/// One handler's consumer, as [`Health::check`] saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerHealth {
    /// The handler's stream.
    pub stream: &'static str,
    /// Its consumer group.
    pub group: String,
    /// What it is doing.
    pub state: ConsumerState,
    /// Failed reads in a row (0 while reading).
    pub failures: u32,
    /// The last read error, if any read ever failed (kept after recovery, for the record).
    pub last_error: Option<String>,
    /// Time since its last successful read (a healthy consumer reads at least once per
    /// blocking-read period, 1 s by default, even when idle).
    pub since_last_read: Option<Duration>,
    /// Entries of the stream not yet delivered to the group (`None` when unknown, e.g. the
    /// broker did not answer).
    pub lag: Option<u64>,
    /// Entries delivered to the group and not yet acknowledged (`None` when unknown).
    pub pending: Option<u64>,
    /// Why the consumer is [`ConsumerState::Stalled`], when it is.
    pub stall: Option<String>,
}

/// A consumer group on one of the runtime's streams, with entries waiting for it, that no
/// consumer has used for longer than
/// [`RuntimeBuilder::stale_group_after`](crate::RuntimeBuilder::stale_group_after): most likely
/// left behind by a renamed or removed handler. Lossless trimming keeps every entry it still
/// needs (`lag` undelivered, `pending` unacknowledged); `opsc groups remove STREAM GROUP`
/// deletes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StaleGroup {
    /// The stream.
    pub stream: String,
    /// The group.
    pub group: String,
    /// Time since one of its consumers was last active; `None` when it has no consumer.
    pub idle: Option<Duration>,
    /// Entries not yet delivered to it (`None` when the broker cannot tell).
    pub lag: Option<u64>,
    /// Entries delivered to it and not acknowledged.
    pub pending: u64,
}

/// The result of [`Health::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthReport {
    /// The broker answered and every consumer is reading (none stalled, failed or stopped).
    /// Stale groups do not count: they are about other handlers, not this process.
    pub healthy: bool,
    /// `"redis"` or `"memory"`.
    pub transport: &'static str,
    /// The broker's round trip (`PING` on Redis), or why it failed.
    pub broker: Result<Duration, String>,
    /// One per handler the runtime runs.
    pub consumers: Vec<ConsumerHealth>,
    /// Groups on the runtime's streams (its handlers' streams and those given
    /// [`stream_limits`](crate::RuntimeBuilder::stream_limits)) with entries waiting for them
    /// (undelivered or pending) in which no consumer has been active for longer than
    /// [`stale_group_after`](crate::RuntimeBuilder::stale_group_after), or which have no
    /// consumer at all (see [`GroupInfo::is_stale`](crate::GroupInfo::is_stale)). The groups of this runtime's own handlers are never
    /// listed (their state is in `consumers`). Empty when the broker did not answer.
    pub stale_groups: Vec<StaleGroup>,
}

impl HealthReport {
    /// For a liveness probe (`/healthz`): false only when restarting the process is the cure —
    /// a consumer failed (one of its tasks died) or stalled. A broker outage does not make it
    /// false: the consumers reconnect by themselves, and restarting every process of a fleet
    /// while Redis is down only adds load when it comes back.
    pub fn live(&self) -> bool {
        self.consumers
            .iter()
            .all(|c| !matches!(c.state, ConsumerState::Failed | ConsumerState::Stalled))
    }

    /// For a readiness probe (`/readyz`): the broker answers and every consumer is reading
    /// ([`healthy`](Self::healthy)).
    pub fn ready(&self) -> bool {
        self.healthy
    }
}

/// A cheap, cloneable handle that checks a runtime's health, before, while and after it runs
/// (obtained with [`Runtime::health`](crate::Runtime::health)).
///
/// ```
/// # async fn demo() -> opsc_events_runtime::Result<()> {
/// use opsc_events_runtime::Runtime;
///
/// let rt = Runtime::builder().service("inventory").memory().no_handlers().build().await?;
/// let health = rt.health();
/// let report = health.check().await;
/// assert!(report.healthy, "{report:?}");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Health {
    pub(crate) transport: Transport,
    pub(crate) keys: Keys,
    pub(crate) consumers: Arc<[Arc<ConsumerStatus>]>,
    /// Every stream the runtime trims (its handlers' streams among them), for stale groups.
    pub(crate) streams: Arc<[String]>,
    /// How long without consumer activity makes another group stale.
    pub(crate) stale_after: Duration,
    /// The bound of the whole check.
    pub(crate) timeout: Duration,
}

impl Health {
    /// Checks the broker (one round trip) and every consumer, and reads the groups' backlog;
    /// never takes longer than the runtime's response timeout.
    pub async fn check(&self) -> HealthReport {
        let started = Instant::now();
        let broker = match tokio::time::timeout(self.timeout, self.transport.ping()).await {
            Ok(Ok(())) => Ok(started.elapsed()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        };
        let mut infos: Vec<StreamInfo> = Vec::new();
        if broker.is_ok() {
            let mut streams: Vec<&str> = self.consumers.iter().map(|c| c.stream).collect();
            streams.extend(self.streams.iter().map(String::as_str));
            streams.sort_unstable();
            streams.dedup();
            for stream in streams {
                let left = self.timeout.saturating_sub(started.elapsed());
                let keys = self.keys.stream(stream);
                let info = with_broker!(&self.transport, b => {
                    tokio::time::timeout(left, b.stream_info(&keys)).await
                });
                if let Ok(Ok(info)) = info {
                    infos.push(info);
                }
            }
        }
        let consumers: Vec<ConsumerHealth> = self
            .consumers
            .iter()
            .map(|c| {
                let group = infos
                    .iter()
                    .filter(|i| i.stream == c.stream)
                    .flat_map(|i| &i.groups)
                    .find(|g| *g.name == *c.group);
                let s = c.lock();
                let stall = c.stall(s.state, s.stall_after);
                ConsumerHealth {
                    stream: c.stream,
                    group: c.group.to_string(),
                    state: if stall.is_some() {
                        ConsumerState::Stalled
                    } else {
                        s.state
                    },
                    stall,
                    failures: s.failures,
                    last_error: s.last_error.clone(),
                    since_last_read: s.last_read.map(|t| t.elapsed()),
                    lag: group.and_then(|g| g.lag),
                    pending: group.map(|g| g.pending),
                }
            })
            .collect();
        let stale_groups = infos
            .iter()
            .flat_map(|i| stale_groups(i, &self.consumers, self.stale_after))
            .collect();
        HealthReport {
            healthy: broker.is_ok() && consumers.iter().all(|c| c.state == ConsumerState::Reading),
            transport: self.transport.name(),
            broker,
            consumers,
            stale_groups,
        }
    }
}

/// The groups of `info` stale after `after`, except those of `own` consumers.
fn stale_groups(
    info: &StreamInfo,
    own: &[Arc<ConsumerStatus>],
    after: Duration,
) -> Vec<StaleGroup> {
    info.groups
        .iter()
        .filter(|g| {
            !own.iter()
                .any(|c| c.stream == info.stream && *c.group == *g.name)
        })
        .filter(|g| g.is_stale(after))
        .map(|g| StaleGroup {
            stream: info.stream.clone(),
            group: g.name.clone(),
            idle: g.idle(),
            lag: g.lag,
            pending: g.pending,
        })
        .collect()
}

/// A stale group is warned about at most this often (per stream and group).
const STALE_WARNING_EVERY: Duration = Duration::from_secs(3600);

/// What the runtime's maintenance task records every trim interval: the backlog gauges, and a
/// warning for each stale group of its streams.
#[derive(Debug)]
pub(crate) struct Backlog {
    /// The runtime's own consumers (their groups are never stale).
    own: Arc<[Arc<ConsumerStatus>]>,
    stale_after: Duration,
    /// When each `(stream, group)` was last warned about.
    warned: HashMap<(String, String), Instant>,
}

impl Backlog {
    pub(crate) fn new(own: Arc<[Arc<ConsumerStatus>]>, stale_after: Duration) -> Self {
        Backlog {
            own,
            stale_after,
            warned: HashMap::new(),
        }
    }

    /// Whether to warn about `group` at `now`: not if it was warned about within
    /// [`STALE_WARNING_EVERY`].
    fn should_warn(&mut self, stream: &str, group: &str, now: Instant) -> bool {
        let key = (stream.to_owned(), group.to_owned());
        match self.warned.get(&key) {
            Some(at) if now.saturating_duration_since(*at) < STALE_WARNING_EVERY => false,
            _ => {
                self.warned.insert(key, now);
                true
            }
        }
    }

    /// Sets the backlog gauges of `streams` (`opsc_events_lag`, `opsc_events_pending`,
    /// `opsc_events_scheduled` per stream and group, `opsc_events_dead_letters` per stream) and
    /// logs each stale group at warn, at most once an hour per stream and group.
    pub(crate) async fn record<'a>(
        &mut self,
        transport: &Transport,
        keys: &Keys,
        streams: impl IntoIterator<Item = &'a str>,
    ) {
        for stream in streams {
            let sk = keys.stream(stream);
            let info = match with_broker!(transport, b => b.stream_info(&sk).await) {
                Ok(info) => info,
                Err(e) => {
                    tracing::debug!(stream, error = %e, "cannot read the backlog for the gauges");
                    continue;
                }
            };
            let s = stream.to_owned();
            metrics::gauge!("opsc_events_dead_letters", "stream" => s.clone())
                .set(info.dead_letters as f64);
            for g in &info.groups {
                let labels = [("stream", s.clone()), ("group", g.name.clone())];
                if let Some(lag) = g.lag {
                    metrics::gauge!("opsc_events_lag", &labels).set(lag as f64);
                }
                metrics::gauge!("opsc_events_pending", &labels).set(g.pending as f64);
                metrics::gauge!("opsc_events_scheduled", &labels).set(g.scheduled as f64);
            }
            let now = Instant::now();
            for stale in stale_groups(&info, &self.own, self.stale_after) {
                if self.should_warn(&stale.stream, &stale.group, now) {
                    tracing::warn!(
                        stream = %stale.stream,
                        group = %stale.group,
                        idle = ?stale.idle,
                        lag = ?stale.lag,
                        pending = stale.pending,
                        "a consumer group with entries waiting has had no active consumer for \
                         longer than stale_group_after; it holds back trimming (remove it with \
                         `opsc groups remove` if no handler uses it any more)"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_group_is_warned_about_at_most_once_an_hour() {
        let mut backlog = Backlog::new(Arc::new([]), DEFAULT_STALE_GROUP_AFTER);
        let t0 = Instant::now();
        assert!(backlog.should_warn("s", "g", t0));
        assert!(!backlog.should_warn("s", "g", t0 + Duration::from_secs(3599)));
        assert!(backlog.should_warn("s", "other", t0), "per group");
        assert!(backlog.should_warn("t", "g", t0), "per stream");
        assert!(backlog.should_warn("s", "g", t0 + STALE_WARNING_EVERY));
        assert!(!backlog.should_warn("s", "g", t0 + STALE_WARNING_EVERY));
    }
}
