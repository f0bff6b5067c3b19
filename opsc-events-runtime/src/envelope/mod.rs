//! The wire envelope: how an event becomes the fields of a stream entry, and back.
//!
//! The format is documented for other languages in `docs/WIRE.md`. This module does no I/O.

mod decode;
mod error;

use std::collections::BTreeMap;

use uuid::Uuid;

pub use decode::{MAX_NESTING, decode_data, decode_event};
pub use error::{DecodeError, EncodeError};

use crate::event::Event;

/// Wire names of the envelope fields.
pub mod field {
    /// The event type name.
    pub const EVENT_TYPE: &str = "event_type";
    /// The schema version, decimal.
    pub const VERSION: &str = "version";
    /// The schema fingerprint, 16 lowercase hex digits.
    pub const SCHEMA: &str = "schema";
    /// The event id, a hyphenated UUIDv7.
    pub const EVENT_ID: &str = "event_id";
    /// The publishing service.
    pub const SERVICE: &str = "service";
    /// Milliseconds since the epoch at publish, decimal.
    pub const TIMESTAMP: &str = "timestamp";
    /// The id of the first event of the conversation, a hyphenated UUID.
    pub const CORRELATION_ID: &str = "correlation_id";
    /// The id of the event that caused this one (optional), a hyphenated UUID.
    pub const CAUSATION_ID: &str = "causation_id";
    /// A MessagePack map of string to string (optional).
    pub const HEADERS: &str = "headers";
    /// The payload, a MessagePack map with fields by name.
    pub const DATA: &str = "data";
}

/// Free-form string headers carried with an event (`traceparent`, tenant ids, ...).
pub type Headers = BTreeMap<String, String>;

/// Everything about an event but its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// Unique id of this event (UUIDv7, time-ordered); the deduplication key for handlers.
    pub event_id: Uuid,
    /// The service that published it.
    pub service: String,
    /// Milliseconds since the epoch at publish.
    pub timestamp_ms: u64,
    /// The id shared by every event of one conversation (the first event's id by default).
    pub correlation_id: Uuid,
    /// The id of the event whose handler published this one.
    pub causation_id: Option<Uuid>,
    /// Headers.
    pub headers: Headers,
}

impl Metadata {
    /// Metadata for a new event with no cause: a fresh UUIDv7 that is also its correlation id.
    pub fn new(service: impl Into<String>) -> Self {
        let event_id = Uuid::now_v7();
        Metadata {
            event_id,
            service: service.into(),
            timestamp_ms: now_ms(),
            correlation_id: event_id,
            causation_id: None,
            headers: Headers::new(),
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A decoded envelope: the metadata fields checked and parsed, the payload still MessagePack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The `event_type` field.
    pub event_type: String,
    /// The `version` field.
    pub version: u16,
    /// The `schema` field.
    pub fingerprint: u64,
    /// The other metadata fields.
    pub meta: Metadata,
    /// The `data` field: the payload as MessagePack.
    pub data: Vec<u8>,
}

/// An event encoded as stream entry fields, ready for `XADD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedEvent {
    fields: Vec<(&'static str, Vec<u8>)>,
}

impl EncodedEvent {
    /// The fields in wire order: `(name, value)`.
    pub fn fields(&self) -> impl ExactSizeIterator<Item = (&'static str, &[u8])> + '_ {
        self.fields.iter().map(|(k, v)| (*k, v.as_slice()))
    }

    /// The value of one field.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// Encodes `event` with `meta` into stream entry fields (the payload as a MessagePack map with
/// fields by name).
pub fn encode<E: Event>(event: &E, meta: &Metadata) -> Result<EncodedEvent, EncodeError> {
    let data = rmp_serde::to_vec_named(event).map_err(|source| EncodeError {
        event_type: E::NAME,
        source,
    })?;
    let mut fields = Vec::with_capacity(10);
    fields.push((field::EVENT_TYPE, E::NAME.as_bytes().to_vec()));
    fields.push((field::VERSION, E::VERSION.to_string().into_bytes()));
    fields.push((
        field::SCHEMA,
        format!("{:016x}", E::FINGERPRINT).into_bytes(),
    ));
    fields.push((
        field::EVENT_ID,
        meta.event_id.hyphenated().to_string().into_bytes(),
    ));
    fields.push((field::SERVICE, meta.service.as_bytes().to_vec()));
    fields.push((field::TIMESTAMP, meta.timestamp_ms.to_string().into_bytes()));
    fields.push((
        field::CORRELATION_ID,
        meta.correlation_id.hyphenated().to_string().into_bytes(),
    ));
    if let Some(cause) = meta.causation_id {
        fields.push((
            field::CAUSATION_ID,
            cause.hyphenated().to_string().into_bytes(),
        ));
    }
    if !meta.headers.is_empty() {
        let headers = rmp_serde::to_vec(&meta.headers).map_err(|source| EncodeError {
            event_type: E::NAME,
            source,
        })?;
        fields.push((field::HEADERS, headers));
    }
    fields.push((field::DATA, data));
    Ok(EncodedEvent { fields })
}
