//! Observing what becomes of each delivery: for tests (`opsc_events::testing`), metrics bridges
//! and audit logs.

use std::fmt;
use std::sync::Arc;

use crate::message_id::MessageId;

/// What became of one delivery to one handler.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Observation {
    /// The handler's fn name.
    pub handler: &'static str,
    /// The handler's consumer group.
    pub group: String,
    /// The stream.
    pub stream: &'static str,
    /// The entry id.
    pub message_id: MessageId,
    /// The attempt (from 1).
    pub attempt: u32,
    /// The result.
    pub outcome: Outcome,
}

/// The result of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The handler succeeded.
    Handled,
    /// The entry was of an event type this handler does not take; acknowledged.
    Skipped,
    /// The attempt failed; another is scheduled.
    Retrying {
        /// The dead-letter reason it would have (`handler_error`, `panic`, `timeout`).
        reason: &'static str,
        /// The error text.
        error: String,
    },
    /// No attempt left (or not retryable): dead-lettered, or dropped when dead letters are off.
    GaveUp {
        /// The dead-letter reason.
        reason: &'static str,
        /// The error text.
        error: String,
        /// False when the handler has `dead_letter = false`.
        dead_lettered: bool,
    },
}

/// A callback given every observation; set with `RuntimeBuilder::observer`.
#[derive(Clone)]
pub(crate) struct Observer(pub(crate) Arc<dyn Fn(&Observation) + Send + Sync>);

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Observer")
    }
}
