//! Dead letters: what they hold, how they are selected, and the runtime's API over them.

mod api;

use std::fmt;
use std::str::FromStr;

pub use api::{DEFAULT_MAX_REPLAYS, DeadLetters};

use crate::envelope::{Envelope, event_type_of};
use crate::message_id::MessageId;

/// Why a message was dead-lettered (the `reason` field on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeadLetterReason {
    /// The handler returned an error on its last attempt.
    HandlerError,
    /// The handler returned `HandlerError::permanent`.
    Permanent,
    /// The last attempt ran past the handler's timeout.
    Timeout,
    /// The handler panicked on its last attempt.
    Panic,
    /// Attempts kept dying with their consumer process.
    Crashed,
    /// The entry or its payload could not be decoded.
    DecodeError,
    /// The entry was written with a version or schema this build cannot decode.
    SchemaMismatch,
    /// A reason written by a newer version of the framework.
    Other(String),
}

impl DeadLetterReason {
    /// The wire string.
    pub fn as_str(&self) -> &str {
        match self {
            DeadLetterReason::HandlerError => "handler_error",
            DeadLetterReason::Permanent => "permanent",
            DeadLetterReason::Timeout => "timeout",
            DeadLetterReason::Panic => "panic",
            DeadLetterReason::Crashed => "crashed",
            DeadLetterReason::DecodeError => "decode_error",
            DeadLetterReason::SchemaMismatch => "schema_mismatch",
            DeadLetterReason::Other(s) => s,
        }
    }
}

impl fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeadLetterReason {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "handler_error" => DeadLetterReason::HandlerError,
            "permanent" => DeadLetterReason::Permanent,
            "timeout" => DeadLetterReason::Timeout,
            "panic" => DeadLetterReason::Panic,
            "crashed" => DeadLetterReason::Crashed,
            "decode_error" => DeadLetterReason::DecodeError,
            "schema_mismatch" => DeadLetterReason::SchemaMismatch,
            other => DeadLetterReason::Other(other.to_owned()),
        })
    }
}

/// One dead-lettered message, fields named as on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The dead-letter stream entry id.
    pub id: MessageId,
    /// The original entry's id in the event stream.
    pub original_id: MessageId,
    /// The stream name (e.g. `assets`).
    pub stream: String,
    /// The consumer group that failed it.
    pub group: String,
    /// The handler's full path.
    pub handler: String,
    /// The original event type (empty if the entry had none).
    pub event_type: String,
    /// The original version (0 if missing or invalid).
    pub version: u16,
    /// Why.
    pub reason: DeadLetterReason,
    /// The last error text or panic message.
    pub error: String,
    /// Attempts made.
    pub attempts: u32,
    /// Times it was replayed before.
    pub replays: u32,
    /// Milliseconds since the epoch of the first failure.
    pub first_failed_at: u64,
    /// Milliseconds since the epoch of the last failure.
    pub failed_at: u64,
    /// The original payload (MessagePack), empty if the entry had none or its envelope could
    /// not be parsed (the raw original fields are in `fields`).
    pub data: Vec<u8>,
    /// The priority lane the original entry was in (`priority` on the wire, written only for
    /// lanes other than `normal`); a replay puts the letter back into that lane's retry
    /// schedule.
    pub priority: crate::Priority,
    /// Every field of the dead-letter entry, raw; the original fields of an entry with more
    /// than 1,000 of them, which a letter on Redis keeps packed in `original_fields`, appear
    /// unpacked, in their place.
    pub fields: Vec<(String, Vec<u8>)>,
}

impl DeadLetter {
    /// Parses a dead-letter entry; missing or malformed fields become empty/zero values, so a
    /// letter written by hand or by another version can still be listed and purged.
    pub(crate) fn from_fields(id: MessageId, fields: Vec<(Vec<u8>, Vec<u8>)>) -> DeadLetter {
        let fields: Vec<(String, Vec<u8>)> = expand_packed(fields)
            .into_iter()
            .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), v))
            .collect();
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_slice())
        };
        let text = |name: &str| {
            get(name)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        let num = |name: &str| text(name).parse::<u64>().unwrap_or(0);
        // The original event's identity and payload, whichever wire format it was written in
        // (the letter's own fields are unknown to the envelope parser and ignored by it).
        let borrowed = || fields.iter().map(|(k, v)| (k.as_bytes(), v.as_slice()));
        let (event_type, version, data) = match Envelope::from_fields(borrowed()) {
            Ok(env) => (env.event_type, env.version, env.data),
            Err(_) => (
                event_type_of(borrowed())
                    .map(|t| String::from_utf8_lossy(t).into_owned())
                    .unwrap_or_default(),
                text("version").parse().unwrap_or(0),
                get("data").map(<[u8]>::to_vec).unwrap_or_default(),
            ),
        };
        DeadLetter {
            id,
            original_id: text("original_id").parse().unwrap_or_default(),
            stream: text("stream"),
            group: text("group"),
            handler: text("handler"),
            event_type,
            version,
            reason: text("reason")
                .parse()
                .unwrap_or(DeadLetterReason::Other(String::new())),
            error: text("error"),
            attempts: u32::try_from(num("attempts")).unwrap_or(u32::MAX),
            replays: u32::try_from(num("replays")).unwrap_or(u32::MAX),
            first_failed_at: num("first_failed_at"),
            failed_at: num("failed_at"),
            data,
            priority: get("priority")
                .and_then(crate::Priority::from_wire)
                .unwrap_or_default(),
            fields,
        }
    }
}

/// Selects dead letters of one stream.
///
/// ```
/// use opsc_events_runtime::dead_letter::{DeadLetterFilter, DeadLetterReason};
///
/// let page = DeadLetterFilter::stream("assets")
///     .group("inventory.index_asset")
///     .reason(DeadLetterReason::Timeout)
///     .limit(50);
/// # let _ = page;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterFilter {
    pub(crate) stream: String,
    pub(crate) group: Option<String>,
    pub(crate) reason: Option<DeadLetterReason>,
    pub(crate) since: Option<u64>,
    pub(crate) until: Option<u64>,
    pub(crate) after: Option<MessageId>,
    pub(crate) limit: Option<usize>,
    pub(crate) ids: Option<std::collections::BTreeSet<MessageId>>,
}

impl DeadLetterFilter {
    /// Every dead letter of `stream`.
    pub fn stream(stream: impl Into<String>) -> Self {
        DeadLetterFilter {
            stream: stream.into(),
            group: None,
            reason: None,
            since: None,
            until: None,
            after: None,
            limit: None,
            ids: None,
        }
    }

    /// Only the letters with these dead-letter ids (one letter, or an operator's selection);
    /// an id that names no letter selects nothing. An empty set selects nothing.
    pub fn ids(mut self, ids: impl IntoIterator<Item = MessageId>) -> Self {
        self.ids = Some(ids.into_iter().collect());
        self
    }

    /// Only those failed by `group`.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Only those with this reason.
    pub fn reason(mut self, reason: DeadLetterReason) -> Self {
        self.reason = Some(reason);
        self
    }

    /// Only those dead-lettered at or after `ms` (milliseconds since the epoch).
    pub fn since(mut self, ms: u64) -> Self {
        self.since = Some(ms);
        self
    }

    /// Only those dead-lettered before `ms` (milliseconds since the epoch).
    pub fn until(mut self, ms: u64) -> Self {
        self.until = Some(ms);
        self
    }

    /// Only those after the dead-letter entry `id` (the last one of the previous page).
    pub fn after(mut self, id: MessageId) -> Self {
        self.after = Some(id);
        self
    }

    /// At most `n` (for `list`, default 100; `replay` and `purge` take every match unless set).
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    /// The stream name.
    pub fn stream_name(&self) -> &str {
        &self.stream
    }

    pub(crate) fn matches(&self, letter: &DeadLetter) -> bool {
        self.ids.as_ref().is_none_or(|ids| ids.contains(&letter.id))
            && self.group.as_ref().is_none_or(|g| *g == letter.group)
            && self.reason.as_ref().is_none_or(|r| *r == letter.reason)
            && self.since.is_none_or(|t| letter.failed_at >= t)
            && self.until.is_none_or(|t| letter.failed_at < t)
    }
}

/// `fields` with a packed `original_fields` (a MessagePack array of names and values, written
/// when an entry had too many fields to pass to `XADD` from a script) replaced by its content. A
/// packed value that cannot be read stays as it is.
fn expand_packed(fields: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<(Vec<u8>, Vec<u8>)> {
    if !fields.iter().any(|(k, _)| k == b"original_fields") {
        return fields;
    }
    let mut out = Vec::with_capacity(fields.len());
    for (k, v) in fields {
        match (k == b"original_fields")
            .then(|| unpack_pairs(&v))
            .flatten()
        {
            Some(pairs) => out.extend(pairs),
            None => out.push((k, v)),
        }
    }
    out
}

/// A MessagePack array of strings (or binaries) `[name, value, ...]` as pairs.
fn unpack_pairs(mut bytes: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    fn item(bytes: &mut &[u8]) -> Option<Vec<u8>> {
        let len = match bytes.first()? {
            0xc4..=0xc6 => rmp::decode::read_bin_len(bytes).ok()?,
            _ => rmp::decode::read_str_len(bytes).ok()?,
        };
        let len = usize::try_from(len).ok()?;
        if bytes.len() < len {
            return None;
        }
        let (head, rest) = bytes.split_at(len);
        *bytes = rest;
        Some(head.to_vec())
    }
    let n = rmp::decode::read_array_len(&mut bytes).ok()?;
    if n % 2 != 0 || usize::try_from(n).ok()? > bytes.len() {
        return None;
    }
    let mut pairs = Vec::with_capacity(n as usize / 2);
    for _ in 0..n / 2 {
        let k = item(&mut bytes)?;
        let v = item(&mut bytes)?;
        pairs.push((k, v));
    }
    bytes.is_empty().then_some(pairs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn packed_original_fields_are_unpacked_in_place() {
        let mut packed = Vec::new();
        rmp::encode::write_array_len(&mut packed, 4).unwrap();
        for s in ["a", "1", "b", "2"] {
            rmp::encode::write_str(&mut packed, s).unwrap();
        }
        let fields = vec![
            (b"original_fields".to_vec(), packed.clone()),
            (b"reason".to_vec(), b"decode_error".to_vec()),
        ];
        let out = expand_packed(fields);
        assert_eq!(
            out,
            vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b"2".to_vec()),
                (b"reason".to_vec(), b"decode_error".to_vec()),
            ]
        );
        // Damaged or odd: kept as it is, never a panic.
        for bad in [
            &packed[..packed.len() - 1],
            &[0x93, 0xa1, b'a'][..],
            &[0xff][..],
            &[][..],
        ] {
            let out = expand_packed(vec![(b"original_fields".to_vec(), bad.to_vec())]);
            assert_eq!(out, vec![(b"original_fields".to_vec(), bad.to_vec())]);
        }
    }
}
