//! What an operator (or a test) sees of a stream: its length and, per consumer group, what is
//! pending, scheduled for retry and not yet delivered.

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
    /// True when no group has anything pending, scheduled or undelivered.
    pub fn is_idle(&self) -> bool {
        self.groups
            .iter()
            .all(|g| g.pending == 0 && g.scheduled == 0 && g.lag == Some(0))
    }
}
