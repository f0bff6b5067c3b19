//! Runtime of opsc-events: schemas and fingerprints, the envelope codec, transports, the
//! publisher and the runtime builder.
//!
//! Users depend on the `opsc-events` facade crate, which re-exports what is public here together
//! with the derive macros.

pub mod envelope;
pub mod error;
pub mod event;
pub mod keys;
pub mod message_id;
pub mod publisher;
pub mod runtime;
pub mod schema;
mod transport;

#[doc(hidden)]
pub mod private;

pub use envelope::{DecodeError, EncodeError, Envelope, Headers, Metadata};
pub use error::{ConfigError, Error, Result};
pub use event::Event;
pub use message_id::MessageId;
pub use publisher::{PublishOptions, Publisher};
pub use runtime::{Runtime, RuntimeBuilder};
pub use schema::{EventSchema, Schema};
