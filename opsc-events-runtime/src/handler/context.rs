//! The per-message [`Context`] a handler can ask for.

use std::sync::Arc;

use uuid::Uuid;

use crate::envelope::{Envelope, Headers};
use crate::error::Result;
use crate::event::Event;
use crate::message_id::MessageId;
use crate::publisher::{PublishOptions, Publisher};

use super::state::StateMap;

/// Everything about the message being handled, and a publisher that links follow-up events to it.
///
/// Cheap to clone. Ask for it by adding a `ctx: Context` parameter to a handler.
#[derive(Debug, Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    message_id: MessageId,
    stream: &'static str,
    group: Arc<str>,
    event_id: Uuid,
    published_at: u64,
    service: String,
    correlation_id: Uuid,
    causation_id: Option<Uuid>,
    headers: Headers,
    attempt: u32,
    delivery_count: u32,
    priority: crate::Priority,
    publisher: Publisher,
    state: Arc<StateMap>,
}

/// The parts of a [`Context`] that come from the runtime rather than the message.
#[derive(Debug, Clone)]
pub(crate) struct ContextParts {
    pub(crate) stream: &'static str,
    pub(crate) group: Arc<str>,
    pub(crate) publisher: Publisher,
    pub(crate) state: Arc<StateMap>,
    /// The priority lane the consumer reads.
    pub(crate) priority: crate::Priority,
}

impl Context {
    /// Builds the context of one delivery. `envelope.data` is not kept; the service name is
    /// moved out of `envelope` (decoding the payload does not need it), not copied.
    pub(crate) fn new(
        parts: &ContextParts,
        message_id: MessageId,
        envelope: &mut Envelope,
        attempt: u32,
        delivery_count: u32,
    ) -> Self {
        let service = std::mem::take(&mut envelope.meta.service);
        let meta = &envelope.meta;
        Context {
            inner: Arc::new(Inner {
                message_id,
                stream: parts.stream,
                group: parts.group.clone(),
                event_id: meta.event_id,
                published_at: meta.timestamp_ms,
                service,
                correlation_id: meta.correlation_id,
                causation_id: meta.causation_id,
                headers: meta.headers.clone(),
                attempt,
                delivery_count,
                priority: parts.priority,
                publisher: parts.publisher.clone(),
                state: parts.state.clone(),
            }),
        }
    }

    /// The stream entry id.
    pub fn message_id(&self) -> MessageId {
        self.inner.message_id
    }

    /// The event id (UUIDv7) set at publish: the key to deduplicate on, since delivery is
    /// at-least-once.
    pub fn event_id(&self) -> Uuid {
        self.inner.event_id
    }

    /// The stream the event was read from.
    pub fn stream(&self) -> &'static str {
        self.inner.stream
    }

    /// The priority lane the event was read from (see [`Priority`](crate::Priority)).
    pub fn priority(&self) -> crate::Priority {
        self.inner.priority
    }

    /// The consumer group handling it.
    pub fn group(&self) -> &str {
        &self.inner.group
    }

    /// The service that published the event.
    pub fn published_by(&self) -> &str {
        &self.inner.service
    }

    /// This attempt's number, counting from 1.
    pub fn attempt(&self) -> u32 {
        self.inner.attempt
    }

    /// How many times Redis has delivered the entry to this group (reads and reclaims).
    pub fn delivery_count(&self) -> u32 {
        self.inner.delivery_count
    }

    /// Milliseconds since the epoch at publish.
    pub fn published_at(&self) -> u64 {
        self.inner.published_at
    }

    /// The conversation id shared by every event it caused.
    pub fn correlation_id(&self) -> Uuid {
        self.inner.correlation_id
    }

    /// The id of the event that caused this one, if any.
    pub fn causation_id(&self) -> Option<Uuid> {
        self.inner.causation_id
    }

    /// The event's headers.
    pub fn headers(&self) -> &Headers {
        &self.inner.headers
    }

    /// Shared state of type `T`, if it was added to the runtime.
    pub(crate) fn state<T: Clone + 'static>(&self) -> Option<T> {
        self.inner.state.get::<T>()
    }

    /// The runtime's publisher, unlinked.
    pub fn publisher(&self) -> &Publisher {
        &self.inner.publisher
    }

    /// Publishes a follow-up event: same correlation id, causation id = this event's id, and the
    /// `traceparent` header carried over. What came from the incoming entry is carried over only
    /// where it obeys the publish rules (docs/WIRE.md § Names and limits): an entry written by
    /// another program with a nil id or a `traceparent` holding control characters must not
    /// make every follow-up publish fail — the follow-up then starts its own conversation, or
    /// goes without the header.
    pub async fn publish<E: Event>(&self, event: &E) -> Result<MessageId> {
        let mut opts = PublishOptions::new();
        if !self.inner.correlation_id.is_nil() {
            opts = opts.correlation_id(self.inner.correlation_id);
        }
        if !self.inner.event_id.is_nil() {
            opts = opts.causation_id(self.inner.event_id);
        }
        if let Some(tp) = self.inner.headers.get("traceparent") {
            let with = opts.clone().header("traceparent", tp.clone());
            if with.validate().is_ok() {
                opts = with;
            } else {
                tracing::debug!(group = %self.inner.group, "incoming traceparent breaks the header rules; not carried over");
            }
        }
        self.inner.publisher.publish_with(event, &opts).await
    }
}
