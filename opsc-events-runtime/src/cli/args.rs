//! Command-line arguments of `opsc`.

use clap::{Args, Parser, Subcommand};

/// Operate opsc-events streams: see streams, lag, pending work and dead letters; follow a
/// stream; replay or purge dead letters.
#[derive(Debug, Parser)]
#[command(name = "opsc", version, about)]
pub(crate) struct Cli {
    /// The Redis URL.
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        global = true
    )]
    pub(crate) redis: String,
    /// The key prefix.
    #[arg(long, default_value = "opsconductor", global = true)]
    pub(crate) prefix: String,
    /// Print JSON lines instead of text for people.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Every stream: length, dead letters, and per group lag, pending, retries, oldest pending.
    Streams,
    /// Print a stream's entries, decoded, as they arrive.
    Tail {
        /// The stream name (e.g. `assets`).
        stream: String,
        /// Start from the oldest entry instead of now.
        #[arg(long)]
        from_start: bool,
        /// Stop after this many entries.
        #[arg(long)]
        count: Option<usize>,
    },
    /// Dead letters.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// The event types, versions and schema fingerprints seen on each stream.
    Schema {
        /// Only this stream.
        stream: Option<String>,
        /// How many of the newest entries to look at per stream.
        #[arg(long, default_value_t = 10_000)]
        scan: usize,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DlqCommand {
    /// List dead letters, oldest first.
    List(Filter),
    /// Show one dead letter in full.
    Show {
        /// The stream name.
        stream: String,
        /// The dead letter's id.
        id: String,
    },
    /// Put dead letters back to the group that failed them.
    Replay {
        #[command(flatten)]
        filter: Filter,
        /// Only show what would be replayed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete dead letters.
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
    /// Only this stream (default: every stream).
    #[arg(long)]
    pub(crate) stream: Option<String>,
    /// Only those failed by this group.
    #[arg(long)]
    pub(crate) group: Option<String>,
    /// Only this reason (handler_error, permanent, timeout, panic, crashed, decode_error,
    /// schema_mismatch).
    #[arg(long)]
    pub(crate) reason: Option<String>,
    /// Only those that failed at or after: milliseconds since the epoch, or an age such as
    /// `30m`, `2h`, `7d`.
    #[arg(long)]
    pub(crate) since: Option<String>,
    /// Only those that failed before (same forms as `--since`).
    #[arg(long)]
    pub(crate) until: Option<String>,
    /// At most this many (per stream).
    #[arg(long)]
    pub(crate) limit: Option<usize>,
    /// Only those after this dead-letter id (the last of the previous page).
    #[arg(long)]
    pub(crate) after: Option<String>,
}
