//! The data of the embedded broker: streams with consumer groups and pending lists, retry
//! schedules and attempt records — the same model as the Redis keys, in one mutex.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::message_id::MessageId;
use crate::transport::Fields;

/// One pending entry of a group.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    pub(super) consumer: String,
    /// When it was last delivered (ms since the epoch).
    pub(super) delivered_at: u64,
    pub(super) count: u32,
}

#[derive(Debug, Clone, Default)]
pub(super) struct Group {
    pub(super) last_delivered: MessageId,
    pub(super) pending: BTreeMap<MessageId, Pending>,
    /// Consumer name → last time it read or claimed (ms since the epoch).
    pub(super) consumers: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default)]
pub(super) struct Stream {
    pub(super) entries: BTreeMap<MessageId, Fields>,
    pub(super) last_id: MessageId,
    pub(super) groups: BTreeMap<String, Group>,
}

impl Stream {
    /// The next id, as Redis makes them: the current millisecond, or the last id's millisecond
    /// with the next sequence number when the clock has not moved on.
    pub(super) fn next_id(&mut self, now_ms: u64) -> MessageId {
        let id = if now_ms > self.last_id.ms() {
            MessageId::new(now_ms, 0)
        } else {
            MessageId::new(self.last_id.ms(), self.last_id.seq() + 1)
        };
        self.last_id = id;
        id
    }

    pub(super) fn append(&mut self, now_ms: u64, fields: Fields) -> MessageId {
        let id = self.next_id(now_ms);
        self.entries.insert(id, fields);
        id
    }
}

/// A retry schedule: due time → ids, and id → due time.
#[derive(Debug, Clone, Default)]
pub(super) struct Schedule {
    pub(super) by_due: BTreeSet<(u64, MessageId)>,
    pub(super) due_of: HashMap<MessageId, u64>,
}

impl Schedule {
    pub(super) fn set(&mut self, id: MessageId, due: u64) {
        if let Some(old) = self.due_of.insert(id, due) {
            self.by_due.remove(&(old, id));
        }
        self.by_due.insert((due, id));
    }

    pub(super) fn remove(&mut self, id: MessageId) {
        if let Some(old) = self.due_of.remove(&id) {
            self.by_due.remove(&(old, id));
        }
    }

    pub(super) fn next_due(&self) -> Option<u64> {
        self.by_due.first().map(|(due, _)| *due)
    }
}

/// The attempt record of one message in one group.
#[derive(Debug, Clone, Default)]
pub(super) struct Record {
    pub(super) attempts: u32,
    pub(super) first_failed_at: Option<u64>,
    pub(super) error: String,
    pub(super) lease: String,
    pub(super) replays: u32,
    /// The original fields, kept by a replay in case the entry is trimmed.
    pub(super) copy: Option<Fields>,
    /// The first traced attempt's context (`traceparent` form), for later attempts to link to.
    pub(super) link: Option<std::sync::Arc<str>>,
}

/// A stream's delayed events: due time → event id, and each one's due time and packed fields.
#[derive(Debug, Clone, Default)]
pub(super) struct DelayedSet {
    pub(super) by_due: BTreeSet<(u64, String)>,
    pub(super) due_of: HashMap<String, u64>,
    pub(super) data: HashMap<String, Vec<u8>>,
    /// The lane of each event to be moved into a lane other than `normal`.
    pub(super) lane: HashMap<String, crate::priority::Priority>,
}

#[derive(Debug, Default)]
pub(super) struct State {
    /// By schedule key (`StreamKeys::delayed`).
    pub(super) delayed: HashMap<String, DelayedSet>,
    /// By lease key: holder token and lease end (ms since the epoch).
    pub(super) leases: HashMap<String, (String, u64)>,
    /// By stream key (events and dead-letter streams alike).
    pub(super) streams: HashMap<String, Stream>,
    /// By schedule key.
    pub(super) schedules: HashMap<String, Schedule>,
    /// By record key.
    pub(super) records: HashMap<String, Record>,
    /// Sets by key (the lane markers).
    pub(super) sets: HashMap<String, BTreeSet<String>>,
    /// Hashes by key (the schema registry): field → value.
    pub(super) hashes: HashMap<String, BTreeMap<String, String>>,
}
