//! The runtime and its builder.

mod background;
mod builder;
mod schemas;

#[doc(hidden)]
pub use background::{BackgroundResult, BackgroundTask};
pub use builder::RuntimeBuilder;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use tokio_util::sync::CancellationToken;

use crate::consumer::{self, ConsumerSettings, HandlerPlan};
use crate::dead_letter::DeadLetters;
use crate::error::{Error, Result};
use crate::handler::{ContextParts, StateMap};
use crate::health::{ConsumerStatus, Health};
use crate::info::{Entry, StreamInfo};
use crate::keys::Keys;
use crate::message_id::MessageId;
use crate::publisher::Publisher;
use crate::registry::Selected;
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
    /// One per selected handler, in the same order (shared with [`Health`] handles).
    statuses: Arc<[Arc<ConsumerStatus>]>,
    state: Arc<StateMap>,
    settings: ConsumerSettings,
    trim: TrimSettings,
    /// The priority lanes of each handled stream found at `build()` (see `consumer::lanes`).
    lanes: BTreeMap<String, crate::priority::Lanes>,
    lane_check_interval: Duration,
    max_replays: u32,
    /// How long without consumer activity makes another group stale (see [`Health`]).
    stale_group_after: Duration,
    /// Publish a `RuntimeMetrics` event this often (see `metrics_stream`).
    metrics_stream: Option<Duration>,
    /// Tasks other crates added (the outbox relay), started by `run`.
    background: Vec<BackgroundTask>,
    /// What `build()` recorded in the schema registry.
    schemas: Vec<crate::contracts::RegistryEntry>,
    /// The mismatches found in the registry at `build()`.
    schema_mismatches: Vec<crate::contracts::Mismatch>,
}

#[derive(Debug, Clone)]
struct TrimSettings {
    interval: Duration,
    /// Every stream this runtime trims: its handlers' streams and those given limits.
    streams: BTreeMap<String, StreamLimits>,
}

/// The most entries a runtime reads ahead, all handlers together: each handler's read-ahead
/// queue is this divided by the number of handlers, between [`MIN_READ_AHEAD`] and
/// `max_batch` (256). One handler reads up to 256 entries at a time; 100 handlers up to 81
/// each (with 256 each, 100 handlers over a large backlog peaked at 85 MB instead of 20 MB).
const READ_AHEAD_BUDGET: usize = 8192;
/// The smallest read-ahead of a handler, however many run in the runtime.
const MIN_READ_AHEAD: usize = 16;

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("service", &self.service)
            .field("consumer", &self.consumer_name)
            .field("handlers", &self.selected.len())
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A builder with the defaults: prefix `opsconductor`, connect and response timeouts 5 s,
    /// shutdown timeout 30 s, trimming every 30 s.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::new()
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

    /// The priority lanes `stream` uses: `normal` and every lane ever published to (from the
    /// stream's lane marker), lowest first.
    pub async fn lanes(&self, stream: &str) -> Result<Vec<crate::Priority>> {
        let keys = self.keys.stream(stream);
        let lanes = with_broker!(&self.transport, b => b.lanes(&keys).await)?;
        Ok(crate::Priority::ALL
            .into_iter()
            .filter(|p| lanes.contains(*p))
            .collect())
    }

    /// [`stream_info`](Self::stream_info) of one priority lane of `stream`: its length, and its
    /// groups' pending entries, lag and retry schedules (`dead_letters` counts the stream's,
    /// shared by its lanes).
    pub async fn lane_info(&self, stream: &str, lane: crate::Priority) -> Result<StreamInfo> {
        let keys = self.keys.stream(stream).lane(lane);
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
            statuses: Arc::new([]),
            state: self.state.clone(),
            settings: self.settings.clone(),
            trim: self.trim.clone(),
            lanes: BTreeMap::new(),
            lane_check_interval: self.lane_check_interval,
            max_replays: self.max_replays,
            stale_group_after: self.stale_group_after,
            metrics_stream: None,
            background: Vec::new(),
            schemas: self.schemas.clone(),
            schema_mismatches: self.schema_mismatches.clone(),
        }
    }

    /// Every stream under the runtime's prefix.
    pub async fn streams(&self) -> Result<Vec<String>> {
        with_broker!(&self.transport, b => b.streams(self.keys.prefix()).await)
    }

    /// Up to `count` raw entries of `stream` after `after` (from the start when `None`), oldest
    /// first: for tools that show what a stream holds.
    pub async fn read(
        &self,
        stream: &str,
        after: Option<MessageId>,
        count: usize,
    ) -> Result<Vec<Entry>> {
        let key = self.keys.events(stream);
        let raw = with_broker!(&self.transport, b => b.read_range(&key, after, count).await)?;
        Ok(raw
            .into_iter()
            .map(|e| Entry {
                id: e.id,
                fields: e
                    .fields
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), v))
                    .collect(),
            })
            .collect())
    }

    /// Up to `count` raw entries of `stream` before `before` (from the newest when `None`),
    /// newest first: for tools that show the latest events. The next page starts
    /// `before(last.id)`.
    pub async fn read_newest(
        &self,
        stream: &str,
        before: Option<MessageId>,
        count: usize,
    ) -> Result<Vec<Entry>> {
        let key = self.keys.events(stream);
        let raw = with_broker!(&self.transport, b => b.read_range_rev(&key, before, count).await)?;
        Ok(raw
            .into_iter()
            .map(|e| Entry {
                id: e.id,
                fields: e
                    .fields
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), v))
                    .collect(),
            })
            .collect())
    }

    /// The streams of the handlers this runtime runs.
    pub fn handler_streams(&self) -> Vec<&'static str> {
        let mut streams: Vec<&'static str> = self.selected.iter().map(|s| s.reg.stream).collect();
        streams.sort_unstable();
        streams.dedup();
        streams
    }

    /// A new connection to the runtime's Redis (with its TLS settings and password), for tools
    /// that send commands the runtime does not offer; `None` on the embedded broker.
    #[doc(hidden)]
    pub async fn redis_connection(&self) -> Result<Option<redis::aio::MultiplexedConnection>> {
        match &self.transport {
            Transport::Redis(r) => r.admin_connection().await.map(Some),
            Transport::Memory(_) => Ok(None),
        }
    }

    /// The embedded broker, when that is the transport (for the CLI's group administration).
    pub(crate) fn memory_broker(&self) -> Option<&crate::transport::memory::MemoryBroker> {
        match &self.transport {
            Transport::Memory(m) => Some(m),
            Transport::Redis(_) => None,
        }
    }

    /// Which transport the runtime uses: `"redis"` or `"memory"`.
    pub fn transport_name(&self) -> &'static str {
        self.transport.name()
    }

    /// A handle that checks the runtime's health — the broker answers, every handler's consumer
    /// is reading — usable before, while and after the runtime runs (take it before
    /// [`Runtime::run`], which consumes the runtime). See [`Health`].
    pub fn health(&self) -> Health {
        Health {
            transport: self.transport.clone(),
            keys: self.keys.clone(),
            consumers: self.statuses.clone(),
            streams: self.trim.streams.keys().cloned().collect(),
            stale_after: self.stale_group_after,
            timeout: self.transport.response_timeout(),
        }
    }

    /// Trims the runtime's streams now (its handlers' streams and those given limits), as the
    /// background task does every `trim_interval`.
    pub async fn trim_now(&self) -> Result<Vec<TrimReport>> {
        trim::trim_all(
            &self.transport,
            &self.keys,
            &self.trim.streams,
            &self.consumer_name,
        )
        .await
    }

    /// The events scheduled on `stream` with `publish_after`/`publish_at` and not yet moved
    /// into it, soonest due first (see [`DelayedFilter`](crate::delayed::DelayedFilter)). Cancel
    /// one with `publisher().cancel(..)`.
    pub async fn delayed(
        &self,
        stream: &str,
        filter: &crate::delayed::DelayedFilter,
    ) -> Result<Vec<crate::delayed::DelayedEvent>> {
        let keys = self.keys.stream(stream);
        with_broker!(&self.transport, b => b.list_delayed(&keys, filter).await)
    }

    /// Moves the due delayed events of the runtime's streams into them now, as the background
    /// task does continually while the runtime runs; returns how many were moved. (For tools
    /// and tests: the lease is taken as this runtime's consumer.)
    pub async fn move_due_delayed(&self) -> Result<usize> {
        let mut moved = 0;
        for stream in self.trim.streams.keys() {
            let keys = self.keys.stream(stream);
            let lease = u64::try_from(crate::delayed::LEASE.as_millis()).unwrap_or(u64::MAX);
            let m = with_broker!(&self.transport, b => {
                b.move_due(&keys, &self.consumer_name, lease, crate::delayed::MOVE_BATCH).await?
            });
            moved += m.moved;
        }
        Ok(moved)
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
    ///
    /// Every task the runtime spawns is supervised. If one dies (a panic in the runtime, or a
    /// task that ends while it should run), every handler stops the same graceful way and this
    /// returns [`Error::ConsumerFailed`](crate::Error::ConsumerFailed) naming the handler and
    /// the task (or [`Error::TaskFailed`](crate::Error::TaskFailed) for the maintenance task):
    /// the process can exit and be restarted rather than run with a consumer that silently does
    /// nothing.
    pub async fn run_until<F>(mut self, shutdown: F) -> Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let stop = CancellationToken::new();
        let mut tasks: FuturesUnordered<BoxFuture<'static, Result<()>>> = FuturesUnordered::new();
        // One per run: a suspect entry runs alone among this run's consumers.
        let isolation = Arc::new(consumer::Isolation::default());
        // One watch of the lane marker per handled stream, shared by its handlers.
        let lanes: BTreeMap<&'static str, tokio::sync::watch::Sender<crate::priority::Lanes>> =
            self.selected
                .iter()
                .map(|s| {
                    let found = self
                        .lanes
                        .get(s.reg.stream)
                        .copied()
                        .unwrap_or(crate::priority::Lanes::NORMAL);
                    (s.reg.stream, tokio::sync::watch::Sender::new(found))
                })
                .collect();
        for (s, status) in self.selected.iter().zip(self.statuses.iter()) {
            let plan = HandlerPlan {
                reg: s.reg,
                group: s.group.clone(),
                key: self.keys.events(s.reg.stream).into(),
                keys: Arc::new(self.keys.stream(s.reg.stream)),
                consumer: self.consumer_name.clone(),
                lane: crate::priority::Priority::Normal,
            };
            let watch_lanes = lanes
                .get(s.reg.stream)
                .map(tokio::sync::watch::Sender::subscribe)
                .unwrap_or_else(|| {
                    tokio::sync::watch::Sender::new(crate::priority::Lanes::NORMAL).subscribe()
                });
            let parts = ContextParts {
                stream: s.reg.stream,
                group: s.group.clone(),
                publisher: self.publisher.clone(),
                state: self.state.clone(),
                priority: crate::priority::Priority::Normal,
            };
            let mut settings = self.settings.clone();
            settings.isolation = isolation.clone();
            // Entries read ahead are shared out among the runtime's handlers, so that memory
            // stays bounded however many there are (see `READ_AHEAD_BUDGET`).
            settings.max_batch = settings
                .max_batch
                .min((READ_AHEAD_BUDGET / self.selected.len().max(1)).max(MIN_READ_AHEAD));
            let stop = stop.clone();
            let handle = with_broker!(&self.transport, r => {
                tokio::spawn(consumer::run_lanes(r.clone(), plan, parts, settings, status.clone(), stop, watch_lanes))
            });
            let (handler, group, status) = (s.reg.path(), s.group.to_string(), status.clone());
            tasks.push(Box::pin(async move {
                // The consumer's own task panicking (outside the tasks it supervises).
                handle.await.unwrap_or_else(|e| {
                    let error = Error::ConsumerFailed {
                        handler,
                        group,
                        task: "consumer",
                        reason: join_failure(&e),
                    };
                    status.failed(error.to_string());
                    Err(error)
                })
            }));
        }
        if !lanes.is_empty() {
            let handle = tokio::spawn(watch_lanes(
                self.transport.clone(),
                self.keys.clone(),
                lanes,
                self.lane_check_interval,
                stop.clone(),
            ));
            tasks.push(watched("lanes", handle, stop.clone()));
        }
        if !self.trim.streams.is_empty() {
            let (transport, keys, trim, stopped, token) = (
                self.transport.clone(),
                self.keys.clone(),
                self.trim.clone(),
                stop.clone(),
                self.consumer_name.clone(),
            );
            let mut backlog =
                crate::health::Backlog::new(self.statuses.clone(), self.stale_group_after);
            let handle = tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = tokio::time::sleep(trim.interval) => {}
                        () = stopped.cancelled() => return,
                    }
                    crate::fault::hit("", "maintenance").await;
                    if let Err(e) = trim::trim_all(&transport, &keys, &trim.streams, &token).await {
                        tracing::warn!(error = %e, "trimming failed; trying again next round");
                    }
                    backlog
                        .record(&transport, &keys, trim.streams.keys().map(String::as_str))
                        .await;
                }
            });
            tasks.push(watched("maintenance", handle, stop.clone()));
        }
        if !self.trim.streams.is_empty() {
            // Delayed events of the runtime's streams are moved in by whichever runtime holds
            // each stream's lease (see `delayed`).
            let handle = tokio::spawn(crate::delayed::run_mover(
                self.transport.clone(),
                self.keys.clone(),
                self.trim.streams.keys().cloned().collect(),
                self.consumer_name.clone(),
                self.publisher.delayed_wake(),
                stop.clone(),
            ));
            tasks.push(watched("delayed", handle, stop.clone()));
        }
        if let Some(every) = self.metrics_stream {
            for status in self.statuses.iter() {
                status.counts.time_calls();
            }
            let handle = tokio::spawn(crate::metrics_stream::run(
                crate::metrics_stream::Source {
                    publisher: self.publisher.clone(),
                    transport: self.transport.clone(),
                    keys: self.keys.clone(),
                    service: self.service.clone(),
                    consumer: self.consumer_name.to_string(),
                    handlers: self
                        .selected
                        .iter()
                        .zip(self.statuses.iter())
                        .map(|(s, status)| (s.reg.path(), status.clone()))
                        .collect(),
                },
                every,
                stop.clone(),
            ));
            tasks.push(watched("metrics_stream", handle, stop.clone()));
        }
        for task in std::mem::take(&mut self.background) {
            let name = task.name;
            let handle = tokio::spawn((task.start)(self.publisher.clone(), stop.clone()));
            let stop = stop.clone();
            tasks.push(Box::pin(async move {
                match handle.await {
                    Ok(Ok(())) if stop.is_cancelled() => Ok(()),
                    Ok(Ok(())) => Err(Error::TaskFailed {
                        task: name,
                        reason: "ended while the runtime was running".to_owned(),
                    }),
                    Ok(Err(reason)) => Err(Error::TaskFailed { task: name, reason }),
                    Err(e) => Err(Error::TaskFailed {
                        task: name,
                        reason: join_failure(&e),
                    }),
                }
            }));
        }
        tracing::info!(service = %self.service, consumer = %self.consumer_name, handlers = self.selected.len(), "runtime running");
        // Until the shutdown, or until a task ends: every task runs until the stop, so one
        // that ends before has failed.
        let mut failure = None;
        tokio::select! {
            () = shutdown => {
                tracing::info!(service = %self.service, "shutting down");
            }
            Some(ended) = tasks.next() => {
                let error = ended.err().unwrap_or(Error::TaskFailed {
                    task: "consumer",
                    reason: "ended while the runtime was running".to_owned(),
                });
                tracing::error!(service = %self.service, error = %error, "a task of the runtime died; stopping every handler");
                failure = Some(error);
            }
        }
        stop.cancel();
        while let Some(ended) = tasks.next().await {
            if let Err(e) = ended {
                tracing::error!(service = %self.service, error = %e, "a task of the runtime failed while stopping");
                failure.get_or_insert(e);
            }
        }
        tracing::info!(service = %self.service, "runtime stopped");
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Looks at the lane markers of the handled streams every `every` and tells the handlers of
/// a stream when a lane appeared (see `consumer::lanes`).
async fn watch_lanes(
    transport: Transport,
    keys: Keys,
    lanes: BTreeMap<&'static str, tokio::sync::watch::Sender<crate::priority::Lanes>>,
    every: Duration,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.cancelled() => return,
        }
        for (stream, tx) in &lanes {
            let keys = keys.stream(stream);
            match with_broker!(&transport, b => b.lanes(&keys).await) {
                // Lanes are only ever added (a marker that lost a lane, after a restart without
                // data, keeps the consumers running that read it).
                Ok(found) => {
                    tx.send_if_modified(|known| {
                        let all = crate::priority::Lanes(known.0 | found.0);
                        let changed = all != *known;
                        *known = all;
                        changed
                    });
                }
                Err(e) => {
                    tracing::warn!(stream = %stream, error = %e, "cannot read the stream's priority lanes; trying again");
                }
            }
        }
    }
}

/// Waits for a runtime task meant to run until `stop`: ending before it, or panicking, is
/// [`Error::TaskFailed`] naming `task`.
fn watched(
    task: &'static str,
    handle: tokio::task::JoinHandle<()>,
    stop: CancellationToken,
) -> BoxFuture<'static, Result<()>> {
    Box::pin(async move {
        match handle.await {
            Ok(()) if stop.is_cancelled() => Ok(()),
            Ok(()) => Err(Error::TaskFailed {
                task,
                reason: "ended while the runtime was running".to_owned(),
            }),
            Err(e) => Err(Error::TaskFailed {
                task,
                reason: join_failure(&e),
            }),
        }
    })
}

/// What a task that did not complete did: its panic message, or that it was cancelled.
fn join_failure(e: &tokio::task::JoinError) -> String {
    if e.is_panic() {
        "panicked".to_owned()
    } else {
        format!("was cancelled: {e}")
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
