//! Streams and consumer groups of the embedded broker: appends, reads, acks, reclaim, clean-up
//! and inspection — what the Redis transport does with XADD, XREADGROUP, XACK, XAUTOCLAIM and
//! XINFO.

use std::time::Duration;

use super::now_ms;
use super::state::{Group, Pending, State, Stream};
use super::{MemoryBroker, MemoryReader, no_group, owned};
use crate::envelope::EncodedEvent;
use crate::error::Result;
use crate::handler::Start;
use crate::keys::StreamKeys;
use crate::message_id::MessageId;
use crate::transport::{Claimed, Delivery, Source};

/// The group `group` of the stream at `key`; `NOGROUP` when either is missing.
fn group_mut<'a>(state: &'a mut State, key: &str, group: &str) -> Result<&'a mut Group> {
    state
        .streams
        .get_mut(key)
        .and_then(|s| s.groups.get_mut(group))
        .ok_or_else(|| no_group(key, group))
}

impl MemoryBroker {
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

    pub(super) fn append_now(&self, key: &str, entry: &EncodedEvent) -> Result<MessageId> {
        Ok(self.append_fields(key, owned(entry)))
    }

    pub(super) fn append_all_now(
        &self,
        key: &str,
        entries: &[EncodedEvent],
    ) -> Result<Vec<MessageId>> {
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

    pub(super) fn ensure_group_now(&self, key: &str, group: &str, start: Start) -> Result<()> {
        let mut state = self.lock();
        let stream = state.streams.entry(key.to_owned()).or_default();
        let last = stream.last_id;
        stream
            .groups
            .entry(group.to_owned())
            .or_insert_with(|| Group {
                last_delivered: match start {
                    Start::Latest => last,
                    Start::Earliest => MessageId::MIN,
                },
                ..Default::default()
            });
        Ok(())
    }

    pub(super) async fn read_new_now(
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

    pub(super) fn read_own_pending_now(
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

    pub(super) fn ack_now(&self, key: &str, group: &str, ids: &[MessageId]) -> Result<()> {
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

    pub(super) fn touch_now(
        &self,
        key: &str,
        group: &str,
        consumer: &str,
        ids: &[MessageId],
    ) -> Result<Vec<MessageId>> {
        let now = now_ms();
        let mut state = self.lock();
        let g = group_mut(&mut state, key, group)?;
        let mut ours = Vec::new();
        for id in ids {
            if let Some(p) = g.pending.get_mut(id)
                && p.consumer == consumer
            {
                p.delivered_at = now;
                ours.push(*id);
            }
        }
        Ok(ours)
    }

    pub(super) fn set_delivery_counts_now(
        &self,
        key: &str,
        group: &str,
        consumer: &str,
        ids: &[MessageId],
        count: u32,
    ) -> Result<()> {
        let now = now_ms();
        let mut state = self.lock();
        let g = group_mut(&mut state, key, group)?;
        // Like XCLAIM with min-idle 0: whoever owns them, they are now `consumer`'s.
        for id in ids {
            if let Some(p) = g.pending.get_mut(id) {
                p.consumer = consumer.to_owned();
                p.delivered_at = now;
                p.count = count;
            }
        }
        Ok(())
    }

    pub(super) fn claim_now(
        &self,
        key: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        cursor: MessageId,
        alone_at: u32,
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
        // Like the Redis transport's claim script: scan from the cursor, at most one claim
        // (and a bounded scan); a would-be suspect is left unclaimed.
        let ids: Vec<MessageId> = g.pending.range(cursor..).map(|(id, _)| *id).collect();
        for (scanned, id) in ids.into_iter().enumerate() {
            if !claimed.entries.is_empty() || scanned >= 10 {
                claimed.next = id;
                break;
            }
            let Some(p) = g.pending.get_mut(&id) else {
                continue;
            };
            if now.saturating_sub(p.delivered_at) < min_idle {
                continue;
            }
            if alone_at > 0 && p.count + 1 >= alone_at {
                claimed.suspect = Some(id);
                claimed.next = cursor;
                break;
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

    pub(super) fn stream_info_now(&self, keys: &StreamKeys) -> Result<crate::info::StreamInfo> {
        let now = now_ms();
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
                oldest_pending: g.pending.keys().next().copied(),
                last_delivered: Some(g.last_delivered),
                consumer_list: g
                    .consumers
                    .iter()
                    .map(|(c, seen)| crate::info::ConsumerInfo {
                        name: c.clone(),
                        pending: g.pending.values().filter(|p| p.consumer == *c).count() as u64,
                        idle: Some(Duration::from_millis(now.saturating_sub(*seen))),
                    })
                    .collect(),
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

    pub(super) fn remove_idle_consumers_now(
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

/// Group administration (`opsc groups remove|reset` and the console), as the CLI does it on
/// Redis.
impl MemoryBroker {
    /// The attempt records of `group` (`record_prefix` + an entry id, as on Redis).
    fn records_of(state: &State, keys: &StreamKeys, group: &str) -> Vec<String> {
        let prefix = keys.record_prefix(group);
        state
            .records
            .keys()
            .filter(|k| {
                k.strip_prefix(&prefix)
                    .is_some_and(|id| id.parse::<MessageId>().is_ok())
            })
            .cloned()
            .collect()
    }

    /// How many attempt records `group` has.
    pub(crate) fn group_records(&self, keys: &StreamKeys, group: &str) -> u64 {
        Self::records_of(&self.lock(), keys, group).len() as u64
    }

    /// Removes `group` with its retry schedule and attempt records, in one step; the number of
    /// records removed, or `None` when there was no such group.
    pub(crate) fn remove_group(&self, keys: &StreamKeys, group: &str) -> Option<u64> {
        let mut state = self.lock();
        state
            .streams
            .get_mut(&keys.events)
            .and_then(|s| s.groups.remove(group))?;
        let records = Self::records_of(&state, keys, group);
        for r in &records {
            state.records.remove(r);
        }
        state.schedules.remove(&keys.retry(group));
        Some(records.len() as u64)
    }

    /// Moves `group` to after `to` (`None`: after the newest entry), as `XGROUP SETID`;
    /// pending entries stay pending. False when there is no such group.
    pub(crate) fn set_group_id(&self, key: &str, group: &str, to: Option<MessageId>) -> bool {
        let mut state = self.lock();
        let Some(s) = state.streams.get_mut(key) else {
            return false;
        };
        let last = s.last_id;
        match s.groups.get_mut(group) {
            Some(g) => {
                g.last_delivered = to.unwrap_or(last);
                true
            }
            None => false,
        }
    }
}
