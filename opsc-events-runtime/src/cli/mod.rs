//! The `opsc` command: what operators use to see and repair streams. Exit codes: 0 ok,
//! 1 operation failed, 2 usage.

mod args;
mod commands;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::runtime::Runtime;

/// Parses the command line, runs the command and returns the exit code.
pub fn main() -> ExitCode {
    // Usage errors print clap's message and exit with 2.
    let cli = args::Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("opsc: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("opsc: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: args::Cli) -> crate::Result<()> {
    let rt = Runtime::builder()
        .service("opsc")
        .prefix(&cli.prefix)
        .redis(&cli.redis)
        .connect_timeout(Duration::from_secs(5))
        .no_handlers()
        .build()
        .await?;
    let out = commands::Out { json: cli.json };
    match cli.command {
        args::Command::Streams => commands::streams(&rt, &out).await,
        args::Command::Tail {
            stream,
            from_start,
            count,
        } => commands::tail(&rt, &out, &stream, from_start, count).await,
        args::Command::Schema { stream, scan } => commands::schema(&rt, &out, stream, scan).await,
        args::Command::Dlq { command } => match command {
            args::DlqCommand::List(f) => commands::dlq_list(&rt, &out, &f).await,
            args::DlqCommand::Show { stream, id } => {
                commands::dlq_show(&rt, &out, &stream, &id).await
            }
            args::DlqCommand::Replay { filter, dry_run } => {
                commands::dlq_change(&rt, &out, &filter, dry_run, commands::Change::Replay).await
            }
            args::DlqCommand::Purge { filter, dry_run } => {
                commands::dlq_change(&rt, &out, &filter, dry_run, commands::Change::Purge).await
            }
        },
    }
}
