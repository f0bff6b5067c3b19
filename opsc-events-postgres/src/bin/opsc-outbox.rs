//! `opsc-outbox`: the outbox's backlog for operators.
//!
//! `opsc-outbox status` prints, per stream, the rows committed and not yet published, the age of
//! the oldest of them, the rows sent and kept until the retention ends, and the rows the relay
//! could not read. Exit codes: 0 ok, 1 the database could not be read, 2 bad arguments.

use clap::{Parser, Subcommand};

/// The outbox of opsc-events on PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "opsc-outbox", version)]
struct Cli {
    /// The service's database (its password, if any, is never printed).
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The backlog per stream: unsent rows, the oldest one's age, sent and failed rows.
    Status,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = async {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(&cli.database_url)
            .await
            .map_err(|e| format!("cannot connect to the database: {e}"))?;
        match cli.command {
            Command::Status => {
                let backlog = opsc_events_postgres::status(&pool)
                    .await
                    .map_err(|e| e.to_string())?;
                print!("{}", opsc_events_postgres::render_status(&backlog));
            }
        }
        Ok::<(), String>(())
    }
    .await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("opsc-outbox: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
