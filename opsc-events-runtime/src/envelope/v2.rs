//! Wire format v2: one field per entry (`docs/WIRE.md` has the byte-level contract).
//!
//! ```text
//! name   <event_type>@<version>            e.g. asset_created@1 (version: decimal, no leading 0)
//! value  format      u8      0x02
//!        header_len  u32 BE  bytes of the header that follows (the payload starts after it)
//!        header      flags u8, fingerprint u64 BE, event id [16], timestamp ms u64 BE,
//!                    service (u8 length + UTF-8),
//!                    [correlation id [16]]  if flags & 0x01 (else: the event id)
//!                    [causation id [16]]    if flags & 0x02
//!                    [headers: u32 BE length + MessagePack map of str → str]  if flags & 0x04
//!                    (bytes after the fields a reader knows, up to header_len: ignored)
//!        payload     MessagePack, the rest of the value
//! ```
//!
//! Why one field: Redis and the client pay per field of an entry, and the type and version in
//! the name are enough to skip another type's entry, and to tell in `redis-cli` what an entry
//! is (measurements in `docs/DESIGN.md`).

use uuid::Uuid;

use super::{
    DecodeError, EncodeError, EncodeProblem, EncodedEvent, Headers, MetaParts, field, offset,
    write_decimal,
};
use crate::event::Event;

/// The first byte of a v2 event field's value.
pub const FORMAT_V2: u8 = 0x02;
/// The longest service name the v2 header holds (its length is one byte).
pub const MAX_SERVICE_LEN: usize = 255;

const FLAG_CORRELATION: u8 = 0x01;
const FLAG_CAUSATION: u8 = 0x02;
const FLAG_HEADERS: u8 = 0x04;
/// Format byte and header length.
const PREFIX: usize = 1 + 4;
/// Flags, fingerprint, event id, timestamp and the service's length byte.
const FIXED: usize = 1 + 8 + 16 + 8 + 1;

pub(super) fn encode<E: Event>(
    event: &E,
    meta: &MetaParts<'_>,
) -> Result<EncodedEvent, EncodeError> {
    let error = |problem| EncodeError {
        event_type: E::NAME,
        problem,
    };
    let service = meta.service.as_bytes();
    if service.len() > MAX_SERVICE_LEN {
        return Err(error(EncodeProblem::TooLong {
            what: "the service name",
            len: service.len(),
            max: MAX_SERVICE_LEN,
        }));
    }
    // Name, prefix, fixed header, service and one optional id; a ~100-byte payload then fits
    // without a reallocation.
    let mut e = EncodedEvent::with_capacity(E::NAME.len() + 6 + PREFIX + FIXED + 16 + 160);
    e.buf.extend_from_slice(E::NAME.as_bytes());
    e.buf.push(field::V2_SEPARATOR);
    write_decimal(&mut e.buf, u64::from(E::VERSION));
    e.name_end = offset(e.buf.len());

    e.buf.push(FORMAT_V2);
    let len_at = e.buf.len();
    e.buf.extend_from_slice(&[0; 4]);
    let mut flags = 0;
    if meta.correlation_id != meta.event_id {
        flags |= FLAG_CORRELATION;
    }
    if meta.causation_id.is_some() {
        flags |= FLAG_CAUSATION;
    }
    if !meta.headers.is_empty() {
        flags |= FLAG_HEADERS;
    }
    e.buf.push(flags);
    e.buf.extend_from_slice(&E::FINGERPRINT.to_be_bytes());
    e.buf.extend_from_slice(meta.event_id.as_bytes());
    e.buf.extend_from_slice(&meta.timestamp_ms.to_be_bytes());
    // Checked above: at most 255.
    e.buf.push(service.len() as u8);
    e.buf.extend_from_slice(service);
    if flags & FLAG_CORRELATION != 0 {
        e.buf.extend_from_slice(meta.correlation_id.as_bytes());
    }
    if let Some(cause) = meta.causation_id {
        e.buf.extend_from_slice(cause.as_bytes());
    }
    if flags & FLAG_HEADERS != 0 {
        let at = e.buf.len();
        e.buf.extend_from_slice(&[0; 4]);
        rmp_serde::encode::write(&mut e.buf, meta.headers)
            .map_err(|s| error(EncodeProblem::Serialize(s)))?;
        let len = e.buf.len() - at - 4;
        let len = u32::try_from(len).map_err(|_| {
            error(EncodeProblem::TooLong {
                what: "the headers",
                len,
                max: u32::MAX as usize,
            })
        })?;
        e.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }
    let header_len = e.buf.len() - len_at - 4;
    // The header holds at most 255 + 2 × 16 + 34 bytes and the headers' u32 length.
    let header_len = u32::try_from(header_len).unwrap_or(u32::MAX);
    e.buf[len_at..len_at + 4].copy_from_slice(&header_len.to_be_bytes());
    rmp_serde::encode::write_named(&mut e.buf, event)
        .map_err(|s| error(EncodeProblem::Serialize(s)))?;
    e.end_field();
    Ok(e)
}

/// True when `name` is a v2 event field's name (it holds the separator, which no event type
/// and no other field name contains).
pub(super) fn is_event_field(name: &[u8]) -> bool {
    name.contains(&field::V2_SEPARATOR)
}

/// The event type part of a v2 event field's name, unchecked (for a cheap type comparison).
pub(super) fn type_part(name: &[u8]) -> &[u8] {
    match name.iter().position(|&b| b == field::V2_SEPARATOR) {
        Some(at) => &name[..at],
        None => name,
    }
}

fn bad_name(name: &[u8], expected: &str) -> DecodeError {
    let mut shown = String::from_utf8_lossy(&name[..name.len().min(64)]).into_owned();
    if name.len() > 64 {
        shown.push_str("...");
    }
    DecodeError::InvalidField {
        field: field::EVENT_FIELD,
        reason: format!("`{shown}` is not {expected}"),
    }
}

/// Splits `<event_type>@<version>`: the type is non-empty UTF-8 without `@`, the version is
/// decimal `1..=65535` without leading zeros. Returns the type and the version.
pub(super) fn parse_name(name: &[u8]) -> Result<(&str, u16), DecodeError> {
    const EXPECTED: &str = "`<event_type>@<version>` with a version in 1..=65535";
    let Some(at) = name.iter().position(|&b| b == field::V2_SEPARATOR) else {
        return Err(bad_name(name, EXPECTED));
    };
    let (ty, version) = (&name[..at], &name[at + 1..]);
    let ty = match std::str::from_utf8(ty) {
        Ok(ty) if !ty.is_empty() => ty,
        _ => return Err(bad_name(name, EXPECTED)),
    };
    if version.is_empty()
        || version.len() > 5
        || version[0] == b'0'
        || !version.iter().all(u8::is_ascii_digit)
    {
        return Err(bad_name(name, EXPECTED));
    }
    let v = version
        .iter()
        .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    let v = u16::try_from(v).map_err(|_| bad_name(name, EXPECTED))?;
    Ok((ty, v))
}

/// The parsed header of a v2 value; the service borrowed from it, the payload's start.
#[derive(Debug)]
pub(super) struct Header<'a> {
    pub(super) fingerprint: u64,
    pub(super) event_id: Uuid,
    pub(super) timestamp_ms: u64,
    pub(super) service: &'a str,
    pub(super) correlation_id: Uuid,
    pub(super) causation_id: Option<Uuid>,
    pub(super) headers: Headers,
    /// Where the payload starts.
    pub(super) payload: usize,
}

fn header_error(reason: String) -> DecodeError {
    DecodeError::InvalidField {
        field: field::HEADER,
        reason,
    }
}

/// A cursor over the header bytes that reports truncation instead of panicking.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
    end: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        if self.end - self.at < n {
            return Err(header_error(format!(
                "truncated: {what} needs {n} bytes at header offset {}, the header has {}",
                self.at - PREFIX,
                self.end - PREFIX
            )));
        }
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }
}

/// Parses the header at the start of a v2 event field's value.
pub(super) fn parse_value(value: &[u8]) -> Result<Header<'_>, DecodeError> {
    match value.first() {
        None => return Err(header_error("the value is empty".to_owned())),
        Some(&FORMAT_V2) => {}
        Some(&other) => {
            return Err(header_error(format!(
                "unsupported format byte 0x{other:02x} (this reader knows 0x02)"
            )));
        }
    }
    if value.len() < PREFIX {
        return Err(header_error(format!(
            "truncated: {} bytes, the format byte and header length take 5",
            value.len()
        )));
    }
    let mut len = [0u8; 4];
    len.copy_from_slice(&value[1..PREFIX]);
    let header_len = u32::from_be_bytes(len) as usize;
    if header_len > value.len() - PREFIX {
        return Err(header_error(format!(
            "header length {header_len} exceeds the {} bytes after it",
            value.len() - PREFIX
        )));
    }
    let mut c = Cursor {
        bytes: value,
        at: PREFIX,
        end: PREFIX + header_len,
    };
    let [flags] = c.array::<1>("the flags")?;
    let fingerprint = u64::from_be_bytes(c.array("the fingerprint")?);
    let event_id = Uuid::from_bytes(c.array("the event id")?);
    let timestamp_ms = u64::from_be_bytes(c.array("the timestamp")?);
    let [service_len] = c.array::<1>("the service length")?;
    let service = c.take(usize::from(service_len), "the service")?;
    let service = std::str::from_utf8(service).map_err(|_| DecodeError::InvalidField {
        field: field::SERVICE,
        reason: "not UTF-8".to_owned(),
    })?;
    let correlation_id = if flags & FLAG_CORRELATION != 0 {
        Uuid::from_bytes(c.array("the correlation id")?)
    } else {
        event_id
    };
    let causation_id = if flags & FLAG_CAUSATION != 0 {
        Some(Uuid::from_bytes(c.array("the causation id")?))
    } else {
        None
    };
    let headers = if flags & FLAG_HEADERS != 0 {
        let n = u32::from_be_bytes(c.array("the headers length")?) as usize;
        let bytes = c.take(n, "the headers")?;
        super::decode::from_msgpack::<Headers>(bytes).map_err(|reason| {
            DecodeError::NotMessagePack {
                field: field::HEADERS,
                reason,
            }
        })?
    } else {
        Headers::new()
    };
    Ok(Header {
        fingerprint,
        event_id,
        timestamp_ms,
        service,
        correlation_id,
        causation_id,
        headers,
        payload: PREFIX + header_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            parse_name(b"asset_created@1").ok(),
            Some(("asset_created", 1))
        );
        assert_eq!(parse_name(b"a@65535").ok(), Some(("a", 65535)));
        for bad in [
            &b"asset_created"[..],
            b"@1",
            b"a@",
            b"a@0",
            b"a@01",
            b"a@65536",
            b"a@1x",
            b"a@@1",
            b"a@1@2",
            b"\xff@1",
            b"a@123456",
        ] {
            assert!(
                parse_name(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn truncated_headers_are_errors() {
        for v in [
            &[][..],
            &[2],
            &[3, 0, 0, 0, 0],
            &[2, 0, 0, 0, 9, 0],
            &[2, 0, 0, 0, 0],
        ] {
            assert!(parse_value(v).is_err(), "{v:?}");
        }
    }
}
