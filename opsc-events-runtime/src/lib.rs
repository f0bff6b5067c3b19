//! Runtime of opsc-events: schemas and fingerprints, the envelope codec, transports, the
//! publisher and the runtime builder.
//!
//! Users depend on the `opsc-events` facade crate, which re-exports what is public here together
//! with the derive macros.

pub mod acl;
pub mod cli;
mod consumer;
pub mod contracts;
pub mod dead_letter;
pub mod delayed;
pub mod envelope;
pub mod error;
pub mod event;
#[doc(hidden)]
pub mod fault;
pub mod handler;
pub mod health;
pub mod info;
pub mod keys;
pub mod message_id;
pub mod metrics_stream;
pub mod observe;
#[cfg(feature = "otel")]
mod otel;
pub mod priority;
pub mod publisher;
mod registry;
mod retry;
pub mod runtime;
pub mod schema;
pub mod testing;
mod transport;
pub mod trim;
mod util;

#[doc(hidden)]
pub mod private;
// Where the derive macros' code finds its helpers for the runtime's own events
// (`#[event(crate = "crate")]`).
#[doc(hidden)]
pub use private as __private;

pub use dead_letter::{DeadLetter, DeadLetterFilter, DeadLetterReason, DeadLetters};
pub use envelope::{DecodeError, EncodeError, Envelope, Headers, Metadata, WireFormat};
pub use error::{ConfigError, Error, Result};
pub use event::Event;
pub use handler::{BatchContext, BatchError, Context, FromBatchContext, HandlerError, State};
pub use info::{Entry, GroupInfo, StreamInfo};
pub use message_id::MessageId;
pub use priority::Priority;
pub use publisher::{PublishOptions, Publisher};
pub use runtime::{Runtime, RuntimeBuilder};
pub use schema::{EventSchema, Schema};
pub use transport::memory::MemoryBroker;
pub use trim::{StreamLimits, TrimReport};
