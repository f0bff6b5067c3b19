//! The runtime and its builder.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::consumer::{self, ConsumerSettings, HandlerPlan};
use crate::dead_letter::{DEFAULT_MAX_REPLAYS, DeadLetters};
use crate::error::{ConfigError, ConfigProblem, Result};
use crate::handler::{ContextParts, HandlerInfo, StateMap};
use crate::info::StreamInfo;
use crate::keys::{DEFAULT_PREFIX, Keys, is_valid_name};
use crate::publisher::Publisher;
use crate::registry::{self, Filter, Selected};
use crate::transport::memory::MemoryBroker;
use crate::transport::redis::{RedisSettings, RedisTransport};
use crate::transport::{Broker, Transport, with_broker};
use crate::trim::{self, StreamLimits, TrimReport};

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
pub struct Runtime {
    publisher: Publisher,
    keys: Keys,
    service: String,
    consumer_name: Arc<str>,
    transport: Transport,
    selected: Vec<Selected>,
    state: Arc<StateMap>,
    settings: ConsumerSettings,
    trim: TrimSettings,
    max_replays: u32,
}

#[derive(Debug, Clone)]
struct TrimSettings {
    interval: Duration,
    /// Every stream this runtime trims: its handlers' streams and those given limits.
    streams: BTreeMap<String, StreamLimits>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("service", &self.service)
            .field("consumer", &self.consumer_name)
            .field("handlers", &self.selected.len())
            .finish_non_exhaustive()
    }
}

/// Configures a [`Runtime`]; see [`Runtime::builder`].
pub struct RuntimeBuilder {
    service: Option<String>,
    prefix: String,
    redis_url: Option<String>,
    memory: Option<MemoryBroker>,
    connect_timeout: Duration,
    response_timeout: Duration,
    no_handlers: bool,
    only: Option<Filter>,
    state: StateMap,
    consumer_name: Option<String>,
    settings: ConsumerSettings,
    trim_interval: Duration,
    limits: BTreeMap<String, StreamLimits>,
    max_replays: u32,
}

impl std::fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeBuilder")
            .field("service", &self.service)
            .field("prefix", &self.prefix)
            .field("no_handlers", &self.no_handlers)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A builder with the defaults: prefix `opsconductor`, connect and response timeouts 5 s,
    /// shutdown timeout 30 s.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder {
            service: None,
            prefix: DEFAULT_PREFIX.to_owned(),
            redis_url: None,
            memory: None,
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            no_handlers: false,
            only: None,
            state: StateMap::default(),
            consumer_name: None,
            settings: ConsumerSettings {
                read_block: Duration::from_secs(1),
                max_batch: 256,
                shutdown_timeout: Duration::from_secs(30),
                consumer_idle_timeout: Duration::from_secs(3600),
                observer: None,
            },
            trim_interval: Duration::from_secs(30),
            limits: BTreeMap::new(),
            max_replays: DEFAULT_MAX_REPLAYS,
        }
    }

    /// The dead letters of every stream under the runtime's prefix: list, get, replay, purge.
    pub fn dead_letters(&self) -> DeadLetters {
        DeadLetters::new(self.transport.clone(), self.keys.clone(), self.max_replays)
    }

    /// The state of `stream`: length, dead letters, and per group what is pending, scheduled
    /// for retry and not yet delivered.
    pub async fn stream_info(&self, stream: &str) -> Result<StreamInfo> {
        let keys = self.keys.stream(stream);
        with_broker!(&self.transport, b => b.stream_info(&keys).await)
    }

    /// The same runtime (transport, keys, state), running no handler: for inspection while
    /// the original runs.
    pub(crate) fn without_handlers(&self) -> Runtime {
        Runtime {
            publisher: self.publisher.clone(),
            keys: self.keys.clone(),
            service: self.service.clone(),
            consumer_name: self.consumer_name.clone(),
            transport: self.transport.clone(),
            selected: Vec::new(),
            state: self.state.clone(),
            settings: self.settings.clone(),
            trim: self.trim.clone(),
            max_replays: self.max_replays,
        }
    }

    /// The streams of the handlers this runtime runs.
    pub fn handler_streams(&self) -> Vec<&'static str> {
        let mut streams: Vec<&'static str> = self.selected.iter().map(|s| s.reg.stream).collect();
        streams.sort_unstable();
        streams.dedup();
        streams
    }

    /// Which transport the runtime uses: `"redis"` or `"memory"`.
    pub fn transport_name(&self) -> &'static str {
        match self.transport {
            Transport::Redis(_) => "redis",
            Transport::Memory(_) => "memory",
        }
    }

    /// Trims the runtime's streams now (its handlers' streams and those given limits), as the
    /// background task does every `trim_interval`.
    pub async fn trim_now(&self) -> Result<Vec<TrimReport>> {
        trim::trim_all(&self.transport, &self.keys, &self.trim.streams).await
    }

    /// A publisher sharing the runtime's connection.
    pub fn publisher(&self) -> Publisher {
        self.publisher.clone()
    }

    /// The service name.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// This process's consumer name in every group.
    pub fn consumer_name(&self) -> &str {
        &self.consumer_name
    }

    /// The key names in use.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The handlers this runtime runs, as `(full path, group)`.
    pub fn handlers(&self) -> Vec<(String, String)> {
        self.selected
            .iter()
            .map(|s| (s.reg.path(), s.group.to_string()))
            .collect()
    }

    /// Runs the handlers until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn run(self) -> Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Runs the handlers until `shutdown` completes, then shuts down gracefully: reading stops,
    /// in-flight handlers get up to the shutdown timeout to finish and be acknowledged, and
    /// whatever did not finish stays pending for another consumer.
    pub async fn run_until<F>(self, shutdown: F) -> Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let stop = CancellationToken::new();
        let mut tasks = Vec::with_capacity(self.selected.len());
        for s in &self.selected {
            let plan = HandlerPlan {
                reg: s.reg,
                group: s.group.clone(),
                key: self.keys.events(s.reg.stream).into(),
                keys: self.keys.stream(s.reg.stream),
                consumer: self.consumer_name.clone(),
            };
            let parts = ContextParts {
                stream: s.reg.stream,
                group: s.group.clone(),
                publisher: self.publisher.clone(),
                state: self.state.clone(),
            };
            let settings = self.settings.clone();
            let stop = stop.clone();
            tasks.push(with_broker!(&self.transport, r => {
                tokio::spawn(consumer::run(r.clone(), plan, parts, settings, stop))
            }));
        }
        if !self.trim.streams.is_empty() {
            let (transport, keys, trim, stop) = (
                self.transport.clone(),
                self.keys.clone(),
                self.trim.clone(),
                stop.clone(),
            );
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = tokio::time::sleep(trim.interval) => {}
                        () = stop.cancelled() => return,
                    }
                    if let Err(e) = trim::trim_all(&transport, &keys, &trim.streams).await {
                        tracing::warn!(error = %e, "trimming failed; trying again next round");
                    }
                }
            }));
        }
        tracing::info!(service = %self.service, consumer = %self.consumer_name, handlers = self.selected.len(), "runtime running");
        shutdown.await;
        tracing::info!(service = %self.service, "shutting down");
        stop.cancel();
        for t in tasks {
            if let Err(e) = t.await {
                tracing::error!(error = %e, "a consumer task failed");
            }
        }
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

    /// Uses an embedded in-process broker of its own: Redis Streams semantics without Redis
    /// (for trying the framework, tests and single-process tools).
    pub fn memory(self) -> Self {
        self.memory_with(MemoryBroker::new())
    }

    /// Uses `broker`, which other runtimes of this process may share.
    pub fn memory_with(mut self, broker: MemoryBroker) -> Self {
        self.memory = Some(broker);
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

    /// Adds shared state that handlers extract with `State<T>`; one value per type.
    pub fn state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.state.insert(value);
        self
    }

    /// Runs only the registered handlers for which `filter` returns true (by name, module path,
    /// stream, group or event type). Startup checks apply to the selected handlers only.
    pub fn only<F>(mut self, filter: F) -> Self
    where
        F: Fn(&HandlerInfo<'_>) -> bool + Send + Sync + 'static,
    {
        self.only = Some(Arc::new(filter));
        self
    }

    /// Builds a publish-only runtime: no handler is run and none is required.
    pub fn no_handlers(mut self) -> Self {
        self.no_handlers = true;
        self
    }

    /// Sets this process's consumer name (default `<service>-<host>-<pid>-<random>`). A stable
    /// name lets a restarted instance resume its own pending entries at once; two live
    /// processes must never share one.
    pub fn consumer_name(mut self, name: impl Into<String>) -> Self {
        self.consumer_name = Some(name.into());
        self
    }

    /// How long shutdown waits for in-flight handlers (default 30 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.settings.shutdown_timeout = timeout;
        self
    }

    /// Consumers idle this long that own no pending entry are removed from their groups
    /// (default 1 h).
    pub fn consumer_idle_timeout(mut self, timeout: Duration) -> Self {
        self.settings.consumer_idle_timeout = timeout;
        self
    }

    /// Calls `f` with what becomes of every delivery (handled, skipped, retrying, gave up),
    /// just before it is settled in the broker. `f` runs on the runtime's tasks: keep it quick.
    pub fn observer<F>(mut self, f: F) -> Self
    where
        F: Fn(&crate::observe::Observation) + Send + Sync + 'static,
    {
        self.settings.observer = Some(crate::observe::Observer(Arc::new(f)));
        self
    }

    /// How often streams are trimmed (default 30 s).
    pub fn trim_interval(mut self, interval: Duration) -> Self {
        self.trim_interval = interval;
        self
    }

    /// Hard caps for `stream` (by default streams are only trimmed losslessly). The runtime
    /// trims this stream even if it runs no handler of it.
    pub fn stream_limits(mut self, stream: impl Into<String>, limits: StreamLimits) -> Self {
        self.limits.insert(stream.into(), limits);
        self
    }

    /// How often one dead letter may be replayed before replays refuse it (default 5).
    pub fn max_replays(mut self, n: u32) -> Self {
        self.max_replays = n;
        self
    }

    /// Connects, selects and checks the handlers, and creates their consumer groups, reporting
    /// every problem at once.
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
        if let Some(name) = &self.consumer_name
            && !is_valid_name(name)
        {
            problems.push(ConfigProblem::InvalidName {
                what: "consumer name",
                value: name.clone(),
            });
        }
        let service = self.service.clone().unwrap_or_default();
        let selected = if self.no_handlers {
            Vec::new()
        } else {
            registry::select(&service, self.only.as_ref(), &self.state, &mut problems)
        };
        let transport = match (&self.redis_url, &self.memory) {
            (None, None) => {
                problems.push(ConfigProblem::MissingTransport);
                None
            }
            (Some(_), Some(_)) => {
                problems.push(ConfigProblem::TwoTransports);
                None
            }
            (None, Some(broker)) => Some(Transport::Memory(broker.clone())),
            (Some(url), None) => {
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
        let keys = Keys::new(&self.prefix);
        if let (Some(transport), true) = (&transport, problems.is_empty()) {
            for s in &selected {
                let key = keys.events(s.reg.stream);
                let created = with_broker!(transport, r => r.ensure_group(&key, &s.group, s.reg.config.start).await);
                if let Err(e) = created {
                    problems.push(ConfigProblem::GroupCreation {
                        key,
                        group: s.group.to_string(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        let (Some(transport), true) = (transport, problems.is_empty()) else {
            return Err(ConfigError { problems }.into());
        };
        let consumer_name: Arc<str> = match self.consumer_name {
            Some(name) => name.into(),
            None => format!(
                "{service}-{}-{}-{:08x}",
                crate::util::hostname(),
                std::process::id(),
                crate::util::random_u64() as u32
            )
            .into(),
        };
        if selected.is_empty() {
            tracing::info!(service = %service, prefix = %self.prefix, "runtime built (publish only)");
        } else {
            tracing::info!(service = %service, consumer = %consumer_name, "{}", registry::table(&selected));
        }
        let mut streams = self.limits;
        for s in &selected {
            streams.entry(s.reg.stream.to_owned()).or_default();
        }
        Ok(Runtime {
            trim: TrimSettings {
                interval: self.trim_interval,
                streams,
            },
            max_replays: self.max_replays,
            publisher: Publisher::new(transport.clone(), keys.clone(), service.clone()),
            keys,
            service,
            consumer_name,
            transport,
            selected,
            state: Arc::new(self.state),
            settings: self.settings,
        })
    }
}
