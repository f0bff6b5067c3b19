//! What an operator (or a test) sees of a stream: its length and, per consumer group, what is
//! pending, scheduled for retry and not yet delivered, its consumers and when they were last
//! active, and which group holds back lossless trimming.

use std::time::Duration;

use crate::envelope::{DecodeError, Envelope};
use crate::message_id::MessageId;

/// One stream's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// The stream name.
    pub stream: String,
    /// Entries in the stream.
    pub length: u64,
    /// Dead letters of the stream.
    pub dead_letters: u64,
    /// Its consumer groups, by name.
    pub groups: Vec<GroupInfo>,
}

/// One consumer group's state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupInfo {
    /// The group name.
    pub name: String,
    /// Consumers known to the group.
    pub consumers: u64,
    /// Entries delivered and not yet acknowledged.
    pub pending: u64,
    /// Entries not yet delivered to the group (`None` when Redis cannot tell, e.g. after
    /// entries were deleted from the middle of the stream).
    pub lag: Option<u64>,
    /// Messages waiting in the group's retry schedule.
    pub scheduled: u64,
    /// The oldest entry still pending for the group.
    pub oldest_pending: Option<MessageId>,
    /// The last entry delivered to the group (`None` when the broker did not say).
    pub last_delivered: Option<MessageId>,
    /// Its consumers, by name, with their pending entries and how long since each was last
    /// active (may be fewer than [`consumers`](Self::consumers) if one was removed meanwhile).
    pub consumer_list: Vec<ConsumerInfo>,
}

/// One consumer of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerInfo {
    /// The consumer name.
    pub name: String,
    /// Entries delivered to it and not yet acknowledged.
    pub pending: u64,
    /// Time since it last read from or claimed in the group (on Redis: the most recent of its
    /// `seen-time` and `active-time`, from `XINFO CONSUMERS` `idle` and, since Redis 7.2,
    /// `inactive`); `None` when the broker did not say.
    pub idle: Option<Duration>,
}

impl GroupInfo {
    /// Time since any of its consumers was last active: the smallest idle time among them.
    /// `None` when it has no consumer (nothing ever read from it, or its consumers were
    /// removed), or when no consumer's idle time is known: see [`has_consumers`](Self::has_consumers)
    /// to tell the two apart.
    pub fn idle(&self) -> Option<Duration> {
        self.consumer_list.iter().filter_map(|c| c.idle).min()
    }

    /// True when the group has at least one consumer.
    pub fn has_consumers(&self) -> bool {
        self.consumers > 0 || !self.consumer_list.is_empty()
    }

    /// True when entries wait for the group (pending, or not yet delivered: `lag` not zero or
    /// unknown) and none of its consumers has been active for longer than `after` (or it has
    /// no consumer at all): nothing is working on what it holds back.
    ///
    /// A group with nothing waiting is never stale: it holds nothing back, and it cannot be
    /// told from a running one on Redis before 7.2, where a read that returns nothing does not
    /// count as consumer activity (7.2 added `seen-time` for it). A running handler reads new
    /// entries within a second, so its group does not stay idle while entries wait. A group
    /// whose consumers' idle times are unknown is not stale either (nothing says it is).
    pub fn is_stale(&self, after: Duration) -> bool {
        let waiting = self.pending > 0 || self.lag != Some(0);
        if !waiting {
            return false;
        }
        if !self.has_consumers() {
            return true;
        }
        self.idle().is_some_and(|idle| idle > after)
    }

    /// The oldest entry the group still needs, which lossless trimming must keep: its oldest
    /// pending entry, or else the entry after the last one delivered to it. `None` when
    /// unknown.
    pub fn needed_from(&self) -> Option<MessageId> {
        let next = self.last_delivered.map(|id| match id.seq().checked_add(1) {
            Some(seq) => MessageId::new(id.ms(), seq),
            None => MessageId::new(id.ms().saturating_add(1), 0),
        });
        match (self.oldest_pending, next) {
            (Some(p), Some(n)) => Some(p.min(n)),
            (p, n) => p.or(n),
        }
    }
}

/// A raw stream entry, as read by tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry id.
    pub id: MessageId,
    /// Its fields, in order (names lossily decoded as UTF-8).
    pub fields: Vec<(String, Vec<u8>)>,
}

impl Entry {
    /// Parses the envelope fields.
    pub fn envelope(&self) -> Result<Envelope, DecodeError> {
        Envelope::from_fields(
            self.fields
                .iter()
                .map(|(k, v)| (k.as_bytes(), v.as_slice())),
        )
    }
}

impl StreamInfo {
    /// The trimming floor — the oldest entry any group still needs; lossless trimming removes
    /// only entries below it — and the groups that hold it there. `None` when the stream has
    /// no group (nothing holds trimming back) or no group's need is known.
    pub fn trim_floor(&self) -> Option<(MessageId, Vec<&GroupInfo>)> {
        let floor = self
            .groups
            .iter()
            .filter_map(GroupInfo::needed_from)
            .min()?;
        let holders = self
            .groups
            .iter()
            .filter(|g| g.needed_from() == Some(floor))
            .collect();
        Some((floor, holders))
    }

    /// True when no group has anything pending, scheduled or undelivered.
    pub fn is_idle(&self) -> bool {
        self.groups
            .iter()
            .all(|g| g.pending == 0 && g.scheduled == 0 && g.lag == Some(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(
        name: &str,
        pending: Option<u64>,
        last: Option<u64>,
        idle: &[Option<u64>],
    ) -> GroupInfo {
        GroupInfo {
            name: name.to_owned(),
            consumers: idle.len() as u64,
            pending: u64::from(pending.is_some()),
            lag: Some(0),
            scheduled: 0,
            oldest_pending: pending.map(|ms| MessageId::new(ms, 0)),
            last_delivered: last.map(|ms| MessageId::new(ms, 0)),
            consumer_list: idle
                .iter()
                .enumerate()
                .map(|(i, ms)| ConsumerInfo {
                    name: format!("c{i}"),
                    pending: 0,
                    idle: ms.map(Duration::from_millis),
                })
                .collect(),
        }
    }

    #[test]
    fn a_group_is_as_idle_as_its_most_recent_consumer() {
        let mut g = group("g", None, Some(5), &[Some(9_000), None, Some(200)]);
        assert!(!g.is_stale(Duration::ZERO), "nothing waits for it");
        g.lag = Some(3);
        assert_eq!(g.idle(), Some(Duration::from_millis(200)));
        assert!(!g.is_stale(Duration::from_secs(1)));
        assert!(g.is_stale(Duration::from_millis(100)));
        g.lag = None;
        assert!(
            g.is_stale(Duration::from_millis(100)),
            "unknown lag may wait"
        );
        let never = group("g", Some(1), Some(5), &[]);
        assert_eq!(never.idle(), None);
        assert!(
            never.is_stale(Duration::from_secs(86_400)),
            "no consumer: stale"
        );
        let unknown = group("g", Some(1), Some(5), &[None]);
        assert!(!unknown.is_stale(Duration::ZERO), "unknown idle: not stale");
    }

    #[test]
    fn the_floor_is_held_by_the_group_needing_the_oldest_entry() {
        assert_eq!(
            group("g", Some(3), Some(7), &[]).needed_from(),
            Some(MessageId::new(3, 0))
        );
        assert_eq!(
            group("g", None, Some(7), &[]).needed_from(),
            Some(MessageId::new(7, 1))
        );
        assert_eq!(
            group("g", None, Some(u64::MAX), &[])
                .needed_from()
                .map(|id| id.ms()),
            Some(u64::MAX)
        );
        let info = StreamInfo {
            stream: "s".to_owned(),
            length: 10,
            dead_letters: 0,
            groups: vec![
                group("fast", None, Some(9), &[Some(1)]),
                group("slow", None, Some(2), &[]),
                group("stuck", Some(6), Some(9), &[Some(1)]),
            ],
        };
        let (floor, holders) = info.trim_floor().expect("a floor");
        assert_eq!(floor, MessageId::new(2, 1));
        assert_eq!(
            holders.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
            ["slow"]
        );
        let empty = StreamInfo {
            groups: Vec::new(),
            ..info
        };
        assert!(empty.trim_floor().is_none());
    }
}
