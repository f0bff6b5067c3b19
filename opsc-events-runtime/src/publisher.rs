//! Publishing events.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use uuid::Uuid;

use crate::delayed::{self, Delayed};

use crate::envelope::{
    EncodedEvent, Headers, MetaParts, WireFormat, encode_parts, new_event_id, now_ms,
};
use crate::error::{PublishOptionProblem, PublishOptionsError, Result};
use crate::event::Event;
use crate::keys::{HEADER_NAME, Keys, shorten};
use crate::message_id::MessageId;
use crate::priority::Priority;
use crate::transport::{Broker, Transport, with_broker};

/// How long a publisher trusts its record of having written a lane marker (see
/// `Publisher::mark`).
const MARK_AGAIN_AFTER: Duration = Duration::from_secs(10);

/// Publishes events. Cheap to clone; `Send + Sync`; concurrent calls share one multiplexed
/// connection, so they are pipelined rather than serialized.
#[derive(Debug, Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    transport: Transport,
    keys: Keys,
    service: String,
    format: WireFormat,
    /// Replicas that must acknowledge a publish, and how long to wait for them.
    replicas: Option<(u32, std::time::Duration)>,
    /// Wakes the runtime's mover of delayed events after a delayed publish.
    delayed_wake: Arc<tokio::sync::Notify>,
    /// The (stream, lane) pairs this publisher has recorded in the streams' lane markers, and
    /// when.
    marked: std::sync::Mutex<std::collections::HashMap<(String, Priority), std::time::Instant>>,
}

/// Per-publish metadata: correlation and causation ids, headers, a chosen event id.
///
/// The setters accept anything; [`validate`](Self::validate) checks the rules of
/// `docs/WIRE.md` § Names and limits, and `publish_with` refuses options that break one
/// (every problem listed, nothing sent): header names `[A-Za-z0-9_.-]{1,128}`; values of at
/// most [`MAX_HEADER_VALUE_LEN`](Self::MAX_HEADER_VALUE_LEN) bytes without control characters;
/// at most [`MAX_HEADERS`](Self::MAX_HEADERS) headers of
/// [`MAX_HEADERS_LEN`](Self::MAX_HEADERS_LEN) bytes in all; no id set to the nil UUID.
///
/// ```
/// use opsc_events_runtime::PublishOptions;
///
/// let opts = PublishOptions::new()
///     .header("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
///     .header("tenant", "acme");
/// assert_eq!(opts.headers().len(), 2);
/// assert!(opts.validate().is_ok());
///
/// let bad = PublishOptions::new().event_id(uuid::Uuid::nil()).header("tenant id", "a\nb");
/// assert_eq!(bad.validate().unwrap_err().problems.len(), 3);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishOptions {
    event_id: Option<Uuid>,
    correlation_id: Option<Uuid>,
    causation_id: Option<Uuid>,
    headers: Headers,
    priority: Option<Priority>,
}

impl PublishOptions {
    /// The most headers one event may carry.
    pub const MAX_HEADERS: usize = 64;
    /// The longest header value, in bytes (W3C `baggage` allows 8192).
    pub const MAX_HEADER_VALUE_LEN: usize = 8192;
    /// The most bytes the names and values of one event's headers may take together.
    pub const MAX_HEADERS_LEN: usize = 65_536;

    /// No options: a fresh UUIDv7 event id that is also the correlation id, no headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses `id` as the event id instead of a fresh UUIDv7 (for example, an outbox row's id, so
    /// that a re-publish after a crash deduplicates in handlers).
    pub fn event_id(mut self, id: Uuid) -> Self {
        self.event_id = Some(id);
        self
    }

    /// Joins the conversation `id` instead of starting a new one.
    pub fn correlation_id(mut self, id: Uuid) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// Marks the event as caused by the event `id`.
    pub fn causation_id(mut self, id: Uuid) -> Self {
        self.causation_id = Some(id);
        self
    }

    /// Adds a header; setting a name again replaces its value.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// Publishes to the priority lane `priority` instead of the event type's
    /// ([`Event::PRIORITY`], set with `#[event(priority = "...")]`). Consumers take higher
    /// priorities first, weighted 8:4:2:1 so that lower ones still progress; within one
    /// priority the stream's order holds (see [`Priority`]).
    ///
    /// ```
    /// use opsc_events_runtime::{Priority, PublishOptions};
    /// let opts = PublishOptions::new().priority(Priority::Critical);
    /// assert_eq!(opts.priority_set(), Some(Priority::Critical));
    /// ```
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = Some(priority);
        self
    }

    /// The priority set with [`priority`](Self::priority), if any.
    pub fn priority_set(&self) -> Option<Priority> {
        self.priority
    }

    /// The headers set so far.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// Checks every rule of `docs/WIRE.md` § Names and limits and lists every problem: ids
    /// first (`event_id`, `correlation_id`, `causation_id`), then the headers in name order,
    /// then their count and total size. `publish_with` calls it before anything is sent.
    pub fn validate(&self) -> Result<(), PublishOptionsError> {
        let mut problems = Vec::new();
        for (option, id) in [
            ("event_id", self.event_id),
            ("correlation_id", self.correlation_id),
            ("causation_id", self.causation_id),
        ] {
            if id.is_some_and(|id| id.is_nil()) {
                problems.push(PublishOptionProblem::NilId { option });
            }
        }
        let mut total = 0usize;
        for (name, value) in &self.headers {
            total = total.saturating_add(name.len()).saturating_add(value.len());
            if let Err(e) = HEADER_NAME.check(name) {
                problems.push(PublishOptionProblem::HeaderName(e));
            }
            if value.len() > Self::MAX_HEADER_VALUE_LEN {
                problems.push(PublishOptionProblem::HeaderValueTooLong {
                    name: shorten(name),
                    len: value.len(),
                    max: Self::MAX_HEADER_VALUE_LEN,
                });
            }
            if let Some((at, ch)) = value.char_indices().find(|(_, c)| c.is_control()) {
                problems.push(PublishOptionProblem::HeaderValueChar {
                    name: shorten(name),
                    ch,
                    at,
                });
            }
        }
        if self.headers.len() > Self::MAX_HEADERS {
            problems.push(PublishOptionProblem::TooManyHeaders {
                count: self.headers.len(),
                max: Self::MAX_HEADERS,
            });
        }
        if total > Self::MAX_HEADERS_LEN {
            problems.push(PublishOptionProblem::HeadersTooLong {
                len: total,
                max: Self::MAX_HEADERS_LEN,
            });
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PublishOptionsError { problems })
        }
    }

    /// Encodes `event` as `service` would publish it now with these options, without publishing
    /// it: its event id and the fields of its entry (the outbox stores them in a transaction and
    /// its relay appends them later with [`Publisher::append_encoded`]).
    #[doc(hidden)]
    pub fn encode_now<E: Event>(
        &self,
        event: &E,
        service: &str,
        format: WireFormat,
    ) -> Result<(Uuid, EncodedEvent)> {
        self.validate()?;
        let parts = self.parts(service, now_ms());
        let entry = encode_parts(event, &parts, format)?;
        Ok((parts.event_id, entry))
    }

    /// The metadata of one event published with these options: a fresh event id unless one was
    /// chosen.
    fn parts<'a>(&'a self, service: &'a str, timestamp_ms: u64) -> MetaParts<'a> {
        let event_id = self.event_id.unwrap_or_else(new_event_id);
        MetaParts {
            event_id,
            service,
            timestamp_ms,
            correlation_id: self.correlation_id.unwrap_or(event_id),
            causation_id: self.causation_id,
            headers: &self.headers,
        }
    }
}

/// With `otel`: the publish span of `count` events to `stream`, and `opts` with its trace
/// context in the headers (see `otel`).
#[cfg(feature = "otel")]
fn traced(
    stream: &'static str,
    count: usize,
    opts: &PublishOptions,
) -> (tracing::Span, PublishOptions) {
    let span = crate::otel::publish_span(stream, count);
    let mut traced = opts.clone();
    crate::otel::inject(&span, &mut traced.headers);
    (span, traced)
}

impl Publisher {
    pub(crate) fn new(
        transport: Transport,
        keys: Keys,
        service: String,
        format: WireFormat,
        replicas: Option<(u32, std::time::Duration)>,
    ) -> Self {
        Publisher {
            inner: Arc::new(Inner {
                transport,
                keys,
                service,
                format,
                replicas,
                delayed_wake: Arc::default(),
                marked: std::sync::Mutex::default(),
            }),
        }
    }

    /// The stream key of `stream`'s lane `priority`. For a lane other than `normal`, first
    /// records the lane in the stream's lane marker (once per publisher and lane), so that
    /// consumers read it: the marker is written before the first entry of the lane is.
    async fn lane_key(&self, stream: &str, priority: Priority) -> Result<String> {
        if priority == Priority::Normal {
            return Ok(self.inner.keys.events(stream));
        }
        let keys = self.inner.keys.stream(stream).lane(priority);
        self.mark(&keys).await?;
        Ok(keys.events)
    }

    /// Records `keys`'s lane in the stream's lane marker unless this publisher did so in the
    /// last [`MARK_AGAIN_AFTER`]: again after that, so that a marker lost with Redis's data (a
    /// restart without persistence, a failover before it was replicated) is written back while
    /// the lane is in use, and consumers started since find the lane.
    async fn mark(&self, keys: &crate::keys::StreamKeys) -> Result<()> {
        let pair = (keys.stream.clone(), keys.priority());
        let lock = || self.inner.marked.lock().unwrap_or_else(|e| e.into_inner());
        if lock()
            .get(&pair)
            .is_some_and(|at| at.elapsed() < MARK_AGAIN_AFTER)
        {
            return Ok(());
        }
        with_broker!(&self.inner.transport, b => b.mark_lane(keys, keys.priority()).await)?;
        lock().insert(pair, std::time::Instant::now());
        Ok(())
    }

    /// What wakes the mover of delayed events (see `delayed::run_mover`).
    pub(crate) fn delayed_wake(&self) -> Arc<tokio::sync::Notify> {
        self.inner.delayed_wake.clone()
    }

    /// Schedules `event` to be appended to its stream after `delay` (by the server's clock; up
    /// to [`MAX_DELAY`](crate::delayed::MAX_DELAY)). The event is encoded now — its event id
    /// and time stamp are fixed here — and kept in the stream's schedule until it is due; a
    /// runtime that handles the stream then moves it into the stream in one atomic step, and
    /// every consumer group sees it. Returns the handle [`cancel`](Self::cancel) takes.
    ///
    /// Delivery is not earlier than due and, while a runtime handling the stream runs,
    /// normally within a few hundred milliseconds after (a runtime that dies holding the move
    /// lease delays it by up to 2 s more). See the `delayed` module.
    pub async fn publish_after<E: Event>(&self, event: &E, delay: Duration) -> Result<Delayed> {
        self.publish_after_with(event, delay, &PublishOptions::new())
            .await
    }

    /// Schedules `event` for `at` — turned into a delay by this host's clock, then added to
    /// the server's (a time in the past is due at once). See [`publish_after`](Self::publish_after).
    pub async fn publish_at<E: Event>(&self, event: &E, at: SystemTime) -> Result<Delayed> {
        self.publish_after(event, delayed::delay_until(at)).await
    }

    /// [`publish_after`](Self::publish_after) with explicit metadata. Scheduling an event id
    /// (set with [`PublishOptions::event_id`]) that is already scheduled on the stream fails
    /// with [`Error::AlreadyScheduled`](crate::Error::AlreadyScheduled).
    pub async fn publish_after_with<E: Event>(
        &self,
        event: &E,
        delay: Duration,
        opts: &PublishOptions,
    ) -> Result<Delayed> {
        opts.validate()?;
        #[cfg(feature = "otel")]
        let (_span, traced) = traced(E::STREAM, 1, opts);
        #[cfg(feature = "otel")]
        let opts = &traced;
        let delay_ms = delayed::delay_ms(delay)?;
        let parts = opts.parts(&self.inner.service, now_ms());
        let event_id = parts.event_id;
        let entry = encode_parts(event, &parts, self.inner.format)?;
        let packed = delayed::pack(entry.fields());
        let keys = self.inner.keys.stream(E::STREAM);
        let priority = opts.priority.unwrap_or(E::PRIORITY);
        if priority != Priority::Normal {
            // Recorded now, so that consumers read the lane before the event is moved into it.
            self.mark(&keys.lane(priority)).await?;
        }
        let id = event_id.to_string();
        let due = with_broker!(&self.inner.transport, b => {
            b.schedule_delayed(&keys, &id, delay_ms, &packed, priority).await?
        });
        let Some(due) = due else {
            return Err(crate::Error::AlreadyScheduled {
                stream: E::STREAM.to_owned(),
                event_id,
            });
        };
        metrics::counter!("opsc_events_delayed_scheduled_total", "stream" => E::STREAM)
            .increment(1);
        self.inner.delayed_wake.notify_one();
        Ok(Delayed::new(E::STREAM, event_id, due))
    }

    /// Cancels a scheduled event that has not been moved into its stream yet. True when it
    /// was still scheduled (it will never be delivered); false when it was already moved,
    /// cancelled, or never scheduled.
    pub async fn cancel(&self, delayed: &Delayed) -> Result<bool> {
        let keys = self.inner.keys.stream(delayed.stream());
        let id = delayed.event_id().to_string();
        with_broker!(&self.inner.transport, b => b.cancel_delayed(&keys, &id).await)
    }

    /// The wire format this publisher writes.
    pub fn wire_format(&self) -> WireFormat {
        self.inner.format
    }

    /// The service name written to every event's `service` field.
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// Publishes `event` to its stream and returns the entry id.
    pub async fn publish<E: Event>(&self, event: &E) -> Result<MessageId> {
        self.publish_with(event, &PublishOptions::new()).await
    }

    /// Publishes `event` with explicit metadata. Options that break a rule of
    /// [`PublishOptions::validate`] are refused with [`Error::PublishOptions`](crate::Error::PublishOptions)
    /// listing every problem, before anything is sent.
    pub async fn publish_with<E: Event>(
        &self,
        event: &E,
        opts: &PublishOptions,
    ) -> Result<MessageId> {
        opts.validate()?;
        #[cfg(feature = "otel")]
        let (span, traced) = traced(E::STREAM, 1, opts);
        #[cfg(feature = "otel")]
        let opts = &traced;
        let publish = async {
            let entry = encode_parts(
                event,
                &opts.parts(&self.inner.service, now_ms()),
                self.inner.format,
            )?;
            let key = self
                .lane_key(E::STREAM, opts.priority.unwrap_or(E::PRIORITY))
                .await?;
            let id = self.inner.transport.append(&key, &entry).await?;
            metrics::counter!("opsc_events_published_total", "stream" => E::STREAM).increment(1);
            self.replicated(&key, &[id]).await?;
            Ok(id)
        };
        #[cfg(feature = "otel")]
        let publish = tracing::Instrument::instrument(publish, span);
        publish.await
    }

    /// Appends raw fields to `stream` as they are, without an envelope: for tools and tests
    /// that need entries other publishers might write (including malformed ones).
    #[doc(hidden)]
    pub async fn append_raw(&self, stream: &str, fields: &[(&str, &[u8])]) -> Result<MessageId> {
        let key = self.inner.keys.events(stream);
        self.inner.transport.append_raw(&key, fields).await
    }

    /// Publishes every event in one pipeline (one round trip) and returns their entry ids in
    /// order. Each event gets its own event id and starts its own conversation. They go to the
    /// type's priority lane ([`Event::PRIORITY`]).
    pub async fn publish_all<'a, E, I>(&self, events: I) -> Result<Vec<MessageId>>
    where
        E: Event,
        I: IntoIterator<Item = &'a E>,
    {
        let opts = PublishOptions::new();
        let now = now_ms();
        let events: Vec<&E> = events.into_iter().collect();
        #[cfg(feature = "otel")]
        let (span, opts) = traced(E::STREAM, events.len(), &opts);
        let entries = events
            .iter()
            .map(|e| encode_parts(*e, &opts.parts(&self.inner.service, now), self.inner.format))
            .collect::<Result<Vec<EncodedEvent>, _>>()?;
        let publish = self.append_batch::<E>(&entries);
        #[cfg(feature = "otel")]
        let publish = tracing::Instrument::instrument(publish, span);
        publish.await
    }

    async fn append_batch<E: Event>(&self, entries: &[EncodedEvent]) -> Result<Vec<MessageId>> {
        let key = self.lane_key(E::STREAM, E::PRIORITY).await?;
        let ids = self.inner.transport.append_all(&key, entries).await?;
        metrics::counter!("opsc_events_published_total", "stream" => E::STREAM)
            .increment(ids.len() as u64);
        self.replicated(&key, &ids).await?;
        Ok(ids)
    }

    /// Appends entries encoded earlier (by [`PublishOptions::encode_now`]) to `stream` in one
    /// round trip, in order, waiting for replicas as `publish` does: the outbox relay's way to
    /// publish rows staged by a process that may no longer run.
    #[doc(hidden)]
    pub async fn append_encoded(
        &self,
        stream: &str,
        entries: &[EncodedEvent],
    ) -> Result<Vec<MessageId>> {
        let key = self.inner.keys.events(stream);
        let ids = self.inner.transport.append_all(&key, entries).await?;
        metrics::counter!("opsc_events_published_total", "stream" => stream.to_owned())
            .increment(ids.len() as u64);
        self.replicated(&key, &ids).await?;
        Ok(ids)
    }

    /// With [`RuntimeBuilder::wait_for_replicas`](crate::RuntimeBuilder::wait_for_replicas):
    /// waits until that many replicas acknowledged the writes (`WAIT`), or fails with
    /// [`Error::NotReplicated`](crate::Error::NotReplicated) naming the ids written.
    async fn replicated(&self, key: &str, ids: &[MessageId]) -> Result<()> {
        let Some((wanted, timeout)) = self.inner.replicas else {
            return Ok(());
        };
        match self.inner.transport.wait_replicas(wanted, timeout).await? {
            Some(acked) if acked < wanted => {
                metrics::counter!("opsc_events_publish_not_replicated_total").increment(1);
                Err(crate::Error::NotReplicated {
                    key: key.to_owned(),
                    ids: ids
                        .iter()
                        .map(MessageId::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                    acked,
                    wanted,
                    timeout,
                })
            }
            _ => Ok(()),
        }
    }
}
