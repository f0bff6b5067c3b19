//! Retry schedules, dead letters, replay and trimming of the embedded broker: each function
//! does under one lock what one Lua script does on Redis.

use std::sync::Arc;

use super::now_ms;
use super::state::{Record, State};
use super::{MemoryBroker, OURS};
use crate::error::Result;
use crate::keys::StreamKeys;
use crate::message_id::MessageId;
use crate::transport::{
    Delivery, Fields, Letter, LetterOutcome, RawEntry, ReplayOutcome, Source, TrimCounts,
};

impl MemoryBroker {
    #[allow(clippy::too_many_arguments)] // mirrors Broker::schedule_retry
    pub(super) fn schedule_retry_now(
        &self,
        keys: &StreamKeys,
        group: &str,
        id: MessageId,
        source: &Source,
        attempts: u32,
        due_ms: u64,
        error: &str,
        link: Option<&str>,
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
                // A copy of the fields: a scheduled message does not need its stream entry, so
                // trimming never looks at the schedules (as on Redis).
                let copy = state
                    .streams
                    .get(&keys.events)
                    .and_then(|s| s.entries.get(&id).cloned());
                let r = state.records.entry(record_key).or_default();
                if r.copy.is_none() {
                    r.copy = copy;
                }
                r.first_failed_at.get_or_insert(now_ms);
                r.attempts = attempts;
                r.error = error.to_owned();
                r.lease.clear();
                if r.link.is_none() {
                    r.link = link.map(Arc::from);
                }
            }
            Source::Scheduled { lease, .. } => {
                let Some(r) = state
                    .records
                    .get_mut(&record_key)
                    .filter(|r| r.lease == **lease)
                else {
                    return Ok(false);
                };
                r.error = error.to_owned();
                r.lease.clear();
                if r.link.is_none() {
                    r.link = link.map(Arc::from);
                }
            }
        }
        state
            .schedules
            .entry(keys.retry(group))
            .or_default()
            .set(id, due_ms);
        Ok(true)
    }

    pub(super) fn complete_retry_now(
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

    pub(super) fn dead_letter_now(
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
            Source::Scheduled { lease, .. } => {
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
        let failed_at = now_ms();
        let first = record.first_failed_at.unwrap_or(failed_at);
        for (k, v) in [
            ("original_id", id.to_string()),
            ("stream", keys.stream.clone()),
            ("group", group.to_owned()),
            ("handler", letter.handler.to_owned()),
            ("reason", letter.reason.to_owned()),
            ("error", letter.error.to_owned()),
            ("attempts", letter.attempts.to_string()),
            ("first_failed_at", first.to_string()),
            ("failed_at", failed_at.to_string()),
            ("replays", record.replays.to_string()),
        ] {
            fields.push((k.as_bytes().to_vec(), v.into_bytes()));
        }
        if keys.priority() != crate::priority::Priority::Normal {
            fields.push((b"priority".to_vec(), keys.priority().as_str().into()));
        }
        let dl = state
            .streams
            .entry(keys.dead_letter.clone())
            .or_default()
            .append(now_ms(), fields);
        Ok(LetterOutcome::Stored(dl))
    }

    pub(super) fn lease_retries_now(
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
            let link = r.link.clone();
            let fields = Self::original(&state, keys, &record_key, id);
            out.push(Delivery {
                id,
                fields,
                delivery_count: attempt,
                source: Source::Scheduled {
                    lease: token.clone(),
                    link,
                },
            });
        }
        let next = state
            .schedules
            .get(&schedule_key)
            .and_then(|s| s.next_due());
        Ok((out, next))
    }

    pub(super) fn read_dead_letters_now(
        &self,
        keys: &StreamKeys,
        after: Option<MessageId>,
        until: Option<MessageId>,
        count: usize,
    ) -> Result<Vec<RawEntry>> {
        let state = self.lock();
        let Some(s) = state.streams.get(&keys.dead_letter) else {
            return Ok(Vec::new());
        };
        let from = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        let to = until.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Included);
        if let (Some(a), Some(u)) = (after, until)
            && a >= u
        {
            return Ok(Vec::new());
        }
        Ok(s.entries
            .range((from, to))
            .take(count.max(1))
            .map(|(id, f)| RawEntry {
                id: *id,
                fields: Some(f.clone()),
            })
            .collect())
    }

    pub(super) fn last_dead_letter_now(&self, keys: &StreamKeys) -> Option<MessageId> {
        let state = self.lock();
        state
            .streams
            .get(&keys.dead_letter)
            .and_then(|s| s.entries.keys().next_back().copied())
    }

    pub(super) fn delete_dead_letters_now(
        &self,
        keys: &StreamKeys,
        ids: &[MessageId],
    ) -> Result<u64> {
        let mut state = self.lock();
        let Some(s) = state.streams.get_mut(&keys.dead_letter) else {
            return Ok(0);
        };
        Ok(ids
            .iter()
            .filter(|id| s.entries.remove(id).is_some())
            .count() as u64)
    }

    pub(super) fn replay_dead_letter_now(
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

    /// Trims like the Redis TRIM script, in one step: retry schedules are not read (a scheduled
    /// message keeps a copy of its fields in its record).
    pub(super) fn trim_now(
        &self,
        keys: &StreamKeys,
        max_len: Option<u64>,
        min_id: Option<MessageId>,
    ) -> Result<TrimCounts> {
        let mut state = self.lock();
        let State { streams, .. } = &mut *state;
        let Some(stream) = streams.get_mut(&keys.events) else {
            return Ok(TrimCounts::default());
        };
        let groups: Vec<String> = stream.groups.keys().cloned().collect();
        // The oldest entry any group still needs.
        let mut needed: Option<MessageId> = None;
        let mut consider = |id: MessageId| needed = Some(needed.map_or(id, |n| n.min(id)));
        for g in stream.groups.values() {
            if let Some((first, _)) = g.pending.first_key_value() {
                consider(*first);
            }
            consider(MessageId::new(
                g.last_delivered.ms(),
                g.last_delivered.seq().saturating_add(1),
            ));
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
        Ok(counts)
    }
}
