//! The `opsc` command: what operators use to see and repair streams. Exit codes: 0 ok,
//! 1 operation failed, 2 usage.
//!
//! Every argument is parsed and checked (`values`) before the first Redis command, so a
//! mistake never reaches Redis — above all a `dlq replay` or `dlq purge` filter.

mod acl;
mod args;
mod commands;
mod contracts;
mod groups;
mod values;

#[doc(hidden)]
pub use args::Globals;
#[doc(hidden)]
pub use commands::{entry_json, letter_json, letter_line};
#[doc(hidden)]
pub use groups::{ResetTo, group_json, holders, remove_group, reset_group};

use std::ffi::OsString;
use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches};

use crate::envelope::now_ms;
use crate::error::Error;
use crate::runtime::Runtime;

/// Why a command failed after its arguments were accepted (exit code 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The runtime could not be built or a Redis command failed.
    #[error(transparent)]
    Runtime(#[from] Error),
    /// Output could not be written (e.g. the reader of a pipe went away).
    #[error("cannot write the output: {0}")]
    Output(#[source] std::io::Error),
    /// `groups remove` found no such group.
    #[error("no consumer group `{group}` on stream `{stream}`")]
    NoSuchGroup {
        /// The stream.
        stream: String,
        /// The group.
        group: String,
    },
    /// `acl` could not compute the rules.
    #[error(transparent)]
    Acl(#[from] crate::acl::AclError),
    /// `dlq show` found no such letter.
    #[error("no dead letter `{id}` on stream `{stream}`")]
    NoSuchLetter {
        /// The stream.
        stream: String,
        /// The dead-letter id.
        id: String,
    },
    /// `delayed show` / `delayed cancel` found no such scheduled event.
    #[error("no delayed event `{id}` scheduled on stream `{stream}`")]
    NoSuchDelayed {
        /// The stream.
        stream: String,
        /// The event id.
        id: String,
    },
    /// A lock file could not be read or parsed.
    #[error("cannot read the lock file `{path}`: {reason}")]
    LockFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// `schema check` found the new lock breaks the committed one (each problem names the event).
    #[error("the events lock is broken:\n{}", problems.join("\n"))]
    LockBroken {
        /// One line per problem.
        problems: Vec<String>,
    },
    /// A subcommand of the `opsc` binary's own crate (e.g. `console`) failed.
    #[error(transparent)]
    Extension(Box<dyn std::error::Error + Send + Sync>),
}

/// Subcommands that the `opsc` binary's crate (`opsc-events-cli`) adds to the commands here,
/// so that tools only operators run (the web console) stay out of this crate. Hidden: the
/// entry point of that crate, not an API for services.
#[doc(hidden)]
pub trait Extension: clap::Subcommand + Sized {
    /// Runs the subcommand against a runtime connected as the global options say.
    fn run(
        self,
        runtime: Runtime,
        globals: Globals,
    ) -> impl Future<Output = Result<(), CliError>> + Send;
}

/// `opsc` with no added subcommands.
#[doc(hidden)]
#[derive(Debug)]
pub enum NoExtension {}

impl FromArgMatches for NoExtension {
    fn from_arg_matches(_: &clap::ArgMatches) -> Result<Self, clap::Error> {
        Err(clap::Error::new(ErrorKind::MissingSubcommand))
    }

    fn update_from_arg_matches(&mut self, _: &clap::ArgMatches) -> Result<(), clap::Error> {
        match *self {}
    }
}

impl clap::Subcommand for NoExtension {
    fn augment_subcommands(cmd: clap::Command) -> clap::Command {
        cmd
    }

    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        cmd
    }

    fn has_subcommand(_: &str) -> bool {
        false
    }
}

impl Extension for NoExtension {
    async fn run(self, _: Runtime, _: Globals) -> Result<(), CliError> {
        match self {}
    }
}

/// The parser of `groups --stale-after` (a whole number and a unit `ms`, `s`, `m`, `h`, `d`;
/// 1ms to 36500d), for the `opsc` binary's own subcommands.
#[doc(hidden)]
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    values::duration(s).map_err(|e| e.to_string())
}

/// The parser of `groups reset --to` (`latest`, `earliest` or an entry id), for the console.
#[doc(hidden)]
pub fn parse_reset_to(s: &str) -> Result<ResetTo, String> {
    values::reset_to(s).map_err(|e| e.to_string())
}

/// The `opsc` command definition, for tools and tests that walk its subcommands and options.
pub fn command() -> clap::Command {
    args::Cli::command()
}

/// The `opsc` command definition with the subcommands of `E` added.
#[doc(hidden)]
pub fn command_with<E: Extension>() -> clap::Command {
    let base = args::Cli::command();
    // A derived `Subcommand` sets the doc comment of its enum as the command's about: keep
    // the tool's own.
    let about = base.get_about().cloned();
    let long_about = base.get_long_about().cloned();
    let after_help = base.get_after_help().cloned();
    let mut cmd = E::augment_subcommands(base);
    if let Some(a) = about {
        cmd = cmd.about(a);
    }
    if let Some(a) = long_about {
        cmd = cmd.long_about(a);
    }
    if let Some(a) = after_help {
        cmd = cmd.after_help(a);
    }
    cmd
}

/// Parses and checks a command line (the program name first), including the checks that
/// relate arguments to each other; the error is a usage error (or `--help` / `--version`).
fn parse<I, T>(argv: I) -> Result<args::Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut cmd = args::Cli::command();
    let matches = cmd.try_get_matches_from_mut(argv)?;
    let cli = args::Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))?;
    if cli.globals.tls_cert.is_some() != cli.globals.tls_key.is_some() {
        return Err(cmd.error(
            ErrorKind::MissingRequiredArgument,
            "`--tls-cert` and `--tls-key` go together: give both or neither",
        ));
    }
    if let args::Command::Acl(a) = &cli.command
        && a.stream.is_empty()
        && a.publish.is_empty()
    {
        let leaf = cmd.find_subcommand_mut("acl");
        let cmd = match leaf {
            Some(leaf) => leaf,
            None => &mut cmd,
        };
        return Err(cmd.error(
            ErrorKind::MissingRequiredArgument,
            "name at least one stream with `--stream` (handled) or `--publish` (only published to)",
        ));
    }
    if let args::Command::Dlq { command } = &cli.command {
        let (name, filter) = match command {
            args::DlqCommand::List(f) => ("list", Some(f)),
            args::DlqCommand::Replay { filter: f, .. } => ("replay", Some(f)),
            args::DlqCommand::Purge { filter: f, .. } => ("purge", Some(f)),
            args::DlqCommand::Show { .. } => ("show", None),
        };
        if let Some(args::Filter {
            since: Some(since),
            until: Some(until),
            ..
        }) = filter
        {
            let now = now_ms();
            if since.resolve(now) >= until.resolve(now) {
                // The error shows the usage of the command it is about.
                let leaf = cmd
                    .find_subcommand_mut("dlq")
                    .and_then(|dlq| dlq.find_subcommand_mut(name));
                let cmd = match leaf {
                    Some(leaf) => leaf,
                    None => &mut cmd,
                };
                return Err(cmd.error(
                    ErrorKind::ArgumentConflict,
                    "`--since` is not before `--until`: the filter would select nothing",
                ));
            }
        }
    }
    Ok(cli)
}

/// Parses the command line, runs the command and returns the exit code.
pub fn main() -> ExitCode {
    main_with::<NoExtension>()
}

/// What the command line asks for: one of the commands here, or one of `E`.
enum Parsed<E> {
    Own(Box<args::Cli>),
    Extension(Box<Globals>, E),
}

/// Parses `argv` against the commands here and those of `E` (its `--help` lists both).
fn parse_with<E: Extension>(argv: Vec<OsString>) -> Result<Parsed<E>, clap::Error> {
    let mut cmd = command_with::<E>();
    let matches = cmd.try_get_matches_from_mut(argv.clone())?;
    match matches.subcommand_name() {
        Some(name) if E::has_subcommand(name) => {
            let globals = Globals::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))?;
            if globals.tls_cert.is_some() != globals.tls_key.is_some() {
                return Err(cmd.error(
                    ErrorKind::MissingRequiredArgument,
                    "`--tls-cert` and `--tls-key` go together: give both or neither",
                ));
            }
            let ext = E::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))?;
            Ok(Parsed::Extension(Box::new(globals), ext))
        }
        _ => parse(argv).map(|cli| Parsed::Own(Box::new(cli))),
    }
}

/// [`main`] with the subcommands of `E` added: the entry point of the `opsc` binary.
#[doc(hidden)]
pub fn main_with<E: Extension>() -> ExitCode {
    let parsed = match parse_with::<E>(std::env::args_os().collect()) {
        Ok(parsed) => parsed,
        Err(e) => {
            // `--help` and `--version` exit 0; usage errors exit 2.
            let code = u8::try_from(e.exit_code()).unwrap_or(2);
            // Nothing useful is left to do if stderr is closed.
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // The console serves many requests at once: a multi-threaded runtime for extensions.
    let rt = match &parsed {
        Parsed::Own(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Parsed::Extension(..) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("opsc: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = match parsed {
        Parsed::Own(cli) => rt.block_on(run(*cli)),
        Parsed::Extension(globals, ext) => rt.block_on(async move {
            let runtime = connect(&globals).await?;
            ext.run(runtime, *globals).await
        }),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // The reader stopped reading (`opsc tail x | head -1`): nothing left to do.
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("opsc: {e}");
            ExitCode::from(1)
        }
    }
}

/// A runtime without handlers, connected as the global options say.
#[doc(hidden)]
pub async fn connect(g: &Globals) -> Result<Runtime, CliError> {
    let mut builder = Runtime::builder()
        .service("opsc")
        .prefix(&g.prefix)
        .redis(&g.redis)
        .connect_timeout(Duration::from_secs(5))
        .no_handlers();
    if let Some(ca) = &g.tls_ca {
        builder = builder.tls_ca_file(ca);
    }
    if let (Some(cert), Some(key)) = (&g.tls_cert, &g.tls_key) {
        builder = builder.tls_client_cert_files(cert, key);
    }
    if let Some(file) = &g.password_file {
        builder = builder.redis_password_file(file);
    }
    Ok(builder.build().await?)
}

async fn run(cli: args::Cli) -> Result<(), CliError> {
    // Computed from the arguments alone: no connection.
    if let args::Command::Acl(a) = &cli.command {
        return acl::print(
            &commands::Out {
                json: cli.globals.json,
            },
            &cli.globals.prefix,
            a,
        );
    }
    // Computed from the files alone: no connection.
    if let args::Command::Schema {
        command: Some(args::SchemaCommand::Check { lock, current }),
        ..
    } = &cli.command
    {
        let out = commands::Out {
            json: cli.globals.json,
        };
        return contracts::check(&out, lock, current);
    }
    let rt = connect(&cli.globals).await?;
    let out = commands::Out {
        json: cli.globals.json,
    };
    match cli.command {
        args::Command::Acl(_) => Ok(()), // answered above, without a connection
        args::Command::Streams => commands::streams(&rt, &out).await,
        args::Command::Tail {
            stream,
            from_start,
            count,
        } => commands::tail(&rt, &out, &stream, from_start, count).await,
        args::Command::Schema {
            command,
            stream,
            scan,
        } => match command {
            None => commands::schema(&rt, &out, stream, scan).await,
            Some(args::SchemaCommand::Registry) => contracts::registry(&rt, &out).await,
            Some(args::SchemaCommand::Lock { service }) => {
                contracts::lock(&rt, &out, &service).await
            }
            // answered above, without a connection
            Some(args::SchemaCommand::Check { .. }) => Ok(()),
        },
        args::Command::Asyncapi => contracts::asyncapi(&rt, &out, &cli.globals.prefix).await,
        args::Command::Groups { command, list } => match command {
            None => groups::list(&rt, &out, list.stream, list.stale_after, list.verbose).await,
            Some(args::GroupsCommand::Remove {
                stream,
                group,
                dry_run,
            }) => groups::remove(&rt, &out, &stream, &group, dry_run).await,
            Some(args::GroupsCommand::Reset {
                stream,
                group,
                to,
                dry_run,
            }) => {
                let (j, text) = groups::reset_group(&rt, &stream, &group, to, dry_run).await?;
                out.line(j, || text)
            }
        },
        args::Command::Delayed { command } => match command {
            args::DelayedCommand::List {
                stream,
                due_after,
                due_before,
                event_type,
                limit,
            } => {
                commands::delayed_list(
                    &rt,
                    &out,
                    &stream,
                    commands::DelayedQuery {
                        due_after,
                        due_before,
                        event_type,
                        limit,
                    },
                )
                .await
            }
            args::DelayedCommand::Show { stream, event_id } => {
                commands::delayed_show(&rt, &out, &stream, event_id).await
            }
            args::DelayedCommand::Cancel { stream, event_id } => {
                commands::delayed_cancel(&rt, &out, &stream, event_id).await
            }
        },
        args::Command::Dlq { command } => match command {
            args::DlqCommand::List(f) => commands::dlq_list(&rt, &out, &f).await,
            args::DlqCommand::Show { stream, id } => {
                commands::dlq_show(&rt, &out, &stream, id).await
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

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(argv: &[&str]) -> clap::Error {
        match parse(std::iter::once("opsc").chain(argv.iter().copied())) {
            Ok(cli) => panic!("{argv:?} accepted: {cli:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn since_must_come_before_until() {
        let e = usage(&["dlq", "purge", "--since", "1h", "--until", "2h"]);
        assert_eq!(e.kind(), ErrorKind::ArgumentConflict);
        assert_eq!(e.exit_code(), 2);
        assert!(parse(["opsc", "dlq", "purge", "--since", "2h", "--until", "1h"]).is_ok());
    }

    #[test]
    fn help_states_the_limits_the_parsers_enforce() {
        let help = command().render_long_help().to_string();
        assert!(help.contains("docs/WIRE.md § Names and limits"), "{help}");
        let sub = |path: &[&str]| {
            let mut c = command();
            for p in path {
                c = c
                    .find_subcommand(p)
                    .cloned()
                    .unwrap_or_else(|| panic!("{p}"));
            }
            c.render_help().to_string()
        };
        assert!(sub(&["dlq", "list"]).contains(&format!("1 to {})", values::MAX_LIMIT)));
        assert!(sub(&["tail"]).contains(&format!("1 to {})", values::MAX_COUNT)));
        assert!(sub(&["schema"]).contains(&format!("1 to {})", values::MAX_SCAN)));
    }

    #[test]
    fn acl_needs_a_stream_and_a_service() {
        let e = usage(&["acl", "--service", "svc"]);
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
        assert_eq!(e.exit_code(), 2);
        assert_eq!(usage(&["acl", "--stream", "a"]).exit_code(), 2);
        assert!(parse(["opsc", "acl", "--service", "svc", "--publish", "a"]).is_ok());
        assert!(parse(["opsc", "acl", "--service", "svc", "--stream", "a"]).is_ok());
    }

    #[test]
    fn the_definition_is_consistent() {
        command().debug_assert();
    }
}
