//! Redis key names. Every key of one stream shares the Cluster hash tag `{stream}`, so that a
//! stream, its dead letters and its retry schedules live in one slot and can be changed together
//! atomically.

use std::sync::Arc;

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "opsconductor";

/// Builds key names under one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: Arc<str>,
}

impl Keys {
    /// Keys under `prefix`.
    pub fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.into(),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>:{<stream>}:events`: the stream of events.
    ///
    /// ```
    /// use opsc_events_runtime::keys::Keys;
    /// assert_eq!(Keys::new("opsconductor").events("assets"), "opsconductor:{assets}:events");
    /// ```
    pub fn events(&self, stream: &str) -> String {
        format!("{}:{{{stream}}}:events", self.prefix)
    }

    /// `<prefix>:{<stream>}:dead_letter`: the stream's dead letters.
    pub fn dead_letter(&self, stream: &str) -> String {
        format!("{}:{{{stream}}}:dead_letter", self.prefix)
    }

    /// `<prefix>:{<stream>}:retry:<group>`: one group's retry schedule.
    pub fn retry(&self, stream: &str, group: &str) -> String {
        format!("{}:{{{stream}}}:retry:{group}", self.prefix)
    }
}

/// The keys of one stream family.
#[derive(Debug, Clone)]
pub struct StreamKeys {
    /// The stream name, e.g. `assets`.
    pub stream: String,
    /// `<prefix>:{<stream>}:events`.
    pub events: String,
    /// `<prefix>:{<stream>}:dead_letter`.
    pub dead_letter: String,
    prefix: Arc<str>,
}

impl StreamKeys {
    /// `<prefix>:{<stream>}:retry:<group>`: the group's retry schedule (due time → entry id).
    pub fn retry(&self, group: &str) -> String {
        format!("{}:{{{}}}:retry:{group}", self.prefix, self.stream)
    }

    /// `<prefix>:{<stream>}:attempt:<group>:`: prefix of the group's per-message attempt records.
    pub fn record_prefix(&self, group: &str) -> String {
        format!("{}:{{{}}}:attempt:{group}:", self.prefix, self.stream)
    }

    /// The attempt record of entry `id` in `group`.
    pub fn record(&self, group: &str, id: &str) -> String {
        format!("{}{id}", self.record_prefix(group))
    }
}

impl Keys {
    /// Every key of the stream family `stream`.
    pub fn stream(&self, stream: &str) -> StreamKeys {
        StreamKeys {
            stream: stream.to_owned(),
            events: self.events(stream),
            dead_letter: self.dead_letter(stream),
            prefix: self.prefix.clone(),
        }
    }
}

/// True for a valid stream name: `[a-z0-9_-]{1,64}` (the same rule `#[event]` checks).
pub fn is_valid_stream(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// True for a valid key prefix or service name: `[A-Za-z0-9_.-]{1,64}`.
pub fn is_valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}
