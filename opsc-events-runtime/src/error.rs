//! The runtime's error type.

use std::fmt;
use std::time::Duration;

use crate::envelope::{DecodeError, EncodeError};
use crate::keys::{GROUP_NAME, InvalidName, NameProblem};

/// A `Result` with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the runtime. Messages name the stream, key or URL involved,
/// never a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `RuntimeBuilder::build` found problems; all of them are listed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `publish_with` was given options that break a rule; nothing was sent. All problems are
    /// listed.
    #[error(transparent)]
    PublishOptions(#[from] PublishOptionsError),
    /// A Redis command failed.
    #[error("redis {command} on `{key}` failed: {source}")]
    Redis {
        /// The command, e.g. `XADD`.
        command: &'static str,
        /// The key it addressed.
        key: String,
        /// The client's error.
        #[source]
        source: redis::RedisError,
    },
    /// Redis did not answer within the response timeout. For a write (a publish), the outcome
    /// is unknown: the command may have been applied.
    #[error("redis {command} on `{key}` got no answer within {timeout:?}")]
    Timeout {
        /// The command.
        command: &'static str,
        /// The key it addressed.
        key: String,
        /// The timeout that passed.
        timeout: Duration,
    },
    /// Redis answered something that is not what the command returns.
    #[error("unexpected reply to redis {command} on `{key}`: {reply}")]
    UnexpectedReply {
        /// The command.
        command: &'static str,
        /// The key it addressed.
        key: String,
        /// The reply, shortened.
        reply: String,
    },
    /// The stream or its consumer group does not exist (the embedded broker's `NOGROUP`).
    #[error("no consumer group `{group}` on `{key}`")]
    NoGroup {
        /// The stream key.
        key: String,
        /// The group.
        group: String,
    },
    /// A task of a handler's consumer died (a panic in the runtime, or a task that returned
    /// while it should run): the runtime stopped every handler, draining like a shutdown.
    #[error("handler `{handler}` (group `{group}`) failed: its `{task}` task {reason}")]
    ConsumerFailed {
        /// The handler's full path.
        handler: String,
        /// Its consumer group.
        group: String,
        /// The task that died: `read`, `lane`, `counts`, `settle`, `retry`, `reclaim`,
        /// `cleanup`, `call`, or `consumer` (the consumer's own task).
        task: &'static str,
        /// What happened to it.
        reason: String,
    },
    /// The runtime's maintenance task (trimming, backlog gauges) died.
    #[error("the runtime's `{task}` task failed: {reason}")]
    TaskFailed {
        /// The task.
        task: &'static str,
        /// What happened to it.
        reason: String,
    },
    /// A publish was written but fewer replicas than asked for (`RuntimeBuilder::
    /// wait_for_replicas`) acknowledged it in time: it may be lost if the primary fails now.
    /// Publishing it again is safe for idempotent handlers (it is a duplicate, not a loss).
    #[error(
        "published to `{key}` as {ids}, but {acked} of {wanted} replicas acknowledged it within {timeout:?}"
    )]
    NotReplicated {
        /// The stream key.
        key: String,
        /// The entry ids written (one per event of the call).
        ids: String,
        /// Replicas that acknowledged.
        acked: u32,
        /// Replicas asked for.
        wanted: u32,
        /// How long the publish waited.
        timeout: Duration,
    },
    /// `publish_after`/`publish_at` was given a delay past [`crate::delayed::MAX_DELAY`];
    /// nothing was scheduled.
    #[error("a delay of {delay:?} is longer than the longest allowed, {max:?}")]
    DelayTooLong {
        /// The delay asked for.
        delay: Duration,
        /// The longest allowed.
        max: Duration,
    },
    /// An event with this id is already scheduled on the stream (an event id chosen with
    /// `PublishOptions::event_id` and scheduled twice); the second was not scheduled.
    #[error("an event with id {event_id} is already scheduled on stream `{stream}`")]
    AlreadyScheduled {
        /// The stream.
        stream: String,
        /// The event id.
        event_id: uuid::Uuid,
    },
    /// An event could not be serialized.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A stream entry could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

impl Error {
    /// True for Redis's `NOGROUP` (the stream or its group is gone, e.g. Redis restarted without
    /// data): the consumer re-creates the group.
    pub fn is_no_group(&self) -> bool {
        match self {
            Error::Redis { source, .. } => source.code() == Some("NOGROUP"),
            Error::NoGroup { .. } => true,
            _ => false,
        }
    }
}

/// Every problem `RuntimeBuilder::build` found, reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The problems, in the order they were found.
    pub problems: Vec<ConfigProblem>,
}

impl std::error::Error for ConfigError {}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot build the runtime:")?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

/// One problem found by `RuntimeBuilder::build`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigProblem {
    /// No `.service(name)` was given.
    #[error("no service name: call `.service(\"name\")`; it names consumer groups and consumers")]
    MissingService,
    /// A name that breaks its rule (`docs/WIRE.md` § Names and limits; `keys::NameRule`).
    #[error(
        "invalid {what} `{value}`: {problem}; expected 1 to {max_len} of `{charset}` (see docs/WIRE.md § Names and limits)"
    )]
    InvalidName {
        /// Which setting.
        what: &'static str,
        /// The value given (its first 80 characters).
        value: String,
        /// What is wrong with it.
        problem: NameProblem,
        /// The most bytes the name may have.
        max_len: usize,
        /// The characters it may contain.
        charset: &'static str,
    },
    /// A selected handler's consumer group breaks the group rule (`[A-Za-z0-9_.:-]{1,128}`):
    /// most often the default `<service>.<fn name>`, with a long or non-ASCII fn name.
    #[error(
        "handler `{handler}`: invalid group name `{group}`: {problem}; expected 1 to {} of `{}` (see docs/WIRE.md § Names and limits){}",
        GROUP_NAME.max_len, GROUP_NAME.charset, group_hint(*default_group)
    )]
    InvalidGroup {
        /// The handler's full path.
        handler: String,
        /// The group (its first 80 characters).
        group: String,
        /// What is wrong with it.
        problem: NameProblem,
        /// True when the group is the default `<service>.<fn name>`.
        default_group: bool,
    },
    /// A number setting outside its range.
    #[error(
        "`{setting}` is {value}; expected {min} to {max} (see docs/WIRE.md § Names and limits)"
    )]
    OutOfRange {
        /// The builder method that set it.
        setting: &'static str,
        /// The value given.
        value: u64,
        /// The smallest value allowed.
        min: u64,
        /// The largest value allowed.
        max: u64,
    },
    /// A hard cap of `stream_limits` that is zero: it would drop every entry of the stream,
    /// delivered or not.
    #[error(
        "`stream_limits` of stream `{stream}`: `{setting}` must be above zero (zero would drop every entry before delivery)"
    )]
    ZeroStreamLimit {
        /// The stream.
        stream: String,
        /// `max_len` or `max_age`.
        setting: &'static str,
    },
    /// Neither `.redis(url)` nor `.memory()` was chosen.
    #[error("no transport: call `.redis(url)` or `.memory()`")]
    MissingTransport,
    /// Both `.redis(url)` and `.memory()` were chosen.
    #[error(
        "two transports: call one of `.redis(url)`, `.redis_sentinel(master, sentinels)` or `.memory()`"
    )]
    TwoTransports,
    /// The `.redis_sentinel(..)` settings cannot be used.
    #[error("sentinel settings: {reason}")]
    Sentinel {
        /// What is wrong.
        reason: String,
    },
    /// The Redis URL does not parse.
    #[error("invalid redis url `{url}`: {reason}")]
    InvalidUrl {
        /// The URL, password removed.
        url: String,
        /// Why it does not parse.
        reason: String,
    },
    /// Redis could not be reached within the connect timeout.
    #[error("cannot reach redis at `{url}` within {timeout:?}: {reason}")]
    Unreachable {
        /// The URL, password removed.
        url: String,
        /// The connect timeout.
        timeout: Duration,
        /// The last error.
        reason: String,
    },
    /// TLS settings cannot be used (a file cannot be read, certificates without `rediss://`).
    #[error("TLS: {reason}")]
    Tls {
        /// What is wrong.
        reason: String,
    },
    /// The Redis password could not be read from where it was said to be (never shows it).
    #[error("cannot read the redis password from the {from}: {reason}")]
    Secret {
        /// Where it was looked for.
        from: String,
        /// Why it could not be read.
        reason: String,
    },
    /// The server is not a Redis this runtime can work with: too old, or a command it needs is
    /// missing (renamed or disabled).
    #[error("redis at `{url}` cannot be used: {reason}")]
    UnsupportedServer {
        /// The URL, password removed.
        url: String,
        /// What the server reported (`redis_version`), if anything.
        version: Option<String>,
        /// What is missing.
        reason: String,
    },
    /// Two selected handlers share one consumer group on one stream.
    #[error(
        "handlers `{first}` and `{second}` share the group `{group}` on stream `{stream}`; give one a `group = \"...\"`"
    )]
    DuplicateGroup {
        /// The stream.
        stream: String,
        /// The group.
        group: String,
        /// The first handler's path.
        first: String,
        /// The second handler's path.
        second: String,
    },
    /// Handlers ask for state that was never added.
    #[error("state `{type_name}` is needed by {} but was never added: call `.state(value)`", handlers.join(", "))]
    MissingState {
        /// The state type.
        type_name: String,
        /// The handlers that need it.
        handlers: Vec<String>,
    },
    /// Two event types claim one `(stream, name, version)` with different schemas.
    #[error(
        "event `{name}` v{version} on stream `{stream}` is defined twice with different schemas: {first} and {second}"
    )]
    ConflictingEvents {
        /// The stream.
        stream: String,
        /// The event name.
        name: String,
        /// The version.
        version: u16,
        /// One definition.
        first: String,
        /// The other.
        second: String,
    },
    /// A handler's policy is inconsistent (only possible for registrations not made by the
    /// macro, which checks at compile time).
    #[error("handler `{handler}`: {reason}")]
    InvalidHandler {
        /// The handler.
        handler: String,
        /// What is wrong.
        reason: String,
    },
    /// The consumer group of a handler could not be created.
    #[error("cannot create group `{group}` on `{key}`: {reason}")]
    GroupCreation {
        /// The stream key.
        key: String,
        /// The group.
        group: String,
        /// The error.
        reason: String,
    },
    /// A duration setting that must be positive is zero (a zero trim interval would spin; a
    /// zero timeout would fail every call).
    #[error("`{setting}` must be longer than zero")]
    ZeroDuration {
        /// The builder method that set it.
        setting: &'static str,
    },
    /// The runtime was asked to run handlers and none were found.
    #[error(
        "no handlers found: link the crates that define them (`use my_handlers as _;`), or call `.no_handlers()` for a publish-only runtime"
    )]
    NoHandlers,
}

impl ConfigProblem {
    /// `name`, which breaks its rule, as the problem of the setting `what`.
    pub(crate) fn invalid_name(what: &'static str, name: InvalidName) -> Self {
        ConfigProblem::InvalidName {
            what,
            value: name.value,
            problem: name.problem,
            max_len: name.rule.max_len,
            charset: name.rule.charset,
        }
    }
}

fn group_hint(default_group: bool) -> &'static str {
    if default_group {
        "; the default group is `<service>.<fn name>`: give the handler a `group = \"...\"` or use a shorter service name"
    } else {
        ""
    }
}

/// Every problem of the [`PublishOptions`](crate::PublishOptions) given to `publish_with`,
/// reported together; nothing was published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOptionsError {
    /// The problems, ids first, then headers by name.
    pub problems: Vec<PublishOptionProblem>,
}

impl std::error::Error for PublishOptionsError {}

impl fmt::Display for PublishOptionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid publish options, nothing was published:")?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

/// One problem of a [`PublishOptions`](crate::PublishOptions). The rules are in
/// `docs/WIRE.md` § Names and limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishOptionProblem {
    /// An id set to the nil UUID (all zeros): handlers deduplicate on the event id and group
    /// conversations by the correlation id, so every event given the nil id would collide.
    #[error(
        "`{option}` is the nil UUID: every event given it would share one id; leave it unset for a fresh UUIDv7"
    )]
    NilId {
        /// `event_id`, `correlation_id` or `causation_id`.
        option: &'static str,
    },
    /// A header name that breaks the header name rule.
    #[error(transparent)]
    HeaderName(InvalidName),
    /// A header value longer than the limit.
    #[error(
        "header `{name}`: the value is {len} bytes long; at most {max} (see docs/WIRE.md § Names and limits)"
    )]
    HeaderValueTooLong {
        /// The header's name (its first 80 characters).
        name: String,
        /// The value's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A header value holding a control character (a line break, an escape, ...).
    #[error(
        "header `{name}`: the value holds the control character {ch:?} at byte {at}; control characters are not allowed (see docs/WIRE.md § Names and limits)"
    )]
    HeaderValueChar {
        /// The header's name (its first 80 characters).
        name: String,
        /// The character.
        ch: char,
        /// Its byte offset in the value.
        at: usize,
    },
    /// More headers than the limit.
    #[error("{count} headers; at most {max} (see docs/WIRE.md § Names and limits)")]
    TooManyHeaders {
        /// The number of headers.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The names and values of all headers together are longer than the limit.
    #[error(
        "the headers' names and values take {len} bytes; at most {max} (see docs/WIRE.md § Names and limits)"
    )]
    HeadersTooLong {
        /// Their total length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// `url` with any password replaced by `***`.
///
/// ```
/// use opsc_events_runtime::error::redact_url;
/// assert_eq!(redact_url("redis://:s3cret@db:6379/0"), "redis://:***@db:6379/0");
/// assert_eq!(redact_url("redis://app:s3cret@db"), "redis://app:***@db");
/// assert_eq!(redact_url("redis://db:6379"), "redis://db:6379");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &rest[..at];
    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
    let hidden = if userinfo.contains(':') {
        format!("{user}:***")
    } else {
        // `redis://password@host` is also accepted by some clients: hide it all.
        "***".to_owned()
    };
    format!("{}{hidden}{}", &url[..scheme_end + 3], &rest[at..])
}
