//! Transports: where entries are appended, read, acknowledged and reclaimed.
//!
//! [`Broker`] is the one interface the publisher and the consumer loops use; a transport knows
//! streams, groups and entries, never handlers. Redis implements it; the embedded in-memory
//! broker joins behind the same trait.

pub(crate) mod memory;
pub(crate) mod redis;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::envelope::EncodedEvent;
use crate::error::Result;
use crate::handler::Start;
use crate::keys::StreamKeys;
use crate::message_id::MessageId;
use crate::priority::{Lanes, Priority};

/// Field name/value pairs of one entry, in wire order.
pub(crate) type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// An entry as read; `fields` is `None` when the entry was deleted while pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawEntry {
    pub(crate) id: MessageId,
    pub(crate) fields: Option<Fields>,
}

/// Where a delivery lives while it is being handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// In the group's pending list (a first delivery, a resume or a reclaim).
    Pending,
    /// In the group's retry schedule, leased with this token. `link`: the trace context
    /// (`traceparent` form) of the first traced attempt, when one was recorded (`otel`).
    Scheduled {
        lease: Arc<str>,
        link: Option<Arc<str>>,
    },
}

/// An entry delivered to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Delivery {
    pub(crate) id: MessageId,
    /// `None` when the entry was deleted from the stream while pending.
    pub(crate) fields: Option<Fields>,
    /// Deliveries to the group (pending list), or the attempt number (retry schedule).
    pub(crate) delivery_count: u32,
    pub(crate) source: Source,
}

/// A message given up on: dead-lettered (`keep`) or dropped.
#[derive(Debug, Clone)]
pub(crate) struct Letter<'a> {
    pub(crate) handler: &'a str,
    pub(crate) reason: &'a str,
    pub(crate) error: &'a str,
    pub(crate) attempts: u32,
    pub(crate) keep: bool,
}

/// What became of a [`Letter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LetterOutcome {
    /// Stored in the dead-letter stream under this id.
    Stored(MessageId),
    /// Dropped (dead letters off).
    Dropped,
    /// The message was no longer ours (finished or leased by another consumer): nothing done.
    NotOurs,
}

/// What a replay did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplayOutcome {
    Replayed,
    /// The letter is gone, or is not the one listed.
    Gone,
    /// The letter was replayed too often already.
    LoopGuard,
}

/// What one trim did; `None` from [`Broker::trim`] means the groups changed meanwhile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TrimCounts {
    /// Entries no group needed any more.
    pub(crate) trimmed: u64,
    /// Entries removed by the hard caps.
    pub(crate) capped: u64,
    /// Of those, entries some group still needed.
    pub(crate) capped_needed: u64,
    /// The step stopped at its bound: there is more to trim.
    pub(crate) more: bool,
}

/// The result of one reclaim step.
#[derive(Debug, Clone, Default)]
pub(crate) struct Claimed {
    /// Where the next step starts; `0-0` when the scan is complete.
    pub(crate) next: MessageId,
    pub(crate) entries: Vec<Delivery>,
    /// Pending entries that no longer exist in the stream (removed from the pending list).
    pub(crate) deleted: Vec<MessageId>,
    /// The next idle entry, left unclaimed: claiming it would make it a suspect, to be claimed
    /// only when it can run alone (see `Broker::claim`).
    pub(crate) suspect: Option<MessageId>,
}

/// Streams, groups and entries. Implementations must never block one caller behind another's
/// blocking read: blocking reads go through a [`Broker::Reader`] of their own.
pub(crate) trait Broker: Clone + Send + Sync + 'static {
    /// A connection dedicated to one consumer loop's blocking reads.
    type Reader: Send + 'static;

    /// Appends one entry to the stream at `key`.
    fn append(
        &self,
        key: &str,
        entry: &EncodedEvent,
    ) -> impl Future<Output = Result<MessageId>> + Send;

    /// Appends entries in one round trip, in order.
    fn append_all(
        &self,
        key: &str,
        entries: &[EncodedEvent],
    ) -> impl Future<Output = Result<Vec<MessageId>>> + Send;

    /// Creates the group (and the stream) if missing.
    fn ensure_group(
        &self,
        key: &str,
        group: &str,
        start: Start,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Opens a dedicated reader.
    fn reader(&self) -> impl Future<Output = Result<Self::Reader>> + Send;

    /// Reads up to `count` never-delivered entries for `consumer`, waiting up to `block`.
    fn read_new(
        &self,
        reader: &mut Self::Reader,
        key: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> impl Future<Output = Result<Vec<Delivery>>> + Send;

    /// Reads up to `count` of `consumer`'s own pending entries after `after` (used when a
    /// consumer restarts under the same name).
    fn read_own_pending(
        &self,
        reader: &mut Self::Reader,
        key: &str,
        group: &str,
        consumer: &str,
        after: MessageId,
        count: usize,
    ) -> impl Future<Output = Result<Vec<Delivery>>> + Send;

    /// Acknowledges entries.
    fn ack(
        &self,
        key: &str,
        group: &str,
        ids: &[MessageId],
    ) -> impl Future<Output = Result<()>> + Send;

    /// Resets the idle time of those of `ids` that are pending for `consumer`, without counting
    /// a delivery (`XCLAIM … JUSTID` to the same consumer); returns them. Ids pending for
    /// another consumer, or no longer pending, are left alone and not returned.
    fn touch(
        &self,
        key: &str,
        group: &str,
        consumer: &str,
        ids: &[MessageId],
    ) -> impl Future<Output = Result<Vec<MessageId>>> + Send;

    /// Sets the delivery count of the pending entries `ids` to `count`, as `consumer`'s
    /// (`XCLAIM … 0 <ids> RETRYCOUNT <count> JUSTID`; ids no longer pending are left alone): the
    /// counts of entries read ahead follow the attempts started, not the reads (see
    /// `consumer::count`).
    fn set_delivery_counts(
        &self,
        key: &str,
        group: &str,
        consumer: &str,
        ids: &[MessageId],
        count: u32,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Claims for `consumer` the first entry idle at least `min_idle`, scanning from `cursor`
    /// (a bounded scan: `Claimed::next` says where to go on). When `alone_at > 0` and the claim
    /// would bring that entry's delivery count to `alone_at` or more, it is left unclaimed and
    /// returned in `Claimed::suspect` (checked and claimed in one atomic step).
    fn claim(
        &self,
        key: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        cursor: MessageId,
        alone_at: u32,
    ) -> impl Future<Output = Result<Claimed>> + Send;

    /// Moves a failed message to the group's retry schedule, due at `due_ms`, with `attempts`
    /// attempts made. `link`: the trace context of the failed attempt, kept (the first one
    /// given) so that later attempts can link to it. False when it was no longer ours.
    #[allow(clippy::too_many_arguments)] // one atomic step needs all of it
    fn schedule_retry(
        &self,
        keys: &StreamKeys,
        group: &str,
        id: MessageId,
        source: &Source,
        attempts: u32,
        delay_ms: u64,
        error: &str,
        link: Option<&str>,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Removes a retry that succeeded from the schedule. False when the lease was not ours.
    fn complete_retry(
        &self,
        keys: &StreamKeys,
        group: &str,
        id: MessageId,
        lease: &str,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Dead-letters (or drops) a message and forgets it, atomically.
    fn dead_letter(
        &self,
        keys: &StreamKeys,
        group: &str,
        id: MessageId,
        source: &Source,
        letter: &Letter<'_>,
    ) -> impl Future<Output = Result<LetterOutcome>> + Send;

    /// Leases up to `count` due retries for `lease_ms`; also returns how many milliseconds until
    /// the next one is due. Due times and lease ends are the broker's clock, not the caller's.
    fn lease_retries(
        &self,
        keys: &StreamKeys,
        group: &str,
        lease_ms: u64,
        count: usize,
    ) -> impl Future<Output = Result<(Vec<Delivery>, Option<u64>)>> + Send;

    /// Up to `count` dead letters after `after` (from the start when `None`) and up to
    /// `until` (inclusive; to the end when `None`), oldest first.
    fn read_dead_letters(
        &self,
        keys: &StreamKeys,
        after: Option<MessageId>,
        until: Option<MessageId>,
        count: usize,
    ) -> impl Future<Output = Result<Vec<RawEntry>>> + Send;

    /// The id of the newest dead letter, if there is one.
    fn last_dead_letter(
        &self,
        keys: &StreamKeys,
    ) -> impl Future<Output = Result<Option<MessageId>>> + Send;

    /// Deletes dead letters; returns how many existed.
    fn delete_dead_letters(
        &self,
        keys: &StreamKeys,
        ids: &[MessageId],
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Puts a dead letter back into `group`'s retry schedule (see the REPLAY script).
    fn replay_dead_letter(
        &self,
        keys: &StreamKeys,
        letter_id: MessageId,
        group: &str,
        original_id: MessageId,
        max_replays: u32,
    ) -> impl Future<Output = Result<ReplayOutcome>> + Send;

    /// One bounded step of trimming (see the TRIM script): below the oldest entry a group still
    /// needs, then the hard caps (`max_age` by the broker's clock). `token` names the caller
    /// for the one-trimmer-at-a-time lock; `None` when another instance is trimming the stream.
    fn trim(
        &self,
        keys: &StreamKeys,
        max_len: Option<u64>,
        max_age: Option<Duration>,
        token: &str,
    ) -> impl Future<Output = Result<Option<TrimCounts>>> + Send;

    /// The names of the streams under `prefix` (the part between the braces of their keys).
    fn streams(&self, prefix: &str) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// Up to `count` entries of the stream at `key` after `after` (from the start when `None`).
    fn read_range(
        &self,
        key: &str,
        after: Option<MessageId>,
        count: usize,
    ) -> impl Future<Output = Result<Vec<RawEntry>>> + Send;

    /// Up to `count` entries of the stream at `key` before `before` (from the newest when
    /// `None`), newest first.
    fn read_range_rev(
        &self,
        key: &str,
        before: Option<MessageId>,
        count: usize,
    ) -> impl Future<Output = Result<Vec<RawEntry>>> + Send;

    /// The stream's length, dead letters and groups.
    fn stream_info(
        &self,
        keys: &StreamKeys,
    ) -> impl Future<Output = Result<crate::info::StreamInfo>> + Send;

    /// Removes consumers of the group, other than `keep`, that own no pending entry and have
    /// been idle at least `min_idle`; returns their names. Must be atomic per consumer: a
    /// consumer that owns entries is never removed.
    fn remove_idle_consumers(
        &self,
        key: &str,
        group: &str,
        keep: &str,
        min_idle: Duration,
    ) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// Schedules a delayed event (its fields packed by `delayed::pack`), due `delay_ms` after
    /// the broker's now, to be moved into the stream's lane `lane`. Returns the due time (ms
    /// since the epoch), or `None` when an event with this id is already scheduled on the
    /// stream.
    fn schedule_delayed(
        &self,
        keys: &StreamKeys,
        event_id: &str,
        delay_ms: u64,
        packed: &[u8],
        lane: Priority,
    ) -> impl Future<Output = Result<Option<u64>>> + Send;

    /// Adds `lane` to the stream's lane marker (`StreamKeys::lanes_marker`).
    fn mark_lane(
        &self,
        keys: &StreamKeys,
        lane: Priority,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The stream's lanes in use: `normal` and those in its lane marker.
    fn lanes(&self, keys: &StreamKeys) -> impl Future<Output = Result<Lanes>> + Send;

    /// Removes a delayed event not yet moved; false when it was not scheduled.
    fn cancel_delayed(
        &self,
        keys: &StreamKeys,
        event_id: &str,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// For the holder of the stream's move lease (taken or renewed for `lease_ms` by `token`):
    /// appends up to `max` due delayed events to the stream, removing each from the schedule
    /// in the same atomic step.
    fn move_due(
        &self,
        keys: &StreamKeys,
        token: &str,
        lease_ms: u64,
        max: usize,
    ) -> impl Future<Output = Result<crate::delayed::Moved>> + Send;

    /// Scheduled events, soonest first.
    fn list_delayed(
        &self,
        keys: &StreamKeys,
        filter: &crate::delayed::DelayedFilter,
    ) -> impl Future<Output = Result<Vec<crate::delayed::DelayedEvent>>> + Send;

    // Administration: the schema registry.

    /// Sets the `fields` of the schema registry hash at `key` (none: only reads), then returns
    /// every field of it, in one atomic step.
    fn schema_registry(
        &self,
        key: &str,
        fields: &[(String, String)],
    ) -> impl Future<Output = Result<Vec<(String, String)>>> + Send;
}

/// The transport a runtime was built with.
#[derive(Debug, Clone)]
pub(crate) enum Transport {
    Redis(redis::RedisTransport),
    Memory(memory::MemoryBroker),
}

/// Runs `$body` with `$b` bound to the transport's broker, whichever it is.
macro_rules! with_broker {
    ($transport:expr, $b:ident => $body:expr) => {
        match $transport {
            $crate::transport::Transport::Redis($b) => $body,
            $crate::transport::Transport::Memory($b) => $body,
        }
    };
}
pub(crate) use with_broker;

impl Transport {
    /// `"redis"` or `"memory"`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Transport::Redis(_) => "redis",
            Transport::Memory(_) => "memory",
        }
    }

    /// One round trip to the broker (`PING` on Redis).
    pub(crate) async fn ping(&self) -> Result<()> {
        match self {
            Transport::Redis(r) => r.ping().await,
            Transport::Memory(_) => Ok(()),
        }
    }

    /// The bound of one command (the embedded broker answers at once; 5 s for checks on it).
    pub(crate) fn response_timeout(&self) -> std::time::Duration {
        match self {
            Transport::Redis(r) => r.response_timeout,
            Transport::Memory(_) => std::time::Duration::from_secs(5),
        }
    }

    /// `WAIT replicas timeout` on the publishing connection: how many replicas acknowledged
    /// every write sent on it so far; `None` on the embedded broker (it has no replicas).
    pub(crate) async fn wait_replicas(
        &self,
        replicas: u32,
        timeout: std::time::Duration,
    ) -> Result<Option<u32>> {
        match self {
            Transport::Redis(r) => r.wait_replicas(replicas, timeout).await.map(Some),
            Transport::Memory(_) => Ok(None),
        }
    }

    /// Appends one entry to the stream at `key`.
    pub(crate) async fn append(&self, key: &str, entry: &EncodedEvent) -> Result<MessageId> {
        with_broker!(self, b => Broker::append(b, key, entry).await)
    }

    /// Appends entries to the stream at `key` in one round trip, in order.
    pub(crate) async fn append_all(
        &self,
        key: &str,
        entries: &[EncodedEvent],
    ) -> Result<Vec<MessageId>> {
        with_broker!(self, b => Broker::append_all(b, key, entries).await)
    }

    /// Appends raw fields.
    pub(crate) async fn append_raw(
        &self,
        key: &str,
        fields: &[(&str, &[u8])],
    ) -> Result<MessageId> {
        match self {
            Transport::Redis(r) => r.bounded("XADD", key, r.append_raw(key, fields)).await,
            Transport::Memory(m) => Ok(m.append_fields(
                key,
                fields
                    .iter()
                    .map(|(k, v)| (k.as_bytes().to_vec(), v.to_vec()))
                    .collect(),
            )),
        }
    }
}
