//! The runtime and its builder.

use std::future::Future;
use std::time::Duration;

use crate::error::{ConfigError, ConfigProblem, Result};
use crate::keys::{DEFAULT_PREFIX, Keys, is_valid_name};
use crate::publisher::Publisher;
use crate::transport::Transport;
use crate::transport::redis::{RedisSettings, RedisTransport};

/// The running framework: connections, the publisher and (with handlers) the consumer loops.
///
/// ```no_run
/// use opsc_events_runtime::Runtime;
///
/// # async fn demo() -> opsc_events_runtime::Result<()> {
/// let rt = Runtime::builder()
///     .service("inventory")
///     .redis("redis://127.0.0.1:6379")
///     .no_handlers()
///     .build()
///     .await?;
/// let publisher = rt.publisher();
/// # let _ = publisher;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Runtime {
    publisher: Publisher,
    keys: Keys,
    service: String,
}

/// Configures a [`Runtime`]; see [`Runtime::builder`].
#[derive(Debug, Clone)]
pub struct RuntimeBuilder {
    service: Option<String>,
    prefix: String,
    redis_url: Option<String>,
    connect_timeout: Duration,
    response_timeout: Duration,
    no_handlers: bool,
}

impl Runtime {
    /// A builder with the defaults: prefix `opsconductor`, connect timeout 5 s, response timeout
    /// 5 s.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder {
            service: None,
            prefix: DEFAULT_PREFIX.to_owned(),
            redis_url: None,
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            no_handlers: false,
        }
    }

    /// A publisher sharing the runtime's connection.
    pub fn publisher(&self) -> Publisher {
        self.publisher.clone()
    }

    /// The service name.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The key names in use.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Runs until SIGINT or SIGTERM.
    pub async fn run(self) -> Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Runs until `shutdown` completes.
    pub async fn run_until<F>(self, shutdown: F) -> Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        shutdown.await;
        tracing::info!(service = %self.service, "runtime stopped");
        Ok(())
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; stopping on SIGINT only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

impl RuntimeBuilder {
    /// Names the service: it prefixes consumer group and consumer names and is written to every
    /// published event. Required.
    pub fn service(mut self, name: impl Into<String>) -> Self {
        self.service = Some(name.into());
        self
    }

    /// Sets the key prefix (default `opsconductor`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Uses the Redis server at `url` (`redis://[user:password@]host[:port][/db]`).
    pub fn redis(mut self, url: impl Into<String>) -> Self {
        self.redis_url = Some(url.into());
        self
    }

    /// How long `build()` waits for Redis to answer (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a command waits for its reply before failing with a timeout (default 5 s).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Builds a publish-only runtime: no handler is run and none is required.
    pub fn no_handlers(mut self) -> Self {
        self.no_handlers = true;
        self
    }

    /// Connects and validates, reporting every problem at once.
    pub async fn build(self) -> Result<Runtime> {
        let mut problems = Vec::new();
        match &self.service {
            None => problems.push(ConfigProblem::MissingService),
            Some(s) if !is_valid_name(s) => problems.push(ConfigProblem::InvalidName {
                what: "service name",
                value: s.clone(),
            }),
            Some(_) => {}
        }
        if !is_valid_name(&self.prefix) {
            problems.push(ConfigProblem::InvalidName {
                what: "key prefix",
                value: self.prefix.clone(),
            });
        }
        if !self.no_handlers {
            // Handlers are not supported yet by this runtime: asking for them finds none.
            problems.push(ConfigProblem::NoHandlers);
        }
        let transport = match &self.redis_url {
            None => {
                problems.push(ConfigProblem::MissingTransport);
                None
            }
            Some(url) => {
                let settings = RedisSettings {
                    url: url.clone(),
                    connect_timeout: self.connect_timeout,
                    response_timeout: self.response_timeout,
                };
                match RedisTransport::connect(&settings).await {
                    Ok(t) => Some(Transport::Redis(t)),
                    Err(p) => {
                        problems.push(p);
                        None
                    }
                }
            }
        };
        let (Some(transport), Some(service), true) = (transport, self.service, problems.is_empty())
        else {
            return Err(ConfigError { problems }.into());
        };
        let keys = Keys::new(&self.prefix);
        tracing::info!(service = %service, prefix = %self.prefix, "runtime built (publish only)");
        Ok(Runtime {
            publisher: Publisher::new(transport, keys.clone(), service.clone()),
            keys,
            service,
        })
    }
}
