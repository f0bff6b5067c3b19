//! Typed errors of the envelope codec.

/// An entry that could not be turned into an event. Each variant names the offending field or
/// value; none of them is ever a panic, whatever the bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A required envelope field is absent.
    #[error("entry has no `{field}` field")]
    MissingField {
        /// The wire name of the field.
        field: &'static str,
    },
    /// An envelope field is present but malformed (not UTF-8, not a number, not a UUID, ...).
    #[error("entry field `{field}` is invalid: {reason}")]
    InvalidField {
        /// The wire name of the field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A field that must hold MessagePack (`data`, `headers`) does not hold one complete value.
    #[error("entry field `{field}` is not MessagePack: {reason}")]
    NotMessagePack {
        /// The wire name of the field.
        field: &'static str,
        /// The MessagePack decoder's complaint.
        reason: String,
    },
    /// The entry's `event_type` is not one the decoder knows.
    #[error("unknown event type `{event_type}` (expected {expected})")]
    UnknownEventType {
        /// The `event_type` found.
        event_type: String,
        /// The type(s) the decoder knows, for the message.
        expected: String,
    },
    /// The event type is known, but not at this version.
    #[error("event `{event_type}` version {version} has no decoder (known versions: {known:?})")]
    UnknownVersion {
        /// The event type.
        event_type: String,
        /// The version found.
        version: u16,
        /// The versions that can be decoded.
        known: Vec<u16>,
    },
    /// The version is known, but the payload was written with another schema.
    #[error(
        "event `{event_type}` version {version} has schema fingerprint {found:016x}, expected {expected:016x}"
    )]
    FingerprintMismatch {
        /// The event type.
        event_type: String,
        /// The version.
        version: u16,
        /// The fingerprint this build knows for the version.
        expected: u64,
        /// The fingerprint found on the entry.
        found: u64,
    },
    /// `data` is valid MessagePack but does not fit the event type.
    #[error("data of event `{event_type}` version {version} does not fit its type: {reason}")]
    DataMismatch {
        /// The event type.
        event_type: String,
        /// The version.
        version: u16,
        /// The deserializer's complaint.
        reason: String,
    },
}

impl DecodeError {
    /// True when the entry was written with a schema this build cannot decode (unknown version
    /// or fingerprint): dead-lettered as `schema_mismatch` rather than `decode_error`.
    pub fn is_schema_mismatch(&self) -> bool {
        matches!(
            self,
            DecodeError::UnknownVersion { .. } | DecodeError::FingerprintMismatch { .. }
        )
    }
}

/// An event that could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode event `{event_type}`: {problem}")]
pub struct EncodeError {
    /// The event type.
    pub event_type: &'static str,
    /// What went wrong.
    #[source]
    pub problem: EncodeProblem,
}

/// Why an event could not be encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeProblem {
    /// The payload or the headers could not be serialized.
    #[error(transparent)]
    Serialize(#[from] rmp_serde::encode::Error),
    /// A metadata value does not fit its place in the v2 header.
    #[error("{what} is {len} bytes long; at most {max} fit")]
    TooLong {
        /// What was too long (`service`, `headers`).
        what: &'static str,
        /// Its length.
        len: usize,
        /// The most the format holds.
        max: usize,
    },
}
