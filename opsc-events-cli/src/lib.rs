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
}

impl Extension for Command {
    async fn run(self, runtime: Runtime, _globals: Globals) -> Result<(), CliError> {
        match self {
            Command::Console(args) => console::run_cli(runtime, args)
                .await
                .map_err(|e| CliError::Extension(Box::new(e))),
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
