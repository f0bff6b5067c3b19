//! Delayed events in the embedded broker: the same steps as the Redis scripts
//! (`transport::redis::scripts::{SCHEDULE_DELAYED, CANCEL_DELAYED, MOVE_DUE, LIST_DELAYED}`).

use uuid::Uuid;

use super::MemoryBroker;
use super::now_ms;
use crate::delayed::{DelayedEvent, DelayedFilter, Moved, entry_of, unpack};
use crate::keys::StreamKeys;
use crate::priority::Priority;

impl MemoryBroker {
    pub(super) fn schedule_delayed_now(
        &self,
        keys: &StreamKeys,
        event_id: &str,
        delay_ms: u64,
        packed: &[u8],
        lane: Priority,
    ) -> Option<u64> {
        let mut state = self.lock();
        let set = state.delayed.entry(keys.delayed()).or_default();
        if set.due_of.contains_key(event_id) {
            return None;
        }
        let due = now_ms().saturating_add(delay_ms);
        set.by_due.insert((due, event_id.to_owned()));
        set.due_of.insert(event_id.to_owned(), due);
        set.data.insert(event_id.to_owned(), packed.to_vec());
        if lane != Priority::Normal {
            set.lane.insert(event_id.to_owned(), lane);
        }
        Some(due)
    }

    pub(super) fn cancel_delayed_now(&self, keys: &StreamKeys, event_id: &str) -> bool {
        let mut state = self.lock();
        let Some(set) = state.delayed.get_mut(&keys.delayed()) else {
            return false;
        };
        set.data.remove(event_id);
        set.lane.remove(event_id);
        match set.due_of.remove(event_id) {
            Some(due) => set.by_due.remove(&(due, event_id.to_owned())),
            None => false,
        }
    }

    pub(super) fn move_due_now(
        &self,
        keys: &StreamKeys,
        token: &str,
        lease_ms: u64,
        max: usize,
    ) -> Moved {
        let now = now_ms();
        let mut moved = Moved::default();
        {
            let mut state = self.lock();
            let lease_key = keys.delayed_lease();
            if let Some((holder, until)) = state.leases.get(&lease_key)
                && holder != token
                && *until > now
            {
                moved.elsewhere = true;
                return moved;
            }
            state
                .leases
                .insert(lease_key, (token.to_owned(), now.saturating_add(lease_ms)));
            let Some(set) = state.delayed.get_mut(&keys.delayed()) else {
                return moved;
            };
            let due: Vec<(u64, String)> = set
                .by_due
                .iter()
                .take_while(|(d, _)| *d <= now)
                .take(max.max(1))
                .cloned()
                .collect();
            let mut appends = Vec::with_capacity(due.len());
            for (d, id) in due {
                set.by_due.remove(&(d, id.clone()));
                set.due_of.remove(&id);
                let lane = set.lane.remove(&id).unwrap_or_default();
                match set.data.remove(&id).as_deref().and_then(unpack) {
                    Some(fields) if !fields.is_empty() && fields.len() <= 1000 => {
                        appends.push((lane, fields));
                    }
                    _ => moved.dropped += 1,
                }
            }
            moved.next_in_ms = set.by_due.first().map(|(d, _)| d.saturating_sub(now));
            for (lane, fields) in appends {
                let key = match lane {
                    Priority::Normal => keys.events.clone(),
                    lane => keys.lane(lane).events,
                };
                state.streams.entry(key).or_default().append(now, fields);
                moved.moved += 1;
            }
        }
        if moved.moved > 0 {
            self.inner.appended.notify_waiters();
        }
        moved
    }

    pub(super) fn list_delayed_now(
        &self,
        keys: &StreamKeys,
        filter: &DelayedFilter,
    ) -> Vec<DelayedEvent> {
        let state = self.lock();
        let Some(set) = state.delayed.get(&keys.delayed()) else {
            return Vec::new();
        };
        let limit = filter.limit.unwrap_or(100).min(10_000);
        set.by_due
            .range((filter.after_ms.unwrap_or(0), String::new())..)
            .take_while(|(d, _)| filter.before_ms.is_none_or(|b| *d < b))
            .take(limit)
            .filter_map(|(due, id)| {
                let event_id = Uuid::parse_str(id).ok()?;
                let fields = set.data.get(id).and_then(|p| unpack(p)).unwrap_or_default();
                Some(DelayedEvent {
                    event_id,
                    due_ms: *due,
                    entry: entry_of(fields),
                })
            })
            .collect()
    }
}
