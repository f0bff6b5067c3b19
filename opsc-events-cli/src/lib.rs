//! The `opsc` binary of opsc-events: the operations CLI and the web console.
//!
//! Services never compile this crate: it holds what only operators run (the console's HTTP
//! server and its page). The commands that read and repair streams (`streams`, `tail`, `dlq`,
//! `groups`, `schema`, `acl`) are defined in `opsc_events_runtime::cli`; this crate adds its
//! own subcommands ([`Command`]) to them and owns the binary. To add a subcommand, add a variant
//! to [`Command`] and a branch to its `run`.
//!
//! The console is also a library function, so that a program with its own [`Runtime`] (an
//! embedded broker in an example or a test) can serve it:
//!
//! ```no_run
//! # async fn demo(runtime: opsc_events_runtime::Runtime) -> Result<(), Box<dyn std::error::Error>> {
//! use opsc_events_cli::console::{Console, ConsoleOptions};
//!
//! let options = ConsoleOptions::new("127.0.0.1:8080".parse()?).allow_writes(true);
//! let console = Console::bind(runtime, options).await?;
//! println!("console on http://{}", console.local_addr());
//! console.serve(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
//!
//! [`Runtime`]: opsc_events_runtime::Runtime

pub mod console;

use std::process::ExitCode;

use opsc_events_runtime::Runtime;
use opsc_events_runtime::cli::{self, CliError, Extension, Globals};

/// The subcommands this crate adds to those of `opsc_events_runtime::cli`.
#[derive(Debug, clap::Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// Serve the web console: overview, streams, dead letters and groups in a browser.
    #[command(
        long_about = "Serve the web console: every stream with its length, throughput, groups, \
                      lag and dead letters, updated live; the newest events of a stream and \
                      every event of one correlation id; dead letters listed, shown, replayed \
                      and purged; consumer groups with stale ones flagged. The page is a client \
                      of a JSON API under /api that scripts can use too (docs/OPERATIONS.md).\n\n\
                      Read-only unless started with `--allow-writes`. An address that is not \
                      loopback needs `--token` (or OPSC_CONSOLE_TOKEN).",
        after_help = "Example:\n  opsc console --listen 127.0.0.1:8080 --allow-writes"
    )]
    Console(console::ConsoleArgs),
    /// The transactional outbox on PostgreSQL (opsc-events-postgres).
    #[command(subcommand)]
    Outbox(OutboxCommand),
}

/// `opsc outbox …`.
#[derive(Debug, clap::Subcommand)]
#[non_exhaustive]
pub enum OutboxCommand {
    /// The backlog per stream: rows committed and not yet published, the oldest one's age, rows
    /// sent (kept until the retention ends) and rows the relay could not read.
    #[command(after_help = "Example:\n  opsc outbox status --database-url postgres://app@db/app")]
    Status {
        /// The service's database (its password, if any, is never printed).
        #[arg(long, env = "DATABASE_URL", value_name = "URL", value_parser = database_url)]
        database_url: String,
    },
}

/// Where the outbox's operations are described.
const OUTBOX_DOCS: &str = "docs/OPERATIONS.md § Outbox";

/// A PostgreSQL URL: `postgres://` or `postgresql://`, then a host, no spaces or control
/// characters (the driver checks the rest when it connects).
fn database_url(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("postgres://")
        .or_else(|| s.strip_prefix("postgresql://"))
        .ok_or(format!(
            "expected postgres://[user[:password]@]host[:port]/database (see {OUTBOX_DOCS})"
        ))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("the URL names no host (see {OUTBOX_DOCS})"));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "the URL holds spaces or control characters (see {OUTBOX_DOCS})"
        ));
    }
    Ok(s.to_owned())
}

/// `opsc outbox status`.
async fn outbox_status(database_url: &str) -> Result<(), String> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect(database_url)
        .await
        .map_err(|e| format!("cannot connect to the database: {e}"))?;
    let backlog = opsc_events_postgres::status(&pool)
        .await
        .map_err(|e| e.to_string())?;
    print!("{}", opsc_events_postgres::render_status(&backlog));
    Ok(())
}

/// A failure of `opsc outbox`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct OutboxError(String);

impl Extension for Command {
    async fn run(self, runtime: Runtime, _globals: Globals) -> Result<(), CliError> {
        match self {
            Command::Console(args) => console::run_cli(runtime, args)
                .await
                .map_err(|e| CliError::Extension(Box::new(e))),
            Command::Outbox(OutboxCommand::Status { database_url }) => outbox_status(&database_url)
                .await
                .map_err(|e| CliError::Extension(Box::new(OutboxError(e)))),
        }
    }
}

/// The `opsc` command definition (every subcommand, this crate's included), for tools and
/// tests that walk its subcommands and options.
pub fn command() -> clap::Command {
    cli::command_with::<Command>()
}

/// Parses the command line, runs the command and returns the exit code: 0 ok, 1 the operation
/// failed, 2 usage.
pub fn main() -> ExitCode {
    cli::main_with::<Command>()
}
