//! What an operator (or a test) sees of a stream: its length and, per consumer group, what is
//! pending, scheduled for retry and not yet delivered.

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
}

impl StreamInfo {
    /// True when no group has anything pending, scheduled or undelivered.
    pub fn is_idle(&self) -> bool {
        self.groups
            .iter()
            .all(|g| g.pending == 0 && g.scheduled == 0 && g.lag == Some(0))
    }
}
