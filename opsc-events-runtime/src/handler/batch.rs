//! Batch handlers: `#[handler(batch = N, linger = "50ms")] async fn f(events: Vec<E>, ctx:
//! BatchContext)`. What they receive ([`BatchContext`]), what they return ([`BatchError`]) and
//! the extractors they may take ([`FromBatchContext`]).
//!
//! A batch is settled per message: a message the handler names as failed is retried (or
//! dead-lettered) alone, with its own attempt count; the others are acknowledged.

use std::any::TypeId;
use std::fmt;
use std::future::Future;
use std::ops::Index;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::context::Context;
use super::error::HandlerError;
use super::registration::CallError;
use super::state::{Requirement, State};
use crate::envelope::Envelope;
use crate::error::Result;
use crate::event::Event;
use crate::message_id::MessageId;
use crate::publisher::Publisher;

/// The future of one batch call: one result per entry given, in the same order.
pub type BatchFuture = Pin<Box<dyn Future<Output = Vec<Result<(), CallError>>> + Send + 'static>>;

/// What `#[handler(batch = N, linger = "...")]` registers besides the handler's policy.
#[derive(Debug, Clone, Copy)]
pub struct BatchSpec {
    /// The most messages one call receives (`batch`).
    pub size: u32,
    /// How long to wait, after the first message, for more before calling with fewer than
    /// `size` (`linger`).
    pub linger: Duration,
    /// Decodes the entries and calls the handler once with those that decoded.
    pub call: fn(Vec<(Envelope, Context)>) -> BatchFuture,
}

impl BatchSpec {
    /// `linger` when it is left out: none — a batch is what has already been read when the
    /// handler is free. Under a backlog the batches are full anyway; under a trickle, events
    /// are handled at once rather than held back.
    pub const DEFAULT_LINGER: Duration = Duration::ZERO;
}

/// The messages of one batch call, in the order of the events passed to the handler: `ctx[i]`
/// is the [`Context`] of `events[i]` (its message id, attempt, correlation id, headers, and
/// a publisher linking follow-ups to it).
///
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct BatchContext {
    messages: Arc<[Context]>,
    publisher: Publisher,
}

impl BatchContext {
    pub(crate) fn new(messages: Vec<Context>, publisher: Publisher) -> Self {
        BatchContext {
            messages: messages.into(),
            publisher,
        }
    }

    /// How many messages the batch holds (the length of the events vector).
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Never true for a batch a handler receives: a handler is called with one message at least.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The context of message `index`, if there is one.
    pub fn get(&self, index: usize) -> Option<&Context> {
        self.messages.get(index)
    }

    /// The contexts of the messages, in the order of the events.
    pub fn iter(&self) -> std::slice::Iter<'_, Context> {
        self.messages.iter()
    }

    /// The stream entry ids, in the order of the events.
    pub fn message_ids(&self) -> impl Iterator<Item = MessageId> + '_ {
        self.messages.iter().map(Context::message_id)
    }

    /// The stream the batch was read from.
    pub fn stream(&self) -> &'static str {
        self.messages.first().map_or("", Context::stream)
    }

    /// The consumer group handling it.
    pub fn group(&self) -> &str {
        self.messages.first().map_or("", Context::group)
    }

    /// The runtime's publisher, unlinked. To link a follow-up to the message that caused it
    /// (same correlation id, causation id = its event id), publish with `ctx[i].publish(..)`.
    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    /// Publishes an event not linked to any one message of the batch (a summary, say).
    pub async fn publish<E: Event>(&self, event: &E) -> Result<MessageId> {
        self.publisher.publish(event).await
    }

    /// Shared state of type `T`, if it was added to the runtime.
    fn state<T: Clone + 'static>(&self) -> Option<T> {
        self.messages.first().and_then(Context::state::<T>)
    }
}

impl Index<usize> for BatchContext {
    type Output = Context;

    fn index(&self, index: usize) -> &Context {
        &self.messages[index]
    }
}

impl<'a> IntoIterator for &'a BatchContext {
    type Item = &'a Context;
    type IntoIter = std::slice::Iter<'a, Context>;

    fn into_iter(self) -> Self::IntoIter {
        self.messages.iter()
    }
}

/// Why some (or all) messages of a batch failed.
///
/// Return `Err(BatchError)` from a batch handler to fail the messages it names, each with its
/// own [`HandlerError`] (retryable, permanent, `retry_after`): they retry (or are
/// dead-lettered) alone, with their own attempt counts; the messages it does not name are
/// acknowledged. A plain error converts into a `BatchError` failing every message, so `?`
/// works in a batch handler as in any other.
///
/// ```
/// use opsc_events_runtime::{BatchError, HandlerError};
///
/// let mut failed = BatchError::new();
/// failed.fail(3, HandlerError::retryable("index service busy"));
/// failed.fail(7, HandlerError::permanent("malformed asset"));
/// assert_eq!(failed.failed().collect::<Vec<_>>(), [3, 7]);
///
/// let all = BatchError::all("database down");
/// assert!(all.fails_all());
/// ```
pub struct BatchError {
    /// Fails every message not named in `failed`.
    all: Option<HandlerError>,
    failed: Vec<(usize, HandlerError)>,
}

impl BatchError {
    /// Fails nothing yet: name failed messages with [`BatchError::fail`]. Returned as is, an
    /// empty `BatchError` acknowledges the whole batch.
    pub fn new() -> Self {
        BatchError {
            all: None,
            failed: Vec::new(),
        }
    }

    /// Fails every message of the batch with `error`.
    pub fn all(error: impl Into<HandlerError>) -> Self {
        BatchError {
            all: Some(error.into()),
            failed: Vec::new(),
        }
    }

    /// Fails the message at `index` (its position in the events vector) with `error`. Naming
    /// an index twice keeps the last error; an index past the end is logged and ignored.
    pub fn fail(&mut self, index: usize, error: impl Into<HandlerError>) -> &mut Self {
        self.failed.push((index, error.into()));
        self
    }

    /// [`BatchError::fail`], by value: `BatchError::new().with(3, e)`.
    pub fn with(mut self, index: usize, error: impl Into<HandlerError>) -> Self {
        self.fail(index, error);
        self
    }

    /// True when no message is failed: returning it acknowledges the whole batch.
    pub fn is_empty(&self) -> bool {
        self.all.is_none() && self.failed.is_empty()
    }

    /// True when every message is failed ([`BatchError::all`], or a converted error).
    pub fn fails_all(&self) -> bool {
        self.all.is_some()
    }

    /// The indices named with [`BatchError::fail`], in the order they were named.
    pub fn failed(&self) -> impl Iterator<Item = usize> + '_ {
        self.failed.iter().map(|(i, _)| *i)
    }

    /// `Ok(())` when nothing is failed, else `Err(self)`: the end of a handler that collects
    /// failures as it goes.
    pub fn into_result(self) -> std::result::Result<(), BatchError> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }

    /// One outcome per message of a batch of `len`: `None` for the acknowledged ones.
    pub(crate) fn into_failures(self, len: usize) -> Vec<Option<HandlerError>> {
        let mut out: Vec<Option<HandlerError>> = (0..len).map(|_| None).collect();
        for (index, error) in self.failed {
            match out.get_mut(index) {
                Some(slot) => *slot = Some(error),
                None => tracing::error!(
                    index,
                    len,
                    error = %error,
                    "a batch handler failed a message index past the end of its batch; ignored"
                ),
            }
        }
        if let Some(all) = self.all {
            for slot in out.iter_mut().filter(|s| s.is_none()) {
                *slot = Some(all.duplicate());
            }
        }
        out
    }
}

impl Default for BatchError {
    fn default() -> Self {
        BatchError::new()
    }
}

impl<E: Into<HandlerError>> From<E> for BatchError {
    fn from(error: E) -> Self {
        BatchError::all(error)
    }
}

impl fmt::Debug for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchError")
            .field("all", &self.all)
            .field("failed", &self.failed)
            .finish()
    }
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.all {
            Some(e) => write!(f, "every message of the batch failed: {e}")?,
            None => write!(f, "{} message(s) of the batch failed", self.failed.len())?,
        }
        Ok(())
    }
}

/// A parameter of a batch handler after its events: [`BatchContext`] or [`State<T>`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a batch handler parameter",
    label = "not a batch extractor",
    note = "after the events, a batch handler takes only `BatchContext` (per-message contexts are `ctx[i]`) and `State<T>`"
)]
pub trait FromBatchContext: Sized + Send + 'static {
    /// Takes the value from the batch's context.
    fn from_batch_context(ctx: &BatchContext) -> std::result::Result<Self, HandlerError>;

    /// Appends the state types this extractor needs, checked when the runtime is built.
    fn requirements(_out: &mut Vec<Requirement>) {}
}

impl FromBatchContext for BatchContext {
    fn from_batch_context(ctx: &BatchContext) -> std::result::Result<Self, HandlerError> {
        Ok(ctx.clone())
    }
}

impl<T: Clone + Send + Sync + 'static> FromBatchContext for State<T> {
    fn from_batch_context(ctx: &BatchContext) -> std::result::Result<Self, HandlerError> {
        ctx.state::<T>().map(State).ok_or_else(|| {
            HandlerError::permanent(format!(
                "state `{}` was not added to the runtime",
                std::any::type_name::<T>()
            ))
        })
    }

    fn requirements(out: &mut Vec<Requirement>) {
        out.push(Requirement {
            type_id: TypeId::of::<T>(),
            type_name: std::any::type_name::<T>(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(failures: Vec<Option<HandlerError>>) -> Vec<Option<String>> {
        failures
            .into_iter()
            .map(|f| f.map(|e| e.to_string()))
            .collect()
    }

    #[test]
    fn named_indices_fail_alone() {
        let e = BatchError::new().with(1, "one").with(3, "three");
        assert_eq!(
            reasons(e.into_failures(4)),
            [None, Some("one".into()), None, Some("three".into())]
        );
    }

    #[test]
    fn a_plain_error_fails_every_message() {
        let e: BatchError = HandlerError::permanent("down").into();
        let failures = e.into_failures(3);
        assert!(
            failures
                .iter()
                .all(|f| f.as_ref().is_some_and(|e| !e.is_retryable()))
        );
        assert_eq!(reasons(failures)[2].as_deref(), Some("down"));
    }

    #[test]
    fn an_index_past_the_end_is_ignored() {
        let e = BatchError::new().with(9, "nine");
        assert!(reasons(e.into_failures(2)).iter().all(Option::is_none));
    }

    #[test]
    fn an_empty_error_is_a_success() {
        assert!(BatchError::new().into_result().is_ok());
        assert!(BatchError::new().with(0, "x").into_result().is_err());
    }
}
