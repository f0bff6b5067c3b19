//! The wire envelope: how an event becomes the fields of a stream entry, and back.
//!
//! The format is documented for other languages in `docs/WIRE.md`. This module does no I/O.

mod decode;
mod error;
mod event_id;
mod v2;

use std::collections::BTreeMap;

use uuid::Uuid;

pub use decode::{MAX_NESTING, decode_data, decode_event, event_type_of};
pub use error::{DecodeError, EncodeError, EncodeProblem};
pub(crate) use event_id::new_event_id;
pub use v2::{FORMAT_V2, MAX_SERVICE_LEN};

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
    /// v2: the separator between the event type and the version in the event field's name
    /// (`asset_created@1`). Never part of an event type or of a v1 field name.
    pub const V2_SEPARATOR: u8 = b'@';
    /// v2, in errors only: the event field's name (`<event_type>@<version>`).
    pub const EVENT_FIELD: &str = "<event_type>@<version>";
    /// v2, in errors only: the binary header at the start of the event field's value.
    pub const HEADER: &str = "header";
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
        let event_id = new_event_id();
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
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    ms.saturating_add_signed(crate::fault::clock_offset_ms())
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

/// The most fields an envelope has: every field of [`field`] (a v1 entry).
const MAX_FIELDS: usize = 10;

/// Which layout a publisher writes (readers accept both; see `docs/WIRE.md`).
///
/// ```
/// use opsc_events_runtime::envelope::WireFormat;
///
/// assert_eq!(WireFormat::default(), WireFormat::V2);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WireFormat {
    /// One field per entry: `<event_type>@<version>` → binary header and payload.
    #[default]
    V2,
    /// The first layout: eight to ten text fields (`event_type`, `version`, `schema`, ...,
    /// `data`). Only for a rolling upgrade, while some readers of the fleet predate v2.
    V1,
}

/// An event encoded as stream entry fields, ready for `XADD`.
///
/// Names and values are written back to back into one buffer (one allocation per event), with
/// the end offsets of each name and value kept aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedEvent {
    buf: Vec<u8>,
    /// `(end of the name, end of the value)` in `buf`; the first `len` are in use.
    ends: [(u32, u32); MAX_FIELDS],
    len: u8,
    /// Where the current field's name ends (set by `begin_field`).
    name_end: u32,
}

/// Offsets into an encoded event are `u32`: Redis refuses values above 512 MB long before.
fn offset(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl EncodedEvent {
    fn with_capacity(bytes: usize) -> Self {
        EncodedEvent {
            buf: Vec::with_capacity(bytes),
            ends: [(0, 0); MAX_FIELDS],
            len: 0,
            name_end: 0,
        }
    }

    /// Starts a field: its name is written, its value follows in `buf` until `end_field`.
    fn begin_field(&mut self, name: &str) {
        self.buf.extend_from_slice(name.as_bytes());
        self.name_end = offset(self.buf.len());
    }

    /// Ends the value written since `begin_field`.
    fn end_field(&mut self) {
        self.ends[usize::from(self.len)] = (self.name_end, offset(self.buf.len()));
        self.len += 1;
    }

    fn push(&mut self, name: &str, value: &[u8]) {
        self.begin_field(name);
        self.buf.extend_from_slice(value);
        self.end_field();
    }

    fn push_decimal(&mut self, name: &str, n: u64) {
        self.begin_field(name);
        write_decimal(&mut self.buf, n);
        self.end_field();
    }

    fn push_uuid(&mut self, name: &str, id: Uuid) {
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        self.push(name, id.hyphenated().encode_lower(&mut text).as_bytes());
    }

    /// The fields in wire order: `(name, value)`.
    pub fn fields(&self) -> impl ExactSizeIterator<Item = (&str, &[u8])> + '_ {
        let mut start = 0usize;
        self.ends[..usize::from(self.len)]
            .iter()
            .map(move |&(name_end, value_end)| {
                let (name_end, value_end) = (name_end as usize, value_end as usize);
                // Names are only ever written from `&str`.
                let name = std::str::from_utf8(&self.buf[start..name_end]).unwrap_or_default();
                let value = &self.buf[name_end..value_end];
                start = value_end;
                (name, value)
            })
    }

    /// Rebuilds an encoded event from its fields, as [`fields`](Self::fields) listed them (an
    /// outbox row holds them until its relay appends them); `None` for more fields than an
    /// envelope has or a field too large for a stream entry.
    #[doc(hidden)]
    pub fn from_fields<'a>(
        fields: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Option<EncodedEvent> {
        let mut e = EncodedEvent::with_capacity(0);
        for (name, value) in fields {
            if usize::from(e.len) == MAX_FIELDS
                || e.buf
                    .len()
                    .saturating_add(name.len())
                    .saturating_add(value.len())
                    > u32::MAX as usize
            {
                return None;
            }
            e.push(name, value);
        }
        Some(e)
    }

    /// The value of one field.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// The number of fields.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// The total size of the names and values, in bytes.
    pub(crate) fn byte_len(&self) -> usize {
        self.buf.len()
    }
}

/// Appends `n` in decimal ASCII.
pub(crate) fn write_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// The fingerprint as 16 lowercase hex digits.
fn hex16(n: u64) -> [u8; 16] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = HEX[((n >> (60 - 4 * i)) & 0xf) as usize];
    }
    out
}

/// Encodes `event` with `meta` into the fields of one stream entry in the current wire format
/// (v2: one field, see `docs/WIRE.md`).
pub fn encode<E: Event>(event: &E, meta: &Metadata) -> Result<EncodedEvent, EncodeError> {
    encode_parts(event, &meta.as_parts(), WireFormat::V2)
}

/// Encodes `event` with `meta` in the given wire format (v1 only for mixed fleets during an
/// upgrade).
pub fn encode_as<E: Event>(
    event: &E,
    meta: &Metadata,
    format: WireFormat,
) -> Result<EncodedEvent, EncodeError> {
    encode_parts(event, &meta.as_parts(), format)
}

/// [`Metadata`] by reference, so that a publisher need not build one (and copy its service
/// name) per event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MetaParts<'a> {
    pub(crate) event_id: Uuid,
    pub(crate) service: &'a str,
    pub(crate) timestamp_ms: u64,
    pub(crate) correlation_id: Uuid,
    pub(crate) causation_id: Option<Uuid>,
    pub(crate) headers: &'a Headers,
}

impl Metadata {
    pub(crate) fn as_parts(&self) -> MetaParts<'_> {
        MetaParts {
            event_id: self.event_id,
            service: &self.service,
            timestamp_ms: self.timestamp_ms,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            headers: &self.headers,
        }
    }
}

/// [`encode`] from metadata parts.
pub(crate) fn encode_parts<E: Event>(
    event: &E,
    meta: &MetaParts<'_>,
    format: WireFormat,
) -> Result<EncodedEvent, EncodeError> {
    match format {
        WireFormat::V2 => v2::encode(event, meta),
        WireFormat::V1 => encode_v1(event, meta),
    }
}

fn encode_v1<E: Event>(event: &E, meta: &MetaParts<'_>) -> Result<EncodedEvent, EncodeError> {
    let error = |source| EncodeError {
        event_type: E::NAME,
        problem: EncodeProblem::Serialize(source),
    };
    // The metadata takes about 160 bytes; a small payload fits in the rest without a reallocation.
    let mut entry = EncodedEvent::with_capacity(256 + 80);
    entry.push(field::EVENT_TYPE, E::NAME.as_bytes());
    entry.push_decimal(field::VERSION, u64::from(E::VERSION));
    entry.push(field::SCHEMA, &hex16(E::FINGERPRINT));
    entry.push_uuid(field::EVENT_ID, meta.event_id);
    entry.push(field::SERVICE, meta.service.as_bytes());
    entry.push_decimal(field::TIMESTAMP, meta.timestamp_ms);
    entry.push_uuid(field::CORRELATION_ID, meta.correlation_id);
    if let Some(cause) = meta.causation_id {
        entry.push_uuid(field::CAUSATION_ID, cause);
    }
    if !meta.headers.is_empty() {
        entry.begin_field(field::HEADERS);
        rmp_serde::encode::write(&mut entry.buf, meta.headers).map_err(error)?;
        entry.end_field();
    }
    entry.begin_field(field::DATA);
    rmp_serde::encode::write_named(&mut entry.buf, event).map_err(error)?;
    entry.end_field();
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex16_matches_format() {
        for n in [0, 1, 0xdead_beef, u64::MAX, 0x0123_4567_89ab_cdef] {
            assert_eq!(hex16(n).as_slice(), format!("{n:016x}").as_bytes());
        }
    }

    #[test]
    fn decimals_match_to_string() {
        let mut e = EncodedEvent::with_capacity(0);
        let ns = [0, 7, 10, 65_535, 1_700_000_000_000, u64::MAX];
        for n in ns {
            e.push_decimal("n", n);
        }
        assert!(e.fields().all(|(name, _)| name == "n"));
        let got: Vec<&[u8]> = e.fields().map(|(_, v)| v).collect();
        let want: Vec<String> = ns.iter().map(u64::to_string).collect();
        assert_eq!(got, want.iter().map(|s| s.as_bytes()).collect::<Vec<_>>());
    }
}
