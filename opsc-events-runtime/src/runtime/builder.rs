//! The builder: configuration, validation of every problem at once, connection and group
//! creation.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::{Runtime, TrimSettings};
use crate::consumer::ConsumerSettings;
use crate::dead_letter::DEFAULT_MAX_REPLAYS;
use crate::envelope::WireFormat;
use crate::error::{ConfigError, ConfigProblem, Result};
use crate::handler::{HandlerInfo, StateMap};
use crate::health::ConsumerStatus;
use crate::keys::{
    CONSUMER_NAME, DEFAULT_PREFIX, GROUP_NAME, KEY_PREFIX, Keys, NameRule, SERVICE_NAME,
    STREAM_NAME,
};
use crate::priority::{Lanes, Priority};
use crate::publisher::Publisher;
use crate::registry::{self, Filter};
use crate::transport::memory::MemoryBroker;
use crate::transport::redis::{RedisSettings, RedisTransport};
use crate::transport::{Broker, Transport, with_broker};
use crate::trim::StreamLimits;

/// How often a running runtime looks for new priority lanes, by default.
pub(crate) const DEFAULT_LANE_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// Configures a [`Runtime`]; see [`Runtime::builder`].
pub struct RuntimeBuilder {
    service: Option<String>,
    prefix: String,
    redis_url: Option<String>,
    sentinel: Option<crate::transport::redis::SentinelSettings>,
    memory: Option<MemoryBroker>,
    connect_timeout: Duration,
    response_timeout: Duration,
    no_handlers: bool,
    only: Option<Filter>,
    state: StateMap,
    consumer_name: Option<String>,
    settings: ConsumerSettings,
    trim_interval: Duration,
    lane_check_interval: Duration,
    limits: BTreeMap<String, StreamLimits>,
    max_replays: u32,
    wire_format: WireFormat,
    stale_group_after: Duration,
    metrics_stream: Option<Duration>,
    tls: TlsFiles,
    password: Option<SecretSource>,
    replicas: Option<(u32, Duration)>,
    background: Vec<super::BackgroundTask>,
    /// Event types declared with `publishes`: `(name, version, fingerprint)`.
    publishes: Vec<(&'static str, u16, u64)>,
}

/// Certificate files for a `rediss://` connection.
#[derive(Debug, Clone, Default)]
struct TlsFiles {
    ca: Option<std::path::PathBuf>,
    client: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

/// Where the Redis password comes from when it is not in the URL. Holds the source only: the
/// secret is read by `build()` and never kept in the builder.
#[derive(Debug, Clone)]
enum SecretSource {
    Env(String),
    File(std::path::PathBuf),
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

impl RuntimeBuilder {
    /// The highest [`max_replays`](Self::max_replays) allowed.
    pub const MAX_REPLAYS: u32 = 1000;

    /// The defaults (see [`Runtime::builder`]).
    pub(super) fn new() -> Self {
        RuntimeBuilder {
            service: None,
            prefix: DEFAULT_PREFIX.to_owned(),
            redis_url: None,
            sentinel: None,
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
                stall_after: crate::health::DEFAULT_STALL_AFTER,
                isolation: Default::default(),
            },
            trim_interval: Duration::from_secs(30),
            lane_check_interval: DEFAULT_LANE_CHECK_INTERVAL,
            limits: BTreeMap::new(),
            max_replays: DEFAULT_MAX_REPLAYS,
            wire_format: WireFormat::V2,
            tls: TlsFiles::default(),
            password: None,
            replicas: None,
            stale_group_after: crate::health::DEFAULT_STALE_GROUP_AFTER,
            metrics_stream: None,
            background: Vec::new(),
            publishes: Vec::new(),
        }
    }

    /// Declares that this service publishes `E`, for the schema registry.
    ///
    /// Not needed in general: every event type linked into the binary that no linked handler
    /// reads is recorded as published. Declare the types a service both publishes and handles
    /// (or upcasts from), which would otherwise be recorded as read only.
    pub fn publishes<E: crate::Event>(mut self) -> Self {
        self.publishes.push((E::NAME, E::VERSION, E::FINGERPRINT));
        self
    }

    /// Runs `task` beside the consumers while the runtime runs (the outbox relay of
    /// `opsc-events-postgres` is added this way, through its `RuntimeBuilder::outbox`).
    #[doc(hidden)]
    pub fn background_task(mut self, task: super::BackgroundTask) -> Self {
        self.background.push(task);
        self
    }

    /// Names the service: it prefixes consumer group and consumer names and is written to every
    /// published event. Required.
    pub fn service(mut self, name: impl Into<String>) -> Self {
        self.service = Some(name.into());
        self
    }

    /// Which wire format this runtime's publisher writes (default [`WireFormat::V2`]). Readers
    /// accept both; write [`WireFormat::V1`] only during a rolling upgrade, until every reader
    /// of the fleet runs a version that reads v2.
    pub fn wire_format(mut self, format: WireFormat) -> Self {
        self.wire_format = format;
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

    /// Finds the Redis master through Redis Sentinel: `master` is the name the sentinels monitor
    /// (`sentinel monitor <master> …`), `sentinels` their URLs
    /// (`redis://[:password@]host:26379`, or `rediss://` for TLS). `build()` asks the first
    /// sentinel that answers for the master's address; after a failover (connection errors, or
    /// `READONLY` from a demoted master) every connection — publishes, settlements, blocking
    /// readers — moves to the master the sentinels name then, without a restart.
    ///
    /// The sentinels' password goes in their URLs; the data nodes' password comes from
    /// [`redis_password_env`](Self::redis_password_env) or
    /// [`redis_password_file`](Self::redis_password_file). With `rediss://` sentinels the data
    /// nodes are reached over TLS too, with the same [`tls_ca_file`](Self::tls_ca_file) and
    /// [`tls_client_cert_files`](Self::tls_client_cert_files). Asynchronous replication can lose
    /// the last writes of a master that fails: see
    /// [`wait_for_replicas`](Self::wait_for_replicas).
    ///
    /// ```no_run
    /// # async fn f() -> opsc_events_runtime::Result<()> {
    /// let rt = opsc_events_runtime::Runtime::builder()
    ///     .service("billing")
    ///     .redis_sentinel("events", ["redis://10.0.0.1:26379", "redis://10.0.0.2:26379"])
    ///     .redis_password_env("REDIS_PASSWORD")
    ///     .build()
    ///     .await?;
    /// # let _ = rt; Ok(()) }
    /// ```
    pub fn redis_sentinel<I, S>(mut self, master: impl Into<String>, sentinels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.sentinel = Some(crate::transport::redis::SentinelSettings {
            master: master.into(),
            sentinels: sentinels.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// Trusts the CA certificate(s) in the PEM file `path` for a `rediss://` connection (instead
    /// of the system's roots). The server's name is checked against its certificate either way.
    pub fn tls_ca_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.tls.ca = Some(path.into());
        self
    }

    /// Presents the client certificate and key in the PEM files `cert` and `key` on a
    /// `rediss://` connection (mutual TLS, for servers with `tls-auth-clients yes`).
    pub fn tls_client_cert_files(
        mut self,
        cert: impl Into<std::path::PathBuf>,
        key: impl Into<std::path::PathBuf>,
    ) -> Self {
        self.tls.client = Some((cert.into(), key.into()));
        self
    }

    /// Every publish (and `publish_all` batch) waits until `replicas` replicas acknowledged it
    /// (`WAIT`), up to `timeout`; if fewer did, the call fails with
    /// [`Error::NotReplicated`](crate::Error::NotReplicated) naming the entries written (they
    /// are in the stream, but a failover now could lose them). Without it a publish is
    /// acknowledged by the primary alone, and Redis' asynchronous replication can lose the last
    /// writes of a primary that fails. Costs a round trip of replication per publish; no effect
    /// on the embedded broker.
    pub fn wait_for_replicas(mut self, replicas: u32, timeout: Duration) -> Self {
        self.replicas = Some((replicas, timeout));
        self
    }

    /// Takes the Redis password from the environment variable `var` at `build()` (so it need
    /// not be in the URL; the user, if any, stays in the URL: `redis://app@host`). The password
    /// appears in no `Debug`, error or log.
    pub fn redis_password_env(mut self, var: impl Into<String>) -> Self {
        self.password = Some(SecretSource::Env(var.into()));
        self
    }

    /// Takes the Redis password from the file at `path` at `build()` (its content, without a
    /// trailing newline): for secrets mounted as files.
    pub fn redis_password_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.password = Some(SecretSource::File(path.into()));
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

    /// How long a consumer may go without progress — no read returned, no handler call
    /// finished, no settlement finished, or one settlement in progress — before
    /// [`Health`](crate::health::Health) reports it [`Stalled`](crate::health::ConsumerState::Stalled)
    /// (default [`DEFAULT_STALL_AFTER`](crate::health::DEFAULT_STALL_AFTER), 60 s; a handler
    /// whose timeout is longer than half of it gets twice its timeout). An idle consumer is not
    /// stalled: its blocking reads return every second.
    pub fn stall_after(mut self, after: Duration) -> Self {
        self.settings.stall_after = after;
        self
    }

    /// How often streams are trimmed (default 30 s; zero is refused by `build()`).
    pub fn trim_interval(mut self, interval: Duration) -> Self {
        self.trim_interval = interval;
        self
    }

    /// How often a running runtime looks for priority lanes that appeared on its handlers'
    /// streams (one `SMEMBERS` per stream; default 2 s; zero is refused by `build()`). A
    /// publisher records a lane before its first entry, and the lanes found at `build()` are
    /// read from the start; a lane that appears later is read within this interval (its
    /// entries wait at most that long the first time, and are never missed).
    pub fn lane_check_interval(mut self, interval: Duration) -> Self {
        self.lane_check_interval = interval;
        self
    }

    /// Hard caps for `stream` (by default streams are only trimmed losslessly). The runtime
    /// trims this stream even if it runs no handler of it.
    pub fn stream_limits(mut self, stream: impl Into<String>, limits: StreamLimits) -> Self {
        self.limits.insert(stream.into(), limits);
        self
    }

    /// How often one dead letter may be replayed before replays refuse it (default 5; from 1
    /// to [`MAX_REPLAYS`](Self::MAX_REPLAYS), checked by `build()`: zero would refuse every
    /// replay, and a guard above the limit guards against no loop).
    pub fn max_replays(mut self, n: u32) -> Self {
        self.max_replays = n;
        self
    }

    /// After how long without any consumer activity a group of another handler on one of the
    /// runtime's streams, with entries waiting for it, is reported in
    /// [`HealthReport::stale_groups`](crate::health::HealthReport::stale_groups)
    /// (default [`DEFAULT_STALE_GROUP_AFTER`](crate::health::DEFAULT_STALE_GROUP_AFTER), 24 h;
    /// zero is refused by `build()`). A stale group — left behind by a renamed or removed
    /// handler — holds back lossless trimming forever.
    pub fn stale_group_after(mut self, after: Duration) -> Self {
        self.stale_group_after = after;
        self
    }

    /// Publishes a [`RuntimeMetrics`](crate::metrics_stream::RuntimeMetrics) event every
    /// `interval` while the runtime runs — per handler: handled, failed, retried,
    /// dead-lettered, call time quantiles, lag and pending — to the stream `metrics`
    /// (`<prefix>:{metrics}:events`), trimmed to the newest
    /// [`METRICS_STREAM_LEN`](crate::metrics_stream::METRICS_STREAM_LEN) entries (unless
    /// `stream_limits("metrics", ..)` says otherwise). Off by default; at least 100 ms.
    pub fn metrics_stream(mut self, interval: Duration) -> Self {
        self.metrics_stream = Some(interval);
        self
    }

    /// Checks every setting that needs no handler and no connection (`docs/WIRE.md` § Names
    /// and limits), appending each problem to `problems`.
    fn check_settings(&self, problems: &mut Vec<ConfigProblem>) {
        if self.service.is_none() {
            problems.push(ConfigProblem::MissingService);
        }
        let mut name = |rule: &NameRule, what: &'static str, value: &str| {
            if let Err(e) = rule.check(value) {
                problems.push(ConfigProblem::invalid_name(what, e));
            }
        };
        if let Some(service) = &self.service {
            name(&SERVICE_NAME, "service name", service);
        }
        name(&KEY_PREFIX, "key prefix", &self.prefix);
        if let Some(consumer) = &self.consumer_name {
            name(&CONSUMER_NAME, "consumer name", consumer);
        }
        for stream in self.limits.keys() {
            name(&STREAM_NAME, "stream name of `stream_limits`", stream);
        }
        for (setting, value) in [
            ("trim_interval", self.trim_interval),
            ("lane_check_interval", self.lane_check_interval),
            ("stall_after", self.settings.stall_after),
            ("connect_timeout", self.connect_timeout),
            ("response_timeout", self.response_timeout),
            ("shutdown_timeout", self.settings.shutdown_timeout),
            ("consumer_idle_timeout", self.settings.consumer_idle_timeout),
            ("stale_group_after", self.stale_group_after),
        ] {
            if value.is_zero() {
                problems.push(ConfigProblem::ZeroDuration { setting });
            }
        }
        if let Some(every) = self.metrics_stream
            && every < Duration::from_millis(100)
        {
            problems.push(ConfigProblem::OutOfRange {
                setting: "metrics_stream (ms)",
                value: u64::try_from(every.as_millis()).unwrap_or(u64::MAX),
                min: 100,
                max: u64::MAX,
            });
        }
        if let Some((replicas, timeout)) = self.replicas {
            if replicas == 0 || replicas > 1000 {
                problems.push(ConfigProblem::OutOfRange {
                    setting: "wait_for_replicas",
                    value: u64::from(replicas),
                    min: 1,
                    max: 1000,
                });
            }
            if timeout.is_zero() {
                // `WAIT n 0` would wait forever.
                problems.push(ConfigProblem::ZeroDuration {
                    setting: "wait_for_replicas",
                });
            }
        }
        if !(1..=Self::MAX_REPLAYS).contains(&self.max_replays) {
            problems.push(ConfigProblem::OutOfRange {
                setting: "max_replays",
                value: u64::from(self.max_replays),
                min: 1,
                max: u64::from(Self::MAX_REPLAYS),
            });
        }
        for (stream, limits) in &self.limits {
            let zero_len = limits.max_len == Some(0);
            let zero_age = limits.max_age.is_some_and(|a| a.is_zero());
            for (setting, zero) in [("max_len", zero_len), ("max_age", zero_age)] {
                if zero {
                    problems.push(ConfigProblem::ZeroStreamLimit {
                        stream: crate::keys::shorten(stream),
                        setting,
                    });
                }
            }
        }
    }

    /// Connects, selects and checks the handlers, and creates their consumer groups, reporting
    /// every problem at once.
    pub async fn build(self) -> Result<Runtime> {
        let mut problems = Vec::new();
        self.check_settings(&mut problems);
        let service = self.service.clone().unwrap_or_default();
        let selected = if self.no_handlers {
            Vec::new()
        } else {
            registry::select(&service, self.only.as_ref(), &self.state, &mut problems)
        };
        // A default group `<service>.<fn name>` of an invalid service was reported with the
        // service; every other group must follow the group rule.
        let service_ok = SERVICE_NAME.is_valid(&service);
        for s in &selected {
            let default_group = s.reg.group.is_none();
            if default_group && !service_ok {
                continue;
            }
            if let Err(e) = GROUP_NAME.check(&s.group) {
                problems.push(ConfigProblem::InvalidGroup {
                    handler: s.reg.path(),
                    group: e.value,
                    problem: e.problem,
                    default_group,
                });
            }
        }
        let redis_url = match (&self.redis_url, &self.sentinel) {
            (Some(_), Some(_)) => {
                problems.push(ConfigProblem::TwoTransports);
                None
            }
            (Some(url), None) => Some(url.clone()),
            (None, Some(sentinel)) => {
                self.check_sentinel(sentinel, &mut problems);
                sentinel.sentinels.first().cloned()
            }
            (None, None) => None,
        };
        let transport = match (&redis_url, &self.memory) {
            (None, None) if self.sentinel.is_some() => None,
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
                // Connecting is tried whatever else is wrong (every problem is reported at once),
                // unless the connection settings themselves could not be read.
                let before = problems.len();
                let tls = self.tls_material(url, &mut problems);
                let password = self.password_value(&mut problems);
                if problems.len() == before {
                    let settings = RedisSettings {
                        url: url.clone(),
                        connect_timeout: self.connect_timeout,
                        response_timeout: self.response_timeout,
                        tls,
                        password,
                        sentinel: self.sentinel.clone(),
                    };
                    match RedisTransport::connect(&settings).await {
                        Ok(t) => Some(Transport::Redis(t)),
                        Err(p) => {
                            problems.push(p);
                            None
                        }
                    }
                } else {
                    None
                }
            }
        };
        let keys = Keys::new(&self.prefix);
        // The priority lanes of each handled stream (see `consumer::lanes`).
        let mut lanes = BTreeMap::<String, Lanes>::new();
        if let (Some(transport), true) = (&transport, problems.is_empty()) {
            for s in &selected {
                let stream = keys.stream(s.reg.stream);
                let in_use = match lanes.get(s.reg.stream) {
                    Some(l) => *l,
                    None => match with_broker!(transport, r => r.lanes(&stream).await) {
                        Ok(l) => *lanes.entry(s.reg.stream.to_owned()).or_insert(l),
                        Err(e) => {
                            problems.push(ConfigProblem::GroupCreation {
                                key: stream.lanes_marker(),
                                group: s.group.to_string(),
                                reason: e.to_string(),
                            });
                            continue;
                        }
                    },
                };
                // The stream's own key, then its lanes, each with the handler's start.
                for lane in std::iter::once(Priority::Normal).chain(in_use.extra()) {
                    let key = stream.lane(lane).events;
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
        let handlers: Vec<_> = selected
            .iter()
            .map(|s| (s.reg, s.group.to_string()))
            .collect();
        let schemas = crate::contracts::entries(
            &service,
            &handlers,
            &self.publishes,
            self.metrics_stream.is_some(),
            super::schemas::now_ms(),
        );
        let schema_mismatches = super::schemas::record(&transport, &keys, &service, &schemas).await;
        let mut streams = self.limits;
        for s in &selected {
            streams.entry(s.reg.stream.to_owned()).or_default();
        }
        if self.metrics_stream.is_some() {
            streams
                .entry(crate::metrics_stream::METRICS_STREAM.to_owned())
                .or_insert_with(|| {
                    StreamLimits::new().max_len(crate::metrics_stream::METRICS_STREAM_LEN)
                });
        }
        Ok(Runtime {
            trim: TrimSettings {
                interval: self.trim_interval,
                streams,
            },
            lanes,
            lane_check_interval: self.lane_check_interval,
            max_replays: self.max_replays,
            stale_group_after: self.stale_group_after,
            metrics_stream: self.metrics_stream,
            publisher: Publisher::new(
                transport.clone(),
                keys.clone(),
                service.clone(),
                self.wire_format,
                self.replicas,
            ),
            keys,
            service,
            consumer_name,
            transport,
            statuses: selected
                .iter()
                .map(|s| Arc::new(ConsumerStatus::new(s.reg.stream, s.group.clone())))
                .collect(),
            selected,
            state: Arc::new(self.state),
            settings: self.settings,
            background: self.background,
            schemas,
            schema_mismatches,
        })
    }
}

impl RuntimeBuilder {
    /// The sentinel settings make sense: a master name, at least one sentinel, one scheme.
    fn check_sentinel(
        &self,
        sentinel: &crate::transport::redis::SentinelSettings,
        problems: &mut Vec<ConfigProblem>,
    ) {
        let bad = |reason: String| ConfigProblem::Sentinel { reason };
        if sentinel.master.is_empty() {
            problems.push(bad("the master name is empty".to_owned()));
        }
        match sentinel.sentinels.first() {
            None => problems.push(bad("no sentinel URL was given".to_owned())),
            Some(first) => {
                let tls = first.starts_with("rediss://");
                if sentinel
                    .sentinels
                    .iter()
                    .any(|u| u.starts_with("rediss://") != tls)
                {
                    problems.push(bad(
                        "the sentinel URLs mix `redis://` and `rediss://`".to_owned()
                    ));
                }
            }
        }
    }

    /// The certificates to use for `url`, read from their files; problems are pushed.
    fn tls_material(
        &self,
        url: &str,
        problems: &mut Vec<ConfigProblem>,
    ) -> Option<crate::transport::redis::TlsMaterial> {
        let TlsFiles { ca, client } = &self.tls;
        if ca.is_none() && client.is_none() {
            return None;
        }
        if !url.starts_with("rediss://") {
            problems.push(ConfigProblem::Tls {
                reason: "TLS certificates were given but the URL is not `rediss://`".to_owned(),
            });
            return None;
        }
        let read = |what: &str, path: &std::path::Path, problems: &mut Vec<ConfigProblem>| {
            match std::fs::read(path) {
                Ok(bytes) => Some(bytes),
                Err(e) => {
                    problems.push(ConfigProblem::Tls {
                        reason: format!("cannot read the {what} `{}`: {e}", path.display()),
                    });
                    None
                }
            }
        };
        let ca = ca.as_deref().map(|p| read("CA file", p, problems));
        let client = client.as_ref().map(|(cert, key)| {
            (
                read("client certificate", cert, problems),
                read("client key", key, problems),
            )
        });
        Some(crate::transport::redis::TlsMaterial {
            ca: ca.flatten(),
            client: match client {
                Some((Some(cert), Some(key))) => Some((cert, key)),
                _ => None,
            },
        })
    }

    /// The password from its source, if one was given; problems are pushed (never the value).
    fn password_value(
        &self,
        problems: &mut Vec<ConfigProblem>,
    ) -> Option<crate::transport::redis::Secret> {
        let source = self.password.as_ref()?;
        let value = match source {
            SecretSource::Env(var) => std::env::var(var).map_err(|e| ConfigProblem::Secret {
                from: format!("environment variable `{var}`"),
                reason: e.to_string(),
            }),
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
                .map_err(|e| ConfigProblem::Secret {
                    from: format!("file `{}`", path.display()),
                    reason: e.to_string(),
                }),
        };
        match value {
            Ok(v) if !v.is_empty() => Some(crate::transport::redis::Secret(v)),
            Ok(_) => {
                problems.push(ConfigProblem::Secret {
                    from: match source {
                        SecretSource::Env(var) => format!("environment variable `{var}`"),
                        SecretSource::File(path) => format!("file `{}`", path.display()),
                    },
                    reason: "it is empty".to_owned(),
                });
                None
            }
            Err(p) => {
                problems.push(p);
                None
            }
        }
    }
}
