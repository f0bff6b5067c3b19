//! `opsc console`: the operator's web console, an axum server whose page (HTML, JS and CSS
//! embedded in the binary) is a client of a JSON API under `/api` that scripts can use too.
//!
//! Security (docs/OPERATIONS.md § Console): read-only unless [`ConsoleOptions::allow_writes`];
//! an address that is not loopback needs a token; every write is a `POST` with the per-process
//! CSRF token in a header and an `Origin` (if any) of the console itself; every write is logged
//! with who did what. Nothing the API returns holds the Redis URL or password.

mod api;
mod assets;
mod error;
mod history;
mod security;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use opsc_events_runtime::Runtime;
use tokio::net::TcpListener;

pub use error::ApiError;
pub use security::Token;

/// How long a group may go without an active consumer before the console flags it stale,
/// unless [`ConsoleOptions::stale_after`] says otherwise.
/// The same as `opsc groups --stale-after`.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(3600);

/// How the console serves.
#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    listen: SocketAddr,
    token: Option<Token>,
    allow_writes: bool,
    stale_after: Duration,
}

impl ConsoleOptions {
    /// Serve on `listen`, read-only, without a token (which only a loopback address allows).
    pub fn new(listen: SocketAddr) -> Self {
        ConsoleOptions {
            listen,
            token: None,
            allow_writes: false,
            stale_after: DEFAULT_STALE_AFTER,
        }
    }

    /// Require this token (`Authorization: Bearer <token>`) on every API request.
    pub fn token(mut self, token: Token) -> Self {
        self.token = Some(token);
        self
    }

    /// Allow replaying and purging dead letters (refused, and hidden in the page, otherwise).
    pub fn allow_writes(mut self, allow: bool) -> Self {
        self.allow_writes = allow;
        self
    }

    /// Flag a group stale when no consumer of it was active for this long.
    pub fn stale_after(mut self, after: Duration) -> Self {
        self.stale_after = after;
        self
    }
}

/// Why the console could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsoleError {
    /// A token is required for an address that is not loopback.
    #[error(
        "`{addr}` is not a loopback address: give a token with `--token` or OPSC_CONSOLE_TOKEN"
    )]
    TokenRequired {
        /// The address.
        addr: SocketAddr,
    },
    /// The address could not be bound.
    #[error("cannot listen on `{addr}`: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server failed while serving.
    #[error("the console server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// What every request handler shares.
#[derive(Debug)]
struct AppState {
    rt: Runtime,
    writes: bool,
    token: Option<Token>,
    /// The per-process CSRF token that every `POST` carries in `x-opsc-csrf`.
    csrf: Token,
    stale_after: Duration,
    /// Whether the console was bound to a loopback address (then `Host` must name loopback
    /// too, against DNS rebinding).
    loopback: bool,
    history: Mutex<history::History>,
}

/// A bound console: [`Console::local_addr`] tells the port when `:0` was asked for.
#[derive(Debug)]
pub struct Console {
    listener: TcpListener,
    router: Router,
    addr: SocketAddr,
}

impl Console {
    /// Checks the options and binds the address.
    ///
    /// # Errors
    ///
    /// [`ConsoleError::TokenRequired`] for an address that is not loopback without a token,
    /// [`ConsoleError::Bind`] when the address cannot be bound.
    pub async fn bind(runtime: Runtime, options: ConsoleOptions) -> Result<Console, ConsoleError> {
        let loopback = options.listen.ip().is_loopback();
        if !loopback && options.token.is_none() {
            return Err(ConsoleError::TokenRequired {
                addr: options.listen,
            });
        }
        let listener =
            TcpListener::bind(options.listen)
                .await
                .map_err(|source| ConsoleError::Bind {
                    addr: options.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| ConsoleError::Bind {
            addr: options.listen,
            source,
        })?;
        Ok(Console {
            listener,
            router: router(runtime, options, loopback),
            addr,
        })
    }

    /// The address served (with the port chosen by the system for `:0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` completes, then lets requests in progress finish.
    ///
    /// # Errors
    ///
    /// [`ConsoleError::Serve`] when accepting connections fails.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ConsoleError> {
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ConsoleError::Serve)
    }
}

/// The console's routes: the page and its assets, and the JSON API.
fn router(rt: Runtime, options: ConsoleOptions, loopback: bool) -> Router {
    let state = Arc::new(AppState {
        rt,
        writes: options.allow_writes,
        token: options.token,
        csrf: Token::random(),
        stale_after: options.stale_after,
        loopback,
        history: Mutex::new(history::History::default()),
    });
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/app.js", get(assets::script))
        .route("/assets/style.css", get(assets::style))
        .route("/api/session", get(api::session))
        .route("/api/overview", get(api::overview))
        .route("/api/streams", get(api::stream_names))
        .route("/api/streams/{stream}/entries", get(api::entries))
        .route("/api/correlation/{id}", get(api::correlation))
        .route("/api/dead-letters", get(api::letters))
        .route("/api/dead-letters/{stream}/{id}", get(api::letter))
        .route("/api/dead-letters/replay", post(api::replay))
        .route("/api/dead-letters/purge", post(api::purge))
        .route("/api/groups", get(api::groups))
        .route("/api/groups/remove", post(api::remove_group_route))
        .route("/api/groups/reset", post(api::reset_group_route))
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            security::guard,
        ))
        .with_state(state)
}

/// `opsc console`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ConsoleArgs {
    /// The address to serve on, e.g. `127.0.0.1:8080`; an address that is not loopback needs
    /// `--token`.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR", value_parser = listen)]
    pub listen: SocketAddr,
    /// The token every API request must carry (`Authorization: Bearer <token>`): 16 to 256
    /// visible ASCII characters. Prefer the environment variable: a command line is visible to
    /// every user of the machine.
    #[arg(long, env = "OPSC_CONSOLE_TOKEN", hide_env_values = true, value_parser = token)]
    pub token: Option<Token>,
    /// Allow replaying and purging dead letters (read-only otherwise).
    #[arg(long)]
    pub allow_writes: bool,
    /// Flag a group stale after this long without consumer activity: a whole number and a
    /// unit `ms`, `s`, `m`, `h` or `d`, e.g. `30m` (1ms to 36500d), as `opsc groups`.
    #[arg(long, default_value = "1h", value_parser = opsc_events_runtime::cli::parse_duration)]
    pub stale_after: Duration,
}

/// Where argument errors send the reader.
const SEE: &str = "see docs/OPERATIONS.md § Console";

fn listen(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>()
        .map_err(|_| format!("`{s}` is not an address with a port, e.g. `127.0.0.1:8080` ({SEE})"))
}

fn token(s: &str) -> Result<Token, String> {
    Token::new(s).ok_or_else(|| format!("a token is 16 to 256 visible ASCII characters ({SEE})"))
}

/// `opsc console`: serve until Ctrl-C (or SIGTERM), logging every write to stderr.
pub(crate) async fn run_cli(rt: Runtime, args: ConsoleArgs) -> Result<(), ConsoleError> {
    // The audit log of writes goes to stderr (RUST_LOG overrides the level).
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colours only for a terminal, not in a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    let mut options = ConsoleOptions::new(args.listen)
        .allow_writes(args.allow_writes)
        .stale_after(args.stale_after);
    if let Some(t) = args.token {
        options = options.token(t);
    }
    let writes = options.allow_writes;
    let console = Console::bind(rt, options).await?;
    // Tests and scripts read the address (the port of `:0`) from this line.
    println!(
        "opsc console listening on http://{} ({})",
        console.local_addr(),
        if writes {
            "writes allowed"
        } else {
            "read-only"
        }
    );
    console.serve(shutdown_signal()).await
}

/// Ctrl-C or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_visible_ascii() {
        assert!(token("0123456789abcdef").is_ok());
        assert!(token("short").is_err());
        assert!(token("0123456789abcdef with space").is_err());
        assert!(token(&"x".repeat(257)).is_err());
    }
}
