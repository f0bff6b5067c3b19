//! The embedded broker: Redis Streams semantics in process — streams, consumer groups, pending
//! lists with delivery counts and idle times, reclaim, retry schedules with leases, dead letters,
//! replay and trimming — so that the same runtime, tests and examples run without Redis.
//!
//! Every operation mirrors the Redis command or script the Redis transport uses (see
//! `transport::redis::scripts`); the conformance suite runs the same tests against both.

mod delayed;
mod groups;
mod retry;
mod state;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use self::state::State;
use crate::envelope::EncodedEvent;
use crate::error::{Error, Result};
use crate::handler::Start;
use crate::keys::StreamKeys;
use crate::message_id::MessageId;
use crate::priority::{Lanes, Priority};
use crate::transport::{
    Broker, Claimed, Delivery, Fields, Letter, LetterOutcome, RawEntry, ReplayOutcome, Source,
    TrimCounts,
};

/// An in-process broker. `Runtime::builder().memory()` gives a runtime one of its own;
/// `MemoryBroker::new()` and `.memory_with(broker.clone())` let several runtimes in one process
/// share one (to run several services, or several consumers of one group, in a test).
///
/// ```
/// use opsc_events_runtime::MemoryBroker;
///
/// let broker = MemoryBroker::new();
/// let shared = broker.clone(); // the same broker
/// # let _ = shared;
/// ```
#[derive(Clone, Default)]
pub struct MemoryBroker {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    /// Woken on every append, for blocked readers.
    appended: Notify,
}

impl std::fmt::Debug for MemoryBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("MemoryBroker")
            .field("streams", &state.streams.len())
            .finish_non_exhaustive()
    }
}

/// The embedded broker's clock, in milliseconds since the epoch: the wall clock when first
/// asked, then advanced by tokio's clock. Under `tokio::time::pause()` (a test) it follows
/// tokio's paused time, so a 30 s backoff, a claim timeout or a delayed event takes no real
/// time; otherwise it is the wall clock made monotonic (ids never go back).
pub(super) fn now_ms() -> u64 {
    static BASE: std::sync::OnceLock<(u64, std::time::Instant)> = std::sync::OnceLock::new();
    let (wall, at) = *BASE.get_or_init(|| (crate::envelope::now_ms(), std::time::Instant::now()));
    let since = tokio::time::Instant::now()
        .into_std()
        .saturating_duration_since(at);
    wall.saturating_add(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// A reader of the embedded broker (no connection to hold).
#[derive(Debug)]
pub(crate) struct MemoryReader;

fn owned(entry: &EncodedEvent) -> Fields {
    entry
        .fields()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.to_vec()))
        .collect()
}

fn no_group(key: &str, group: &str) -> Error {
    Error::NoGroup {
        key: key.to_owned(),
        group: group.to_owned(),
    }
}

/// The fields a dead letter adds; original fields of the same name are not copied.
const OURS: [&str; 11] = [
    "original_id",
    "priority",
    "stream",
    "group",
    "handler",
    "reason",
    "error",
    "attempts",
    "first_failed_at",
    "failed_at",
    "replays",
];

impl MemoryBroker {
    /// A new, empty broker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets one field of a hash, as another process would with `HSET` (tests write schema
    /// registry entries of services that are not running this way).
    #[doc(hidden)]
    pub fn put_hash_field_for_tests(&self, key: &str, field: &str, value: &str) {
        self.lock()
            .hashes
            .entry(key.to_owned())
            .or_default()
            .insert(field.to_owned(), value.to_owned());
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-changed in a way that
        // matters more than losing the broker; keep serving.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends raw fields to the stream at `key` (for tests and tools).
    pub(crate) fn append_fields(&self, key: &str, fields: Fields) -> MessageId {
        let id = self
            .lock()
            .streams
            .entry(key.to_owned())
            .or_default()
            .append(now_ms(), fields);
        self.inner.appended.notify_waiters();
        id
    }

    /// The original fields of `id`: from the stream, or the copy a replay kept.
    fn original(state: &State, keys: &StreamKeys, record: &str, id: MessageId) -> Option<Fields> {
        state
            .streams
            .get(&keys.events)
            .and_then(|s| s.entries.get(&id).cloned())
            .or_else(|| state.records.get(record).and_then(|r| r.copy.clone()))
    }
}

impl Broker for MemoryBroker {
    type Reader = MemoryReader;

    async fn append(&self, key: &str, entry: &EncodedEvent) -> Result<MessageId> {
        self.append_now(key, entry)
    }

    async fn append_all(&self, key: &str, entries: &[EncodedEvent]) -> Result<Vec<MessageId>> {
        self.append_all_now(key, entries)
    }

    async fn ensure_group(&self, key: &str, group: &str, start: Start) -> Result<()> {
        self.ensure_group_now(key, group, start)
    }

    async fn reader(&self) -> Result<MemoryReader> {
        Ok(MemoryReader)
    }

    async fn read_new(
        &self,
        _reader: &mut MemoryReader,
        key: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>> {
        self.read_new_now(_reader, key, group, consumer, count, block)
            .await
    }

    async fn read_own_pending(
        &self,
        _reader: &mut MemoryReader,
        key: &str,
        group: &str,
        consumer: &str,
        after: MessageId,
        count: usize,
    ) -> Result<Vec<Delivery>> {
        self.read_own_pending_now(_reader, key, group, consumer, after, count)
    }

    async fn ack(&self, key: &str, group: &str, ids: &[MessageId]) -> Result<()> {
        self.ack_now(key, group, ids)
    }

    async fn touch(
        &self,
        key: &str,
        group: &str,
        consumer: &str,
        ids: &[MessageId],
    ) -> Result<Vec<MessageId>> {
        self.touch_now(key, group, consumer, ids)
    }

    async fn set_delivery_counts(
        &self,
        key: &str,
        group: &str,
        consumer: &str,
        ids: &[MessageId],
        count: u32,
    ) -> Result<()> {
        self.set_delivery_counts_now(key, group, consumer, ids, count)
    }

    async fn claim(
        &self,
        key: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        cursor: MessageId,
        alone_at: u32,
    ) -> Result<Claimed> {
        self.claim_now(key, group, consumer, min_idle, cursor, alone_at)
    }

    async fn schedule_retry(
        &self,
        keys: &StreamKeys,
        group: &str,
        id: MessageId,
        source: &Source,
        attempts: u32,
        delay_ms: u64,
        error: &str,
        link: Option<&str>,
    ) -> Result<bool> {
        let now = now_ms();
        self.schedule_retry_now(
            keys,
            group,
            id,
            source,
            attempts,
            now.saturating_add(delay_ms),
            error,
            link,
            now,
        )
    }

    async fn complete_retry(
        &self,
        keys: &StreamKeys,
        group: &str,
        id: MessageId,
        lease: &str,
    ) -> Result<bool> {
        self.complete_retry_now(keys, group, id, lease)
    }

    async fn dead_letter(
        &self,
        keys: &StreamKeys,
        group: &str,
        id: MessageId,
        source: &Source,
        letter: &Letter<'_>,
    ) -> Result<LetterOutcome> {
        self.dead_letter_now(keys, group, id, source, letter)
    }

    async fn lease_retries(
        &self,
        keys: &StreamKeys,
        group: &str,
        lease_ms: u64,
        count: usize,
    ) -> Result<(Vec<Delivery>, Option<u64>)> {
        let now = now_ms();
        let (leased, next) =
            self.lease_retries_now(keys, group, now, now.saturating_add(lease_ms), count)?;
        Ok((leased, next.map(|due| due.saturating_sub(now))))
    }

    async fn read_dead_letters(
        &self,
        keys: &StreamKeys,
        after: Option<MessageId>,
        until: Option<MessageId>,
        count: usize,
    ) -> Result<Vec<RawEntry>> {
        self.read_dead_letters_now(keys, after, until, count)
    }

    async fn last_dead_letter(&self, keys: &StreamKeys) -> Result<Option<MessageId>> {
        Ok(self.last_dead_letter_now(keys))
    }

    async fn delete_dead_letters(&self, keys: &StreamKeys, ids: &[MessageId]) -> Result<u64> {
        self.delete_dead_letters_now(keys, ids)
    }

    async fn replay_dead_letter(
        &self,
        keys: &StreamKeys,
        letter_id: MessageId,
        group: &str,
        original_id: MessageId,
        max_replays: u32,
    ) -> Result<ReplayOutcome> {
        let now = now_ms();
        self.replay_dead_letter_now(keys, letter_id, group, original_id, max_replays, now)
    }

    async fn trim(
        &self,
        keys: &StreamKeys,
        max_len: Option<u64>,
        max_age: Option<Duration>,
        _token: &str,
    ) -> Result<Option<TrimCounts>> {
        // One lock over the whole embedded broker: trimming is atomic, no other lock needed.
        let min_id = max_age.map(|age| {
            MessageId::new(
                now_ms().saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX)),
                0,
            )
        });
        self.trim_now(keys, max_len, min_id).map(Some)
    }

    async fn streams(&self, prefix: &str) -> Result<Vec<String>> {
        let state = self.lock();
        let head = format!("{prefix}:{{");
        let mut names: Vec<String> = state
            .streams
            .keys()
            .filter_map(|k| {
                k.strip_prefix(&head)?
                    .strip_suffix("}:events")
                    .map(str::to_owned)
            })
            .collect();
        names.sort();
        Ok(names)
    }

    async fn read_range(
        &self,
        key: &str,
        after: Option<MessageId>,
        count: usize,
    ) -> Result<Vec<RawEntry>> {
        let state = self.lock();
        let Some(s) = state.streams.get(key) else {
            return Ok(Vec::new());
        };
        let from = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        Ok(s.entries
            .range((from, std::ops::Bound::Unbounded))
            .take(count.max(1))
            .map(|(id, f)| RawEntry {
                id: *id,
                fields: Some(f.clone()),
            })
            .collect())
    }

    async fn read_range_rev(
        &self,
        key: &str,
        before: Option<MessageId>,
        count: usize,
    ) -> Result<Vec<RawEntry>> {
        let state = self.lock();
        let Some(s) = state.streams.get(key) else {
            return Ok(Vec::new());
        };
        let to = before.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        Ok(s.entries
            .range((std::ops::Bound::Unbounded, to))
            .rev()
            .take(count.max(1))
            .map(|(id, f)| RawEntry {
                id: *id,
                fields: Some(f.clone()),
            })
            .collect())
    }

    async fn stream_info(&self, keys: &StreamKeys) -> Result<crate::info::StreamInfo> {
        self.stream_info_now(keys)
    }

    async fn remove_idle_consumers(
        &self,
        key: &str,
        group: &str,
        keep: &str,
        min_idle: Duration,
    ) -> Result<Vec<String>> {
        self.remove_idle_consumers_now(key, group, keep, min_idle)
    }

    async fn schedule_delayed(
        &self,
        keys: &StreamKeys,
        event_id: &str,
        delay_ms: u64,
        packed: &[u8],
        lane: Priority,
    ) -> Result<Option<u64>> {
        Ok(self.schedule_delayed_now(keys, event_id, delay_ms, packed, lane))
    }

    async fn mark_lane(&self, keys: &StreamKeys, lane: Priority) -> Result<()> {
        self.lock()
            .sets
            .entry(keys.lanes_marker())
            .or_default()
            .insert(lane.as_str().to_owned());
        Ok(())
    }

    async fn lanes(&self, keys: &StreamKeys) -> Result<Lanes> {
        let state = self.lock();
        let names = state.sets.get(&keys.lanes_marker());
        Ok(Lanes::from_names(
            names.into_iter().flatten().map(|n| n.as_bytes()),
        ))
    }

    async fn cancel_delayed(&self, keys: &StreamKeys, event_id: &str) -> Result<bool> {
        Ok(self.cancel_delayed_now(keys, event_id))
    }

    async fn move_due(
        &self,
        keys: &StreamKeys,
        token: &str,
        lease_ms: u64,
        max: usize,
    ) -> Result<crate::delayed::Moved> {
        Ok(self.move_due_now(keys, token, lease_ms, max))
    }

    async fn list_delayed(
        &self,
        keys: &StreamKeys,
        filter: &crate::delayed::DelayedFilter,
    ) -> Result<Vec<crate::delayed::DelayedEvent>> {
        Ok(self.list_delayed_now(keys, filter))
    }

    async fn schema_registry(
        &self,
        key: &str,
        fields: &[(String, String)],
    ) -> Result<Vec<(String, String)>> {
        let mut state = self.lock();
        let hash = state.hashes.entry(key.to_owned()).or_default();
        for (f, v) in fields {
            hash.insert(f.clone(), v.clone());
        }
        let all = hash.iter().map(|(f, v)| (f.clone(), v.clone())).collect();
        if hash.is_empty() {
            state.hashes.remove(key);
        }
        Ok(all)
    }
}
