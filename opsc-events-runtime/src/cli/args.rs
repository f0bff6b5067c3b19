//! Command-line arguments of `opsc`. Every value is parsed into its type by a parser of
//! `super::values`, so nothing the commands receive still needs checking.

use clap::{Args, Parser, Subcommand};

use std::time::Duration;

use super::values::{self, RedisUrl, Time};
use crate::dead_letter::DeadLetterReason;
use crate::message_id::MessageId;

const ABOUT: &str = "Operate opsc-events streams in Redis: streams, lag, pending work, dead \
                     letters and schemas; follow a stream; replay or purge dead letters";

const LONG_ABOUT: &str = "Operate opsc-events streams in Redis: see every stream with its \
length, groups, lag, pending entries and dead letters; follow a stream's events as JSON; list, \
show, replay and purge dead letters; see which event types and schemas each stream carries; \
find and remove stale consumer groups.

Every argument is checked before anything is sent to Redis: a stream, group or prefix that \
breaks the naming rules, an unknown dead-letter reason, a time, id or number that does not \
parse is a usage error. Names and limits: docs/WIRE.md § Names and limits.

Exit codes: 0 ok, 1 the operation failed (e.g. Redis unreachable), 2 usage error.";

/// The heading of the options every command takes.
const GLOBAL: &str = "Global options";

/// The `opsc` command line.
#[derive(Debug, Parser)]
#[command(
    name = "opsc",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = "Example:\n  opsc --redis redis://127.0.0.1:6379 streams",
    propagate_version = true,
    subcommand_required = true
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) globals: Globals,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The options every command takes: where Redis is and how to reach it, the key prefix, the
/// output format. Public (hidden) for the `opsc` binary's own subcommands.
#[doc(hidden)]
#[derive(Debug, Clone, Args)]
pub struct Globals {
    /// The Redis URL, e.g. `redis://user:password@host:6379/0`.
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        global = true,
        help_heading = GLOBAL,
        value_name = "URL",
        value_parser = RedisUrl,
        hide_env_values = true
    )]
    pub redis: String,
    /// The key prefix: 1 to 64 of `A-Z a-z 0-9 _ . -`.
    #[arg(
        long,
        default_value = "opsconductor",
        global = true,
        help_heading = GLOBAL,
        value_parser = values::prefix
    )]
    pub prefix: String,
    /// Trust the CA certificate(s) in this PEM file for a `rediss://` URL (instead of the
    /// system's roots).
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "FILE", value_parser = values::file)]
    pub tls_ca: Option<std::path::PathBuf>,
    /// Present this client certificate (PEM) on a `rediss://` URL (mutual TLS); with `--tls-key`.
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "FILE", value_parser = values::file)]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The key (PEM) of `--tls-cert`.
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "FILE", value_parser = values::file)]
    pub tls_key: Option<std::path::PathBuf>,
    /// Read the Redis password from this file (so it is not in the URL or the command line).
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "FILE", value_parser = values::file)]
    pub password_file: Option<std::path::PathBuf>,
    /// Print JSON lines instead of text for people.
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    #[command(
        about = ACL_ABOUT,
        long_about = ACL_LONG_ABOUT,
        after_help = "Example:\n  opsc acl --service inventory --stream assets --publish audit\n  \
                      opsc acl --service web --user web-prod --publish orders"
    )]
    Acl(AclArgs),
    /// Every stream: length, dead letters, and per group lag, pending, retries, oldest pending.
    #[command(after_help = "Example:\n  opsc streams --json")]
    Streams,
    /// Print a stream's entries, decoded, as they arrive (Ctrl-C to stop).
    #[command(after_help = "Example:\n  opsc tail assets --from-start --count 10")]
    Tail {
        /// The stream name, e.g. `assets`: 1 to 64 of `a-z 0-9 _ -`.
        #[arg(value_parser = values::stream)]
        stream: String,
        /// Start from the oldest entry instead of now.
        #[arg(long)]
        from_start: bool,
        /// Stop after this many entries (1 to 1000000000).
        #[arg(long, value_parser = values::count)]
        count: Option<usize>,
    },
    /// Dead letters: list, show, replay, purge.
    #[command(
        subcommand_required = true,
        after_help = "Example:\n  opsc dlq list --stream assets --reason timeout --since 2h"
    )]
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Delayed events not yet due (`publish_after`): list, show, cancel.
    #[command(
        subcommand_required = true,
        after_help = "Example:\n  opsc delayed list assets --due-before 1h --type asset_created"
    )]
    Delayed {
        #[command(subcommand)]
        command: DelayedCommand,
    },
    /// The event types, versions and schema fingerprints seen on each stream; the schema
    /// registry; the `events.lock` of a service and its check.
    #[command(
        args_conflicts_with_subcommands = true,
        after_help = "Example:\n  opsc schema assets --scan 1000\n  opsc schema registry\n  \
                      opsc schema check --lock events.lock --current new.lock"
    )]
    Schema {
        #[command(subcommand)]
        command: Option<SchemaCommand>,
        /// Only this stream: 1 to 64 of `a-z 0-9 _ -`.
        #[arg(value_parser = values::stream)]
        stream: Option<String>,
        /// How many of the newest entries to look at per stream (1 to 10000000).
        #[arg(long, default_value = "10000", value_parser = values::scan)]
        scan: usize,
    },
    /// An AsyncAPI 3.0 document of every event and handler in the schema registry.
    #[command(after_help = "Example:\n  opsc asyncapi > asyncapi.json")]
    Asyncapi,
    #[command(
        about = GROUPS_ABOUT,
        long_about = GROUPS_LONG_ABOUT,
        args_conflicts_with_subcommands = true,
        after_help = "Example:\n  opsc groups assets --stale-after 30m --verbose\n  \
                      opsc groups remove assets inventory.old_handler --dry-run"
    )]
    Groups {
        #[command(subcommand)]
        command: Option<GroupsCommand>,
        #[command(flatten)]
        list: GroupsList,
    },
}

const GROUPS_ABOUT: &str = "Consumer groups per stream: lag, pending, consumers and last \
activity; flags stale groups and the group that holds back trimming";

const GROUPS_LONG_ABOUT: &str = "Consumer groups per stream: lag (entries not yet delivered), \
pending (delivered, not acknowledged), retrying (in the retry schedule), consumers, and last \
activity (the most recent activity of any of its consumers as Redis reports it in XINFO \
CONSUMERS, or `never` when it has none).

A group is flagged `stale` when entries wait for it (lag not zero, or pending) and none of its \
consumers has been active for longer than `--stale-after`, or it has no consumer. opsc cannot \
know which handlers run elsewhere, so ownership is judged by activity: a running handler reads \
new entries within a second, so its group does not stay idle while entries wait. A group with \
nothing waiting is not flagged: it holds nothing back, and before Redis 7.2 a read that returns \
nothing does not count as activity, so it cannot be told from a running one. A stale group is \
most likely left behind by a renamed or removed handler; lossless trimming keeps every entry it \
has not acknowledged, so it holds the stream back forever. The group that holds back trimming \
(whose oldest needed entry is the trimming floor) is marked `holds back trimming`; \
`opsc groups remove STREAM GROUP` deletes a group.";

const REMOVE_LONG_ABOUT: &str = "Delete one consumer group (XGROUP DESTROY) with its retry \
schedule and attempt records, so that trimming passes it. Its pending and undelivered entries \
are no longer owed to anyone. Only remove a group no handler uses: a running handler would \
re-create its group and read the stream from its oldest entry again. With `--dry-run`, print \
what would be removed and change nothing. A group that does not exist is a failure (exit 1).";

/// `opsc groups [STREAM...]`.
#[derive(Debug, Args)]
pub(crate) struct GroupsList {
    /// Only these streams (default: every stream): 1 to 64 of `a-z 0-9 _ -` each.
    #[arg(value_name = "STREAM", value_parser = values::stream)]
    pub(crate) stream: Vec<String>,
    /// A group with no consumer activity for longer than this is stale: a whole number and a
    /// unit `ms`, `s`, `m`, `h` or `d`, e.g. `30m` (1ms to 36500d).
    #[arg(long, default_value = "1h", value_parser = values::duration)]
    pub(crate) stale_after: Duration,
    /// Also list each consumer with its pending entries and idle time (always in `--json`).
    #[arg(long)]
    pub(crate) verbose: bool,
}

/// `opsc schema registry|lock|check` (see `docs/CONTRACTS.md`).
#[derive(Debug, Subcommand)]
pub(crate) enum SchemaCommand {
    /// Per event type, the producers and consumers recorded in the schema registry with their
    /// versions and fingerprints; flags a consumer whose fingerprint no producer writes and a
    /// producer whose version some consumer cannot read.
    #[command(after_help = "Example:\n  opsc schema registry --json")]
    Registry,
    /// Print the `events.lock` of a service, from its entries in the schema registry.
    #[command(after_help = "Example:\n  opsc schema lock --service inventory > events.lock")]
    Lock {
        /// The service: 1 to 64 of `A-Z a-z 0-9 _ . -`.
        #[arg(long, value_parser = values::service)]
        service: String,
    },
    /// Check a new lock against the committed one (no connection): exit 1, naming the event,
    /// when a fingerprint changed without a version bump, a version a handler read disappeared
    /// or an upcast path was removed.
    #[command(
        after_help = "Example:\n  opsc schema check --lock events.lock --current target/events.lock"
    )]
    Check {
        /// The committed lock file (a file that exists).
        #[arg(long, value_parser = values::file)]
        lock: std::path::PathBuf,
        /// The lock of the new build (a file that exists), e.g. written by a test with
        /// `Lock::linked()`.
        #[arg(long, value_parser = values::file)]
        current: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum GroupsCommand {
    /// Delete one consumer group with its retry schedule and attempt records.
    #[command(
        long_about = REMOVE_LONG_ABOUT,
        after_help = "Example:\n  opsc groups remove assets inventory.old_handler --dry-run"
    )]
    Remove {
        /// The stream name: 1 to 64 of `a-z 0-9 _ -`.
        #[arg(value_parser = values::stream)]
        stream: String,
        /// The group name: 1 to 128 of `A-Z a-z 0-9 _ . : -`.
        #[arg(value_parser = values::group)]
        group: String,
        /// Only show what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Move one consumer group's read position (pending entries stay pending).
    #[command(
        long_about = RESET_LONG_ABOUT,
        after_help = "Example:\n  opsc groups reset assets inventory.index_asset --to latest --dry-run"
    )]
    Reset {
        /// The stream name: 1 to 64 of `a-z 0-9 _ -`.
        #[arg(value_parser = values::stream)]
        stream: String,
        /// The group name: 1 to 128 of `A-Z a-z 0-9 _ . : -`.
        #[arg(value_parser = values::group)]
        group: String,
        /// Where the group goes on reading: `latest` (skip everything not yet delivered),
        /// `earliest` (deliver the whole stream again) or an entry id (deliver what follows it).
        #[arg(long, value_name = "POSITION", value_parser = values::reset_to)]
        to: super::groups::ResetTo,
        /// Only show what would change.
        #[arg(long)]
        dry_run: bool,
    },
}

const RESET_LONG_ABOUT: &str = "Move one consumer group's read position with `XGROUP SETID`: \
`--to latest` skips every entry not yet delivered to the group (its lag becomes 0), `--to \
earliest` delivers the whole stream to it again, `--to <ID>` delivers what follows that entry. \
Entries already delivered and not acknowledged stay pending (and are reclaimed as usual); the \
retry schedule is left as it is. With `--dry-run`, prints the group's position, lag and pending \
and changes nothing. On Redis and on the embedded broker.";

#[derive(Debug, Subcommand)]
pub(crate) enum DelayedCommand {
    /// List a stream's scheduled events, soonest due first.
    #[command(after_help = "Example:\n  opsc delayed list assets --due-before 1h --limit 20")]
    List {
        /// The stream name: 1 to 64 of `a-z 0-9 _ -`.
        #[arg(value_parser = values::stream)]
        stream: String,
        /// Only those due at or after: milliseconds since the epoch (13 digits) or a time from
        /// now such as `30m`, `2h`, `7d`.
        #[arg(long, value_parser = values::due)]
        due_after: Option<values::Due>,
        /// Only those due before (same forms as `--due-after`).
        #[arg(long, value_parser = values::due)]
        due_before: Option<values::Due>,
        /// Only events of this type (the `#[event(name)]`, e.g. `asset_created`): 1 to 128 of
        /// `a-z 0-9 _ . -`.
        #[arg(long = "type", value_name = "TYPE", value_parser = values::event_type)]
        event_type: Option<String>,
        /// At most this many (1 to 1000000; default 100).
        #[arg(long, value_parser = values::limit)]
        limit: Option<usize>,
    },
    /// Show one scheduled event in full, with its decoded payload.
    #[command(
        after_help = "Example:\n  opsc delayed show assets 0191c6d2-7b0e-7f3a-8c1e-5b8f2a9d4e61"
    )]
    Show {
        /// The stream name: 1 to 64 of `a-z 0-9 _ -`.
        #[arg(value_parser = values::stream)]
        stream: String,
        /// The event id (as `delayed list` shows it).
        #[arg(value_parser = values::event_id)]
        event_id: uuid::Uuid,
    },
    /// Cancel a scheduled event: it is never delivered. Exit 1 when it is not scheduled (any
    /// more).
    #[command(
        after_help = "Example:\n  opsc delayed cancel assets 0191c6d2-7b0e-7f3a-8c1e-5b8f2a9d4e61"
    )]
    Cancel {
        /// The stream name: 1 to 64 of `a-z 0-9 _ -`.
        #[arg(value_parser = values::stream)]
        stream: String,
        /// The event id (as `delayed list` shows it).
        #[arg(value_parser = values::event_id)]
        event_id: uuid::Uuid,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DlqCommand {
    /// List dead letters, oldest first.
    #[command(
        after_help = "Example:\n  opsc dlq list --stream assets --group inventory.index_asset --limit 20"
    )]
    List(Filter),
    /// Show one dead letter in full, with its decoded payload.
    #[command(after_help = "Example:\n  opsc dlq show assets 1700000000000-0")]
    Show {
        /// The stream name: 1 to 64 of `a-z 0-9 _ -`.
        #[arg(value_parser = values::stream)]
        stream: String,
        /// The dead letter's id, `<ms>-<seq>` (as `dlq list` shows it).
        #[arg(value_parser = values::entry_id)]
        id: MessageId,
    },
    /// Put dead letters back to the group that failed them, with a fresh attempt count.
    #[command(
        after_help = "Example:\n  opsc dlq replay --stream assets --reason timeout --dry-run"
    )]
    Replay {
        #[command(flatten)]
        filter: Filter,
        /// Only show what would be replayed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete dead letters.
    #[command(after_help = "Example:\n  opsc dlq purge --stream assets --until 7d --dry-run")]
    Purge {
        #[command(flatten)]
        filter: Filter,
        /// Only show what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Which dead letters.
#[derive(Debug, Args)]
pub(crate) struct Filter {
    /// Only this stream (default: every stream): 1 to 64 of `a-z 0-9 _ -`.
    #[arg(long, value_parser = values::stream)]
    pub(crate) stream: Option<String>,
    /// Only those failed by this group: 1 to 128 of `A-Z a-z 0-9 _ . : -`.
    #[arg(long, value_parser = values::group)]
    pub(crate) group: Option<String>,
    /// Only this reason: handler_error, permanent, timeout, panic, crashed, decode_error,
    /// schema_mismatch.
    #[arg(long, value_parser = values::reason)]
    pub(crate) reason: Option<DeadLetterReason>,
    /// Only those that failed at or after: milliseconds since the epoch (13 digits), or an age
    /// such as `30s`, `30m`, `2h`, `7d`.
    #[arg(long, value_parser = values::time)]
    pub(crate) since: Option<Time>,
    /// Only those that failed before (same forms as `--since`).
    #[arg(long, value_parser = values::time)]
    pub(crate) until: Option<Time>,
    /// At most this many per stream (1 to 1000000).
    #[arg(long, value_parser = values::limit)]
    pub(crate) limit: Option<usize>,
    /// Only those after this dead-letter id, `<ms>-<seq>` (the last of the previous page).
    #[arg(long, value_parser = values::entry_id)]
    pub(crate) after: Option<MessageId>,
}

const ACL_ABOUT: &str = "Print the Redis ACL rules of a service: only the commands the runtime \
sends and only the keys of the streams it handles or publishes to (sends nothing to Redis)";

const ACL_LONG_ABOUT: &str = "Print the Redis ACL rules of a service as one `ACL SETUSER` line: \
the commands the runtime sends (directly and inside its Lua scripts) and the keys of the \
streams it handles (`<prefix>:{<stream>}:*`, every key of the stream's family) or only publishes \
to (`<prefix>:{<stream>}:events`). Replace `<password>` in the output (or the whole `><password>` \
with `#<sha256 hex>`) and run it with redis-cli as an administrator.

opsc does not link the service's handlers, so it cannot know its streams: name them with \
`--stream` (handled) and `--publish` (only published to). In the service, \
`Runtime::acl_rules(user, publishes)` computes the same rules from the handlers it runs. \
Nothing is sent to Redis. Details: docs/OPERATIONS.md § Least privilege (ACL).";

/// `opsc acl`.
#[derive(Debug, Args)]
pub(crate) struct AclArgs {
    /// The service: 1 to 64 of `A-Z a-z 0-9 _ . -`; the user name unless `--user` is given.
    #[arg(long, required = true, value_parser = values::service)]
    pub(crate) service: String,
    /// The Redis user (default: the service name): 1 to 64 of `A-Z a-z 0-9 _ . -`.
    #[arg(long, value_parser = values::acl_user)]
    pub(crate) user: Option<String>,
    /// A stream the service handles (repeat for several): 1 to 64 of `a-z 0-9 _ -` each.
    #[arg(long, value_name = "STREAM", value_parser = values::stream)]
    pub(crate) stream: Vec<String>,
    /// A stream the service only publishes to (repeat for several): 1 to 64 of `a-z 0-9 _ -`
    /// each.
    #[arg(long, value_name = "STREAM", value_parser = values::stream)]
    pub(crate) publish: Vec<String>,
}
