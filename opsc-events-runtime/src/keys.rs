//! Redis key names. Every key of one stream shares the Cluster hash tag `{stream}`, so that a
//! stream, its dead letters and its retry schedules live in one slot and can be changed together
//! atomically.

use std::sync::Arc;

use crate::priority::Priority;

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

    /// `<prefix>:{schemas}:registry`: the schema registry, a hash with one field per event
    /// type a service publishes or handles (see `docs/CONTRACTS.md`).
    ///
    /// ```
    /// use opsc_events_runtime::keys::Keys;
    /// assert_eq!(Keys::new("opsconductor").schemas(), "opsconductor:{schemas}:registry");
    /// ```
    pub fn schemas(&self) -> String {
        format!("{}:{{schemas}}:registry", self.prefix)
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

/// The keys of one stream family, or of one priority lane of it (see [`StreamKeys::lane`]).
#[derive(Debug, Clone)]
pub struct StreamKeys {
    /// The stream name, e.g. `assets`.
    pub stream: String,
    /// `<prefix>:{<stream>}:events`, or the lane's stream key
    /// `<prefix>:{<stream>}:lane:<level>:events`.
    pub events: String,
    /// `<prefix>:{<stream>}:dead_letter` (one for every lane of the stream).
    pub dead_letter: String,
    prefix: Arc<str>,
    lane: Priority,
}

impl StreamKeys {
    /// `<prefix>:{<stream>}` for `normal`, `<prefix>:{<stream>}:lane:<level>` for the other
    /// lanes: what the lane's stream, retry schedules and attempt records are named under.
    fn base(&self) -> String {
        match self.lane {
            Priority::Normal => format!("{}:{{{}}}", self.prefix, self.stream),
            lane => format!("{}:{{{}}}:lane:{lane}", self.prefix, self.stream),
        }
    }

    /// The priority lane these keys are of (`Normal`: the stream's own keys).
    pub fn priority(&self) -> Priority {
        self.lane
    }

    /// The keys of the lane `priority` of the same stream: its stream key, retry schedules
    /// and attempt records are the lane's own; dead letters, delayed events and the lane
    /// marker stay the stream's. `Normal` gives the stream's own keys, unchanged.
    ///
    /// ```
    /// use opsc_events_runtime::{Priority, keys::Keys};
    /// let high = Keys::new("opsconductor").stream("assets").lane(Priority::High);
    /// assert_eq!(high.events, "opsconductor:{assets}:lane:high:events");
    /// assert_eq!(high.retry("g"), "opsconductor:{assets}:lane:high:retry:g");
    /// assert_eq!(high.dead_letter, "opsconductor:{assets}:dead_letter");
    /// ```
    pub fn lane(&self, priority: Priority) -> StreamKeys {
        let mut keys = StreamKeys {
            lane: priority,
            ..self.clone()
        };
        keys.events = format!("{}:events", keys.base());
        keys
    }

    /// `<prefix>:{<stream>}:lanes`: the set of the lanes other than `normal` ever published
    /// to (`low`, `high`, `critical`); consumers read those lanes too.
    pub fn lanes_marker(&self) -> String {
        format!("{}:{{{}}}:lanes", self.prefix, self.stream)
    }

    /// `<prefix>:{<stream>}:retry:<group>`: the group's retry schedule (due time → entry id);
    /// a lane's is `<prefix>:{<stream>}:lane:<level>:retry:<group>`.
    pub fn retry(&self, group: &str) -> String {
        format!("{}:retry:{group}", self.base())
    }

    /// `<prefix>:{<stream>}:attempt:<group>:`: prefix of the group's per-message attempt records
    /// (a lane's: `<prefix>:{<stream>}:lane:<level>:attempt:<group>:`).
    pub fn record_prefix(&self, group: &str) -> String {
        format!("{}:attempt:{group}:", self.base())
    }

    /// The attempt record of entry `id` in `group`.
    pub fn record(&self, group: &str, id: &str) -> String {
        format!("{}{id}", self.record_prefix(group))
    }

    /// `<prefix>:{<stream>}:trim_lock` (a lane's: `...:lane:<level>:trim_lock`): one trimmer
    /// at a time.
    pub fn trim_lock(&self) -> String {
        format!("{}:trim_lock", self.base())
    }

    /// `<prefix>:{<stream>}:delayed`: delayed events not yet due (due time → event id).
    pub fn delayed(&self) -> String {
        format!("{}:{{{}}}:delayed", self.prefix, self.stream)
    }

    /// `<prefix>:{<stream>}:delayed:data`: the fields of each delayed event (event id → fields
    /// packed as a MessagePack array of names and values).
    pub fn delayed_data(&self) -> String {
        format!("{}:{{{}}}:delayed:data", self.prefix, self.stream)
    }

    /// `<prefix>:{<stream>}:delayed:lane`: the lane of each delayed event published with a
    /// priority other than `normal` (event id → `low`, `high` or `critical`).
    pub fn delayed_lane(&self) -> String {
        format!("{}:{{{}}}:delayed:lane", self.prefix, self.stream)
    }

    /// `<prefix>:{<stream>}:delayed:lease`: which runtime moves due events into the stream.
    pub fn delayed_lease(&self) -> String {
        format!("{}:{{{}}}:delayed:lease", self.prefix, self.stream)
    }
}

impl Keys {
    /// Every key of the stream family `stream` (its `normal` lane).
    pub fn stream(&self, stream: &str) -> StreamKeys {
        StreamKeys {
            stream: stream.to_owned(),
            events: self.events(stream),
            dead_letter: self.dead_letter(stream),
            prefix: self.prefix.clone(),
            lane: Priority::Normal,
        }
    }
}

/// The rule one kind of name follows: its length in bytes and the bytes it may contain. Every
/// rule is listed in `docs/WIRE.md` § Names and limits, which errors point to.
///
/// ```
/// use opsc_events_runtime::keys::{GROUP_NAME, STREAM_NAME};
///
/// assert!(STREAM_NAME.check("assets").is_ok());
/// let err = STREAM_NAME.check("bad name*").unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "invalid stream name `bad name*`: ' ' at byte 3 is not allowed; expected 1 to 64 of \
///      `a-z 0-9 _ -` (see docs/WIRE.md § Names and limits)"
/// );
/// assert!(GROUP_NAME.check("inventory.index_asset").is_ok());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct NameRule {
    /// What the name is, e.g. `stream name`.
    pub what: &'static str,
    /// The most bytes it may have (at least one).
    pub max_len: usize,
    /// The allowed bytes as a reader sees them, e.g. `a-z 0-9 _ -`.
    pub charset: &'static str,
    allowed: fn(u8) -> bool,
}

/// A stream name: `[a-z0-9_-]{1,64}` (the rule `#[event(stream = ...)]` checks).
pub const STREAM_NAME: NameRule = NameRule {
    what: "stream name",
    max_len: 64,
    charset: "a-z 0-9 _ -",
    allowed: |b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-',
};

/// An event type, the `#[event(name)]`: `[a-z0-9_.-]{1,128}`.
pub const EVENT_TYPE: NameRule = NameRule {
    what: "event type",
    max_len: 128,
    charset: "a-z 0-9 _ . -",
    allowed: |b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-'),
};

/// A key prefix: `[A-Za-z0-9_.-]{1,64}` (service and consumer names follow the same rule).
pub const KEY_PREFIX: NameRule = NameRule {
    what: "key prefix",
    max_len: 64,
    charset: "A-Z a-z 0-9 _ . -",
    allowed: |b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'),
};

/// A service name: `[A-Za-z0-9_.-]{1,64}` (the key prefix's rule; it starts every default group
/// and consumer name and is written to every event).
pub const SERVICE_NAME: NameRule = NameRule {
    what: "service name",
    ..KEY_PREFIX
};

/// A consumer name set with `RuntimeBuilder::consumer_name`: `[A-Za-z0-9_.-]{1,64}`.
pub const CONSUMER_NAME: NameRule = NameRule {
    what: "consumer name",
    ..KEY_PREFIX
};

/// A header name of `PublishOptions::header`: `[A-Za-z0-9_.-]{1,128}` (`traceparent`,
/// `tenant-id`, ...): no spaces, no control characters, nothing a reader in another language
/// or a log line would have to escape.
pub const HEADER_NAME: NameRule = NameRule {
    what: "header name",
    max_len: 128,
    ..KEY_PREFIX
};

/// A consumer group: `[A-Za-z0-9_.:-]{1,128}` (the rule `#[handler(group = ...)]` checks; the
/// default `<service>.<fn name>` follows it too).
pub const GROUP_NAME: NameRule = NameRule {
    what: "group name",
    max_len: 128,
    charset: "A-Z a-z 0-9 _ . : -",
    allowed: |b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'),
};

/// Rules are equal when they describe the same names (the byte test is not compared: function
/// addresses say nothing about equality).
impl PartialEq for NameRule {
    fn eq(&self, other: &Self) -> bool {
        (self.what, self.max_len, self.charset) == (other.what, other.max_len, other.charset)
    }
}

impl Eq for NameRule {}

impl NameRule {
    /// `Ok` when `value` follows the rule; otherwise what is wrong with it.
    pub fn check(&self, value: &str) -> Result<(), InvalidName> {
        let problem = if value.is_empty() {
            NameProblem::Empty
        } else if value.len() > self.max_len {
            NameProblem::TooLong(value.len())
        } else if let Some(at) = value.bytes().position(|b| !(self.allowed)(b)) {
            // `at` is the first byte that is not ASCII-allowed, so it starts a character.
            let ch = value[at..]
                .chars()
                .next()
                .unwrap_or(char::REPLACEMENT_CHARACTER);
            NameProblem::Char { ch, at }
        } else {
            return Ok(());
        };
        Err(InvalidName {
            rule: *self,
            value: shorten(value),
            problem,
        })
    }

    /// True when `value` follows the rule.
    pub fn is_valid(&self, value: &str) -> bool {
        self.check(value).is_ok()
    }
}

/// At most 80 characters of `value`, for an error message.
pub(crate) fn shorten(value: &str) -> String {
    match value.char_indices().nth(80) {
        Some((end, _)) => format!("{}...", &value[..end]),
        None => value.to_owned(),
    }
}

/// A name that breaks its [`NameRule`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid {} `{value}`: {problem}; expected 1 to {} of `{}` (see docs/WIRE.md § Names and limits)",
    rule.what, rule.max_len, rule.charset
)]
pub struct InvalidName {
    /// The rule it breaks.
    pub rule: NameRule,
    /// The name given (its first 80 characters).
    pub value: String,
    /// What is wrong.
    pub problem: NameProblem,
}

/// What is wrong with a name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameProblem {
    /// It is empty.
    #[error("it is empty")]
    Empty,
    /// It has this many bytes, more than the rule allows.
    #[error("it is {0} bytes long")]
    TooLong(usize),
    /// It contains a character the rule does not allow.
    #[error("{ch:?} at byte {at} is not allowed")]
    Char {
        /// The character.
        ch: char,
        /// Its byte offset.
        at: usize,
    },
}

/// True for a valid stream name: `[a-z0-9_-]{1,64}` (the same rule `#[event]` checks).
pub fn is_valid_stream(s: &str) -> bool {
    STREAM_NAME.is_valid(s)
}

/// True for a valid key prefix or service name: `[A-Za-z0-9_.-]{1,64}`.
pub fn is_valid_name(s: &str) -> bool {
    KEY_PREFIX.is_valid(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_by_length_and_bytes() {
        assert!(STREAM_NAME.is_valid("a"));
        assert!(STREAM_NAME.is_valid(&"a".repeat(64)));
        assert_eq!(
            STREAM_NAME.check(&"a".repeat(65)).map_err(|e| e.problem),
            Err(NameProblem::TooLong(65))
        );
        assert_eq!(
            STREAM_NAME.check("").map_err(|e| e.problem),
            Err(NameProblem::Empty)
        );
        assert_eq!(
            STREAM_NAME.check("Assets").map_err(|e| e.problem),
            Err(NameProblem::Char { ch: 'A', at: 0 })
        );
        assert_eq!(
            KEY_PREFIX.check("pré").map_err(|e| e.problem),
            Err(NameProblem::Char { ch: 'é', at: 2 })
        );
        assert!(!KEY_PREFIX.is_valid("a:b"));
        assert!(GROUP_NAME.is_valid("a:b"));
        assert!(GROUP_NAME.is_valid(&"g".repeat(128)));
        assert!(!GROUP_NAME.is_valid(&"g".repeat(129)));
        assert!(!GROUP_NAME.is_valid("g{x}"));
        assert!(SERVICE_NAME.is_valid("inventory") && !SERVICE_NAME.is_valid("a:b"));
        assert!(HEADER_NAME.is_valid("traceparent") && HEADER_NAME.is_valid(&"h".repeat(128)));
        assert!(!HEADER_NAME.is_valid(&"h".repeat(129)));
        assert_eq!(
            HEADER_NAME.check("x\ny").map_err(|e| e.problem),
            Err(NameProblem::Char { ch: '\n', at: 1 })
        );
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        let err = KEY_PREFIX.check(&"x".repeat(500)).expect_err("too long");
        assert_eq!(err.value.len(), 83);
        assert!(err.to_string().contains("it is 500 bytes long"));
    }
}
