//! The embedded broker: Redis Streams semantics in process — streams, consumer groups, pending
//! lists with delivery counts and idle times, reclaim, retry schedules with leases, dead letters,
//! replay and trimming — so that the same runtime, tests and examples run without Redis.
//!
//! Every operation mirrors the Redis command or script the Redis transport uses (see
//! `transport::redis::scripts`); the conformance suite runs the same tests against both.

mod state;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use self::state::{Pending, Record, State, Stream};
use crate::envelope::{EncodedEvent, now_ms};
use crate::error::{Error, Result};
use crate::handler::Start;
use crate::keys::StreamKeys;
use crate::message_id::MessageId;
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
const OURS: [&str; 10] = [
    "original_id",
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

    /// Takes up to `count` new entries for `consumer`; `None` when the group does not exist.
    fn take_new(
        &self,
        key: &str,
        group: &str,
        consumer: &str,
        count: usize,
    ) -> Result<Vec<Delivery>> {
        let now = now_ms();
        let mut state = self.lock();
        let stream = state
            .streams
            .get_mut(key)
            .ok_or_else(|| no_group(key, group))?;
        let Stream {
            entries, groups, ..
        } = stream;
        let g = groups.get_mut(group).ok_or_else(|| no_group(key, group))?;
        g.consumers.insert(consumer.to_owned(), now);
        let mut out = Vec::new();
        for (id, fields) in entries
            .range((
                std::ops::Bound::Excluded(g.last_delivered),
                std::ops::Bound::Unbounded,
            ))
            .take(count.max(1))
        {
            g.pending.insert(
                *id,
                Pending {
                    consumer: consumer.to_owned(),
                    delivered_at: now,
                    count: 1,
                },
            );
            out.push(Delivery {
                id: *id,
                fields: Some(fields.clone()),
                delivery_count: 1,
                source: Source::Pending,
            });
        }
        if let Some(last) = out.last() {
            g.last_delivered = last.id;
        }
        Ok(out)
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
        Ok(self.append_fields(key, owned(entry)))
    }

    async fn append_all(&self, key: &str, entries: &[EncodedEvent]) -> Result<Vec<MessageId>> {
        let now = now_ms();
        let ids = {
            let mut state = self.lock();
            let stream = state.streams.entry(key.to_owned()).or_default();
            entries
                .iter()
                .map(|e| stream.append(now, owned(e)))
                .collect()
        };
        self.inner.appended.notify_waiters();
        Ok(ids)
    }

    async fn ensure_group(&self, key: &str, group: &str, start: Start) -> Result<()> {
        let mut state = self.lock();
        let stream = state.streams.entry(key.to_owned()).or_default();
        let last = stream.last_id;
        stream
            .groups
            .entry(group.to_owned())
            .or_insert_with(|| state::Group {
                last_delivered: match start {
                    Start::Latest => last,
                    Start::Earliest => MessageId::MIN,
                },
                ..Default::default()
            });
        Ok(())
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
        let deadline = tokio::time::Instant::now() + block;
        loop {
            // Register for the wake-up before looking, so an append in between is not missed.
            let appended = self.inner.appended.notified();
            let found = self.take_new(key, group, consumer, count)?;
            if !found.is_empty() {
                return Ok(found);
            }
            if tokio::time::timeout_at(deadline, appended).await.is_err() {
                return Ok(Vec::new());
            }
        }
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
        let now = now_ms();
        let mut state = self.lock();
        let stream = state
            .streams
            .get_mut(key)
            .ok_or_else(|| no_group(key, group))?;
        let Stream {
            entries, groups, ..
        } = stream;
        let g = groups.get_mut(group).ok_or_else(|| no_group(key, group))?;
        g.consumers.insert(consumer.to_owned(), now);
        let mut out = Vec::new();
        for (id, p) in g
            .pending
            .range_mut((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
        {
            if out.len() >= count.max(1) {
                break;
            }
            if p.consumer != consumer {
                continue;
            }
            p.count += 1;
            p.delivered_at = now;
            out.push(Delivery {
                id: *id,
                fields: entries.get(id).cloned(),
                delivery_count: p.count,
                source: Source::Pending,
            });
        }
        Ok(out)
    }

    async fn ack(&self, key: &str, group: &str, ids: &[MessageId]) -> Result<()> {
        let mut state = self.lock();
        if let Some(g) = state
            .streams
            .get_mut(key)
            .and_then(|s| s.groups.get_mut(group))
        {
            for id in ids {
                g.pending.remove(id);
            }
        }
        Ok(())
    }

    async fn claim(
        &self,
        key: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        cursor: MessageId,
        count: usize,
    ) -> Result<Claimed> {
        let now = now_ms();
        let min_idle = u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX);
        let mut state = self.lock();
        let stream = state
            .streams
            .get_mut(key)
            .ok_or_else(|| no_group(key, group))?;
        let Stream {
            entries, groups, ..
        } = stream;
        let g = groups.get_mut(group).ok_or_else(|| no_group(key, group))?;
        g.consumers.insert(consumer.to_owned(), now);
        let mut claimed = Claimed::default();
        let mut deleted = Vec::new();
        // Like XAUTOCLAIM: scan from the cursor, at most `count` claims (and a bounded scan).
        let ids: Vec<MessageId> = g.pending.range(cursor..).map(|(id, _)| *id).collect();
        for (scanned, id) in ids.into_iter().enumerate() {
            if claimed.entries.len() >= count.max(1) || scanned >= count.max(1) * 10 {
                claimed.next = id;
                break;
            }
            let Some(p) = g.pending.get_mut(&id) else {
                continue;
            };
            if now.saturating_sub(p.delivered_at) < min_idle {
                continue;
            }
            match entries.get(&id) {
                None => {
                    g.pending.remove(&id);
                    deleted.push(id);
                }
                Some(fields) => {
                    p.consumer = consumer.to_owned();
                    p.count += 1;
                    p.delivered_at = now;
                    claimed.entries.push(Delivery {
                        id,
                        fields: Some(fields.clone()),
                        delivery_count: p.count,
                        source: Source::Pending,
                    });
                }
            }
        }
        claimed.deleted = deleted;
        Ok(claimed)
    }

    async fn schedule_retry(
        &self,
        keys: &StreamKeys,
        group: &str,
        id: MessageId,
        source: &Source,
        attempts: u32,
        due_ms: u64,
        error: &str,
        now_ms: u64,
    ) -> Result<bool> {
        let record_key = keys.record(group, &id.to_string());
        let mut state = self.lock();
        match source {
            Source::Pending => {
                let acked = state
                    .streams
                    .get_mut(&keys.events)
                    .and_then(|s| s.groups.get_mut(group))
                    .and_then(|g| g.pending.remove(&id))
                    .is_some();
                if !acked {
                    return Ok(false);
                }
                let r = state.records.entry(record_key).or_default();
                r.first_failed_at.get_or_insert(now_ms);
                r.attempts = attempts;
                r.error = error.to_owned();
                r.lease.clear();
            }
            Source::Scheduled { lease } => {
                let Some(r) = state
                    .records
                    .get_mut(&record_key)
                    .filter(|r| r.lease == **lease)
                else {
                    return Ok(false);
                };
                r.error = error.to_owned();
                r.lease.clear();
            }
        }
        state
            .schedules
            .entry(keys.retry(group))
            .or_default()
            .set(id, due_ms);
        Ok(true)
    }

    async fn complete_retry(
        &self,
        keys: &StreamKeys,
        group: &str,
        id: MessageId,
        lease: &str,
    ) -> Result<bool> {
        let record_key = keys.record(group, &id.to_string());
        let mut state = self.lock();
        if state
            .records
            .get(&record_key)
            .is_none_or(|r| r.lease != lease)
        {
            return Ok(false);
        }
        state.records.remove(&record_key);
        if let Some(s) = state.schedules.get_mut(&keys.retry(group)) {
            s.remove(id);
        }
        Ok(true)
    }

    async fn dead_letter(
        &self,
        keys: &StreamKeys,
        group: &str,
        id: MessageId,
        source: &Source,
        letter: &Letter<'_>,
    ) -> Result<LetterOutcome> {
        let record_key = keys.record(group, &id.to_string());
        let mut state = self.lock();
        match source {
            Source::Pending => {
                let acked = state
                    .streams
                    .get_mut(&keys.events)
                    .and_then(|s| s.groups.get_mut(group))
                    .and_then(|g| g.pending.remove(&id))
                    .is_some();
                if !acked {
                    return Ok(LetterOutcome::NotOurs);
                }
            }
            Source::Scheduled { lease } => {
                if state
                    .records
                    .get(&record_key)
                    .is_none_or(|r| r.lease != **lease)
                {
                    return Ok(LetterOutcome::NotOurs);
                }
            }
        }
        let record = state.records.remove(&record_key).unwrap_or_default();
        if let Some(s) = state.schedules.get_mut(&keys.retry(group)) {
            s.remove(id);
        }
        if !letter.keep {
            return Ok(LetterOutcome::Dropped);
        }
        let original = state
            .streams
            .get(&keys.events)
            .and_then(|s| s.entries.get(&id).cloned())
            .or(record.copy)
            .unwrap_or_default();
        let mut fields: Fields = original
            .into_iter()
            .filter(|(k, _)| !OURS.iter().any(|o| o.as_bytes() == k.as_slice()))
            .collect();
        let first = record.first_failed_at.unwrap_or(letter.failed_at);
        for (k, v) in [
            ("original_id", id.to_string()),
            ("stream", keys.stream.clone()),
            ("group", group.to_owned()),
            ("handler", letter.handler.to_owned()),
            ("reason", letter.reason.to_owned()),
            ("error", letter.error.to_owned()),
            ("attempts", letter.attempts.to_string()),
            ("first_failed_at", first.to_string()),
            ("failed_at", letter.failed_at.to_string()),
            ("replays", record.replays.to_string()),
        ] {
            fields.push((k.as_bytes().to_vec(), v.into_bytes()));
        }
        let dl = state
            .streams
            .entry(keys.dead_letter.clone())
            .or_default()
            .append(now_ms(), fields);
        Ok(LetterOutcome::Stored(dl))
    }

    async fn lease_retries(
        &self,
        keys: &StreamKeys,
        group: &str,
        now_ms: u64,
        lease_until_ms: u64,
        count: usize,
    ) -> Result<(Vec<Delivery>, Option<u64>)> {
        let token: Arc<str> = format!("{:016x}", crate::util::random_u64()).into();
        let schedule_key = keys.retry(group);
        let mut state = self.lock();
        let due: Vec<MessageId> = match state.schedules.get(&schedule_key) {
            None => return Ok((Vec::new(), None)),
            Some(s) => s
                .by_due
                .iter()
                .take_while(|(d, _)| *d <= now_ms)
                .take(count.max(1))
                .map(|(_, id)| *id)
                .collect(),
        };
        let mut out = Vec::with_capacity(due.len());
        for id in due {
            let record_key = keys.record(group, &id.to_string());
            if let Some(s) = state.schedules.get_mut(&schedule_key) {
                s.set(id, lease_until_ms);
            }
            let r: &mut Record = state.records.entry(record_key.clone()).or_default();
            r.attempts += 1;
            r.lease = token.to_string();
            let attempt = r.attempts;
            let fields = Self::original(&state, keys, &record_key, id);
            out.push(Delivery {
                id,
                fields,
                delivery_count: attempt,
                source: Source::Scheduled {
                    lease: token.clone(),
                },
            });
        }
        let next = state
            .schedules
            .get(&schedule_key)
            .and_then(|s| s.next_due());
        Ok((out, next))
    }

    async fn read_dead_letters(
        &self,
        keys: &StreamKeys,
        after: Option<MessageId>,
        count: usize,
    ) -> Result<Vec<RawEntry>> {
        let state = self.lock();
        let Some(s) = state.streams.get(&keys.dead_letter) else {
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

    async fn delete_dead_letters(&self, keys: &StreamKeys, ids: &[MessageId]) -> Result<u64> {
        let mut state = self.lock();
        let Some(s) = state.streams.get_mut(&keys.dead_letter) else {
            return Ok(0);
        };
        Ok(ids
            .iter()
            .filter(|id| s.entries.remove(id).is_some())
            .count() as u64)
    }

    async fn replay_dead_letter(
        &self,
        keys: &StreamKeys,
        letter_id: MessageId,
        group: &str,
        original_id: MessageId,
        max_replays: u32,
        now_ms: u64,
    ) -> Result<ReplayOutcome> {
        let mut state = self.lock();
        let Some(fields) = state
            .streams
            .get(&keys.dead_letter)
            .and_then(|s| s.entries.get(&letter_id).cloned())
        else {
            return Ok(ReplayOutcome::Gone);
        };
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name.as_bytes())
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        if get("group").as_deref() != Some(group)
            || get("original_id") != Some(original_id.to_string())
        {
            return Ok(ReplayOutcome::Gone);
        }
        let replays: u32 = get("replays").and_then(|r| r.parse().ok()).unwrap_or(0);
        if replays >= max_replays {
            return Ok(ReplayOutcome::LoopGuard);
        }
        let copy: Fields = fields
            .iter()
            .filter(|(k, _)| !OURS.iter().any(|o| o.as_bytes() == k.as_slice()))
            .cloned()
            .collect();
        state.records.insert(
            keys.record(group, &original_id.to_string()),
            Record {
                replays: replays + 1,
                copy: Some(copy),
                ..Record::default()
            },
        );
        state
            .schedules
            .entry(keys.retry(group))
            .or_default()
            .set(original_id, now_ms);
        if let Some(s) = state.streams.get_mut(&keys.dead_letter) {
            s.entries.remove(&letter_id);
        }
        Ok(ReplayOutcome::Replayed)
    }

    async fn groups(&self, keys: &StreamKeys) -> Result<Vec<String>> {
        let state = self.lock();
        Ok(state
            .streams
            .get(&keys.events)
            .map(|s| s.groups.keys().cloned().collect())
            .unwrap_or_default())
    }

    async fn trim(
        &self,
        keys: &StreamKeys,
        groups: &[String],
        max_len: Option<u64>,
        min_id: Option<MessageId>,
    ) -> Result<Option<TrimCounts>> {
        let mut state = self.lock();
        let State {
            streams, schedules, ..
        } = &mut *state;
        let Some(stream) = streams.get_mut(&keys.events) else {
            return Ok(Some(TrimCounts::default()));
        };
        if !stream.groups.keys().eq(groups.iter()) {
            return Ok(None);
        }
        // The oldest entry any group still needs.
        let mut needed: Option<MessageId> = None;
        let mut consider = |id: MessageId| needed = Some(needed.map_or(id, |n| n.min(id)));
        for (name, g) in &stream.groups {
            if let Some((first, _)) = g.pending.first_key_value() {
                consider(*first);
            }
            consider(MessageId::new(
                g.last_delivered.ms(),
                g.last_delivered.seq().saturating_add(1),
            ));
            if let Some(min) = schedules
                .get(&keys.retry(name))
                .and_then(|s| s.due_of.keys().min())
            {
                consider(*min);
            }
        }
        let mut counts = TrimCounts::default();
        if let (false, Some(min)) = (groups.is_empty(), needed) {
            let keep = stream.entries.split_off(&min);
            counts.trimmed = stream.entries.len() as u64;
            stream.entries = keep;
        }
        let is_needed = |id: &MessageId| needed.is_some_and(|n| !groups.is_empty() && *id >= n);
        if let Some(max) = max_len.and_then(|m| usize::try_from(m).ok()) {
            while stream.entries.len() > max {
                if let Some((id, _)) = stream.entries.pop_first() {
                    counts.capped += 1;
                    if is_needed(&id) {
                        counts.capped_needed += 1;
                    }
                }
            }
        }
        if let Some(cut) = min_id {
            let keep = stream.entries.split_off(&cut);
            for id in stream.entries.keys() {
                counts.capped += 1;
                if is_needed(id) {
                    counts.capped_needed += 1;
                }
            }
            stream.entries = keep;
        }
        Ok(Some(counts))
    }

    async fn stream_info(&self, keys: &StreamKeys) -> Result<crate::info::StreamInfo> {
        let state = self.lock();
        let dead_letters = state
            .streams
            .get(&keys.dead_letter)
            .map_or(0, |s| s.entries.len() as u64);
        let Some(s) = state.streams.get(&keys.events) else {
            return Ok(crate::info::StreamInfo {
                stream: keys.stream.clone(),
                length: 0,
                dead_letters,
                groups: Vec::new(),
            });
        };
        let groups = s
            .groups
            .iter()
            .map(|(name, g)| crate::info::GroupInfo {
                name: name.clone(),
                consumers: g.consumers.len() as u64,
                pending: g.pending.len() as u64,
                lag: Some(
                    s.entries
                        .range((
                            std::ops::Bound::Excluded(g.last_delivered),
                            std::ops::Bound::Unbounded,
                        ))
                        .count() as u64,
                ),
                scheduled: state
                    .schedules
                    .get(&keys.retry(name))
                    .map_or(0, |sc| sc.due_of.len() as u64),
            })
            .collect();
        Ok(crate::info::StreamInfo {
            stream: keys.stream.clone(),
            length: s.entries.len() as u64,
            dead_letters,
            groups,
        })
    }

    async fn remove_idle_consumers(
        &self,
        key: &str,
        group: &str,
        keep: &str,
        min_idle: Duration,
    ) -> Result<Vec<String>> {
        let now = now_ms();
        let min_idle = u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX);
        let mut state = self.lock();
        let Some(g) = state
            .streams
            .get_mut(key)
            .and_then(|s| s.groups.get_mut(group))
        else {
            return Ok(Vec::new());
        };
        let removable: Vec<String> = g
            .consumers
            .iter()
            .filter(|(name, seen)| {
                name.as_str() != keep
                    && now.saturating_sub(**seen) >= min_idle
                    && !g.pending.values().any(|p| &p.consumer == *name)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in &removable {
            g.consumers.remove(name);
        }
        Ok(removable)
    }
}
