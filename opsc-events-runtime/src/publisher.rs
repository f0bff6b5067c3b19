//! Publishing events.

use std::sync::Arc;

use uuid::Uuid;

use crate::envelope::{
    EncodedEvent, Headers, MetaParts, WireFormat, encode_parts, new_event_id, now_ms,
};
use crate::error::Result;
use crate::event::Event;
use crate::keys::Keys;
use crate::message_id::MessageId;
use crate::transport::Transport;

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
}

/// Per-publish metadata: correlation and causation ids, headers, a chosen event id.
///
/// ```
/// use opsc_events_runtime::PublishOptions;
///
/// let opts = PublishOptions::new()
///     .header("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
///     .header("tenant", "acme");
/// assert_eq!(opts.headers().len(), 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishOptions {
    event_id: Option<Uuid>,
    correlation_id: Option<Uuid>,
    causation_id: Option<Uuid>,
    headers: Headers,
}

impl PublishOptions {
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

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// The headers set so far.
    pub fn headers(&self) -> &Headers {
        &self.headers
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

impl Publisher {
    pub(crate) fn new(
        transport: Transport,
        keys: Keys,
        service: String,
        format: WireFormat,
    ) -> Self {
        Publisher {
            inner: Arc::new(Inner {
                transport,
                keys,
                service,
                format,
            }),
        }
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

    /// Publishes `event` with explicit metadata.
    pub async fn publish_with<E: Event>(
        &self,
        event: &E,
        opts: &PublishOptions,
    ) -> Result<MessageId> {
        let entry = encode_parts(
            event,
            &opts.parts(&self.inner.service, now_ms()),
            self.inner.format,
        )?;
        let key = self.inner.keys.events(E::STREAM);
        let id = self.inner.transport.append(&key, &entry).await?;
        metrics::counter!("opsc_events_published_total", "stream" => E::STREAM).increment(1);
        Ok(id)
    }

    /// Appends raw fields to `stream` as they are, without an envelope: for tools and tests
    /// that need entries other publishers might write (including malformed ones).
    #[doc(hidden)]
    pub async fn append_raw(&self, stream: &str, fields: &[(&str, &[u8])]) -> Result<MessageId> {
        let key = self.inner.keys.events(stream);
        self.inner.transport.append_raw(&key, fields).await
    }

    /// Publishes every event in one pipeline (one round trip) and returns their entry ids in
    /// order. Each event gets its own event id and starts its own conversation.
    pub async fn publish_all<'a, E, I>(&self, events: I) -> Result<Vec<MessageId>>
    where
        E: Event,
        I: IntoIterator<Item = &'a E>,
    {
        let opts = PublishOptions::new();
        let now = now_ms();
        let entries = events
            .into_iter()
            .map(|e| encode_parts(e, &opts.parts(&self.inner.service, now), self.inner.format))
            .collect::<Result<Vec<EncodedEvent>, _>>()?;
        let key = self.inner.keys.events(E::STREAM);
        let ids = self.inner.transport.append_all(&key, &entries).await?;
        metrics::counter!("opsc_events_published_total", "stream" => E::STREAM)
            .increment(ids.len() as u64);
        Ok(ids)
    }
}
