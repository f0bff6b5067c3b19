//! Stream entry fields → [`Envelope`] → typed event.

use serde::de::{DeserializeOwned, IgnoredAny};
use uuid::Uuid;

use super::{DecodeError, Envelope, Headers, Metadata, field, v2};
use crate::event::{Event, UpcastChain, known_versions};

/// The envelope fields as found in one entry, before parsing.
#[derive(Default)]
struct Raw<'a> {
    event_type: Option<&'a [u8]>,
    version: Option<&'a [u8]>,
    schema: Option<&'a [u8]>,
    event_id: Option<&'a [u8]>,
    service: Option<&'a [u8]>,
    timestamp: Option<&'a [u8]>,
    correlation_id: Option<&'a [u8]>,
    causation_id: Option<&'a [u8]>,
    headers: Option<&'a [u8]>,
    data: Option<&'a [u8]>,
}

fn required<'a>(v: Option<&'a [u8]>, field: &'static str) -> Result<&'a [u8], DecodeError> {
    v.ok_or(DecodeError::MissingField { field })
}

fn utf8<'a>(v: &'a [u8], field: &'static str) -> Result<&'a str, DecodeError> {
    std::str::from_utf8(v).map_err(|_| DecodeError::InvalidField {
        field,
        reason: "not UTF-8".to_owned(),
    })
}

fn invalid(field: &'static str, v: &[u8], expected: &str) -> DecodeError {
    let mut shown = String::from_utf8_lossy(&v[..v.len().min(64)]).into_owned();
    if v.len() > 64 {
        shown.push_str("...");
    }
    DecodeError::InvalidField {
        field,
        reason: format!("`{shown}` is not {expected}"),
    }
}

fn decimal<T: std::str::FromStr>(
    v: &[u8],
    field: &'static str,
    what: &str,
) -> Result<T, DecodeError> {
    let s = utf8(v, field)?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(field, v, what));
    }
    s.parse().map_err(|_| invalid(field, v, what))
}

fn uuid(v: &[u8], field: &'static str) -> Result<Uuid, DecodeError> {
    Uuid::try_parse(utf8(v, field)?).map_err(|_| invalid(field, v, "a UUID"))
}

fn fingerprint(v: &[u8]) -> Result<u64, DecodeError> {
    let s = utf8(v, field::SCHEMA)?;
    if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid(field::SCHEMA, v, "16 hex digits"));
    }
    u64::from_str_radix(s, 16).map_err(|_| invalid(field::SCHEMA, v, "16 hex digits"))
}

/// The deepest nesting of arrays and maps accepted in `data` and `headers` (serde_json's default
/// recursion limit). Decoding recurses once per level: rmp-serde's own default (1024) overflows a
/// 2 MiB thread stack (tokio's worker default) in debug builds, so a few hundred bytes of nested
/// arrays would abort the consumer process. Event types are never recursive, so only
/// `serde_json::Value` fields can legitimately come near this.
pub const MAX_NESTING: usize = 128;

/// Deserializes exactly one MessagePack value from `bytes`; trailing bytes are an error.
pub(super) fn from_msgpack<T: DeserializeOwned>(mut bytes: &[u8]) -> Result<T, String> {
    let mut de = rmp_serde::Deserializer::new(&mut bytes);
    // rmp-serde fails when its counter reaches 0, counting the containers entered: one more than
    // the limit lets exactly `MAX_NESTING` nested containers through.
    de.set_max_depth(MAX_NESTING + 1);
    let value = T::deserialize(&mut de).map_err(|e| e.to_string())?;
    if !bytes.is_empty() {
        return Err(format!("{} trailing bytes after the value", bytes.len()));
    }
    Ok(value)
}

/// Decodes `data` as the payload of `E` at `E`'s own version, distinguishing bytes that are not
/// MessagePack at all (`NotMessagePack`) from MessagePack that does not fit `E` (`DataMismatch`).
pub fn decode_data<E: Event>(data: &[u8]) -> Result<E, DecodeError> {
    from_msgpack::<E>(data).map_err(|reason| match from_msgpack::<IgnoredAny>(data) {
        Err(not_msgpack) => DecodeError::NotMessagePack {
            field: field::DATA,
            reason: not_msgpack,
        },
        Ok(_) => DecodeError::DataMismatch {
            event_type: E::NAME.to_owned(),
            version: E::VERSION,
            reason,
        },
    })
}

/// The envelope fields of one entry, checked and parsed; strings and the payload still borrowed.
struct Parsed<'a> {
    event_type: &'a str,
    service: &'a str,
    data: &'a [u8],
    rest: Rest,
    origin: Origin,
}

/// Where the parsed values are in the fields, for taking them out of owned fields.
enum Origin {
    V1,
    /// The event field is the `index`th; its name's first `type_len` bytes are the type.
    V2 {
        index: usize,
        type_len: usize,
        payload: usize,
    },
}

/// The event type of an entry without parsing anything else: the part of a v2 event field's
/// name before `@`, or a v1 entry's `event_type` value. `None` when the entry has neither, or
/// has more than one (the full parse then reports the problem). For a consumer to skip another
/// type's entry before it could be poison for it.
pub fn event_type_of<'a, I>(fields: I) -> Option<&'a [u8]>
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
{
    let (mut v1, mut v2, mut v2_count) = (None, None, 0);
    for (name, value) in fields {
        if v2::is_event_field(name) {
            v2_count += 1;
            v2 = Some(v2::type_part(name));
        } else if name == field::EVENT_TYPE.as_bytes() {
            if v1.is_some() {
                return None;
            }
            v1 = Some(value);
        }
    }
    match v2_count {
        0 => v1,
        1 => v2,
        _ => None,
    }
}

/// The parsed fields that are not borrowed.
struct Rest {
    version: u16,
    fingerprint: u64,
    event_id: Uuid,
    timestamp_ms: u64,
    correlation_id: Uuid,
    causation_id: Option<Uuid>,
    headers: Headers,
}

impl<'a> Parsed<'a> {
    fn parse<I>(fields: I) -> Result<Parsed<'a>, DecodeError>
    where
        I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
    {
        let mut raw = Raw::default();
        let mut event_field: Option<(usize, &'a [u8], &'a [u8])> = None;
        // A repeated v1 field matters only if the entry is not v2.
        let mut repeated: Option<&'static str> = None;
        for (index, (name, value)) in fields.into_iter().enumerate() {
            if v2::is_event_field(name) {
                if let Some((_, first, _)) = event_field {
                    return Err(DecodeError::InvalidField {
                        field: field::EVENT_FIELD,
                        reason: format!(
                            "the entry has more than one event field (`{}` and `{}`)",
                            String::from_utf8_lossy(&first[..first.len().min(64)]),
                            String::from_utf8_lossy(&name[..name.len().min(64)])
                        ),
                    });
                }
                event_field = Some((index, name, value));
                continue;
            }
            let slot = match name {
                b"event_type" => (&mut raw.event_type, field::EVENT_TYPE),
                b"version" => (&mut raw.version, field::VERSION),
                b"schema" => (&mut raw.schema, field::SCHEMA),
                b"event_id" => (&mut raw.event_id, field::EVENT_ID),
                b"service" => (&mut raw.service, field::SERVICE),
                b"timestamp" => (&mut raw.timestamp, field::TIMESTAMP),
                b"correlation_id" => (&mut raw.correlation_id, field::CORRELATION_ID),
                b"causation_id" => (&mut raw.causation_id, field::CAUSATION_ID),
                b"headers" => (&mut raw.headers, field::HEADERS),
                b"data" => (&mut raw.data, field::DATA),
                _ => continue,
            };
            if slot.0.replace(value).is_some() && repeated.is_none() {
                repeated = Some(slot.1);
            }
        }
        if let Some((index, name, value)) = event_field {
            return Self::parse_v2(index, name, value);
        }
        if let Some(field) = repeated {
            return Err(DecodeError::InvalidField {
                field,
                reason: "the field appears more than once".to_owned(),
            });
        }
        let event_type = utf8(
            required(raw.event_type, field::EVENT_TYPE)?,
            field::EVENT_TYPE,
        )?;
        let version_raw = required(raw.version, field::VERSION)?;
        let version: u16 = decimal(version_raw, field::VERSION, "a version in 1..=65535")?;
        if version == 0 {
            return Err(invalid(
                field::VERSION,
                version_raw,
                "a version in 1..=65535",
            ));
        }
        let fingerprint = fingerprint(required(raw.schema, field::SCHEMA)?)?;
        let event_id = uuid(required(raw.event_id, field::EVENT_ID)?, field::EVENT_ID)?;
        let service = utf8(required(raw.service, field::SERVICE)?, field::SERVICE)?;
        let timestamp_ms = decimal(
            required(raw.timestamp, field::TIMESTAMP)?,
            field::TIMESTAMP,
            "milliseconds since the epoch",
        )?;
        let correlation_id = uuid(
            required(raw.correlation_id, field::CORRELATION_ID)?,
            field::CORRELATION_ID,
        )?;
        let causation_id = raw
            .causation_id
            .map(|v| uuid(v, field::CAUSATION_ID))
            .transpose()?;
        let headers = match raw.headers {
            None => Headers::new(),
            Some(h) => {
                from_msgpack::<Headers>(h).map_err(|reason| DecodeError::NotMessagePack {
                    field: field::HEADERS,
                    reason,
                })?
            }
        };
        let data = required(raw.data, field::DATA)?;
        Ok(Parsed {
            event_type,
            service,
            data,
            rest: Rest {
                version,
                fingerprint,
                event_id,
                timestamp_ms,
                correlation_id,
                causation_id,
                headers,
            },
            origin: Origin::V1,
        })
    }

    fn parse_v2(index: usize, name: &'a [u8], value: &'a [u8]) -> Result<Parsed<'a>, DecodeError> {
        let (event_type, version) = v2::parse_name(name)?;
        let h = v2::parse_value(value)?;
        Ok(Parsed {
            event_type,
            service: h.service,
            data: &value[h.payload..],
            rest: Rest {
                version,
                fingerprint: h.fingerprint,
                event_id: h.event_id,
                timestamp_ms: h.timestamp_ms,
                correlation_id: h.correlation_id,
                causation_id: h.causation_id,
                headers: h.headers,
            },
            origin: Origin::V2 {
                index,
                type_len: event_type.len(),
                payload: h.payload,
            },
        })
    }
}

impl Rest {
    /// The envelope, with the strings and the payload given as owned values.
    fn into_envelope(self, event_type: String, service: String, data: Vec<u8>) -> Envelope {
        Envelope {
            event_type,
            version: self.version,
            fingerprint: self.fingerprint,
            meta: Metadata {
                event_id: self.event_id,
                service,
                timestamp_ms: self.timestamp_ms,
                correlation_id: self.correlation_id,
                causation_id: self.causation_id,
                headers: self.headers,
            },
            data,
        }
    }
}

impl Envelope {
    /// Parses the fields of one stream entry. Unknown fields are ignored (newer publishers may
    /// add some); a known field given twice is invalid.
    pub fn from_fields<'a, I>(fields: I) -> Result<Envelope, DecodeError>
    where
        I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
    {
        let p = Parsed::parse(fields)?;
        Ok(p.rest.into_envelope(
            p.event_type.to_owned(),
            p.service.to_owned(),
            p.data.to_vec(),
        ))
    }

    /// [`Envelope::from_fields`] on fields the caller owns: the payload and the strings are
    /// moved into the envelope rather than copied (the consumer's path, once per message).
    pub(crate) fn from_owned_fields(
        mut fields: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Envelope, DecodeError> {
        let p = Parsed::parse(fields.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))?;
        if let Origin::V2 {
            index,
            type_len,
            payload,
        } = p.origin
        {
            let service = p.service.to_owned();
            let rest = p.rest;
            let (mut name, mut value) = std::mem::take(&mut fields[index]);
            name.truncate(type_len);
            // The payload moves to the front of the value, no copy made; the type reuses the
            // name's buffer (checked to be UTF-8 by the parse).
            value.drain(..payload);
            let event_type = String::from_utf8(name).unwrap_or_default();
            return Ok(rest.into_envelope(event_type, service, value));
        }
        let rest = p.rest;
        // Each of these appears exactly once (checked above).
        let mut take = |name: &str| {
            fields
                .iter_mut()
                .find(|(k, _)| k.as_slice() == name.as_bytes())
                .map(|(_, v)| std::mem::take(v))
                .unwrap_or_default()
        };
        let text = |v: Vec<u8>| {
            // Already checked to be UTF-8.
            String::from_utf8(v)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
        };
        let event_type = text(take(field::EVENT_TYPE));
        let service = text(take(field::SERVICE));
        let data = take(field::DATA);
        Ok(rest.into_envelope(event_type, service, data))
    }
}

/// Decodes the payload of `envelope` as `E`, upcasting from an older version when `E` declares
/// `upcast_from`. Errors: another event type, a version `E` does not know, a fingerprint that does
/// not match the version, or data that does not fit.
pub fn decode_event<E: Event>(envelope: &Envelope) -> Result<E, DecodeError> {
    if envelope.event_type != E::NAME {
        return Err(DecodeError::UnknownEventType {
            event_type: envelope.event_type.clone(),
            expected: format!("`{}`", E::NAME),
        });
    }
    if envelope.version == E::VERSION {
        if envelope.fingerprint != E::FINGERPRINT {
            return Err(DecodeError::FingerprintMismatch {
                event_type: E::NAME.to_owned(),
                version: E::VERSION,
                expected: E::FINGERPRINT,
                found: envelope.fingerprint,
            });
        }
        return decode_data::<E>(&envelope.data);
    }
    match E::Upcast::decode(envelope.version, envelope.fingerprint, &envelope.data) {
        Some(result) => result,
        None => Err(DecodeError::UnknownVersion {
            event_type: E::NAME.to_owned(),
            version: envelope.version,
            known: known_versions::<E>().into_iter().map(|(v, _)| v).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_fields_decode_like_borrowed_ones() {
        let fields: Vec<(Vec<u8>, Vec<u8>)> = [
            ("event_type", "asset_created"),
            ("version", "2"),
            ("schema", "00000000000000ff"),
            ("event_id", "0190b6a2-7c4e-7d2a-9b1e-1f2e3d4c5b6a"),
            ("service", "inventory"),
            ("timestamp", "1700000000000"),
            ("correlation_id", "0190b6a2-7c4e-7d2a-9b1e-1f2e3d4c5b6b"),
            ("unknown", "ignored"),
            ("data", "\u{80}"),
        ]
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
        let borrowed =
            Envelope::from_fields(fields.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))
                .expect("valid fields");
        let owned = Envelope::from_owned_fields(fields.clone()).expect("valid fields");
        assert_eq!(borrowed, owned);
        let mut twice = fields;
        twice.push((b"data".to_vec(), b"x".to_vec()));
        assert!(Envelope::from_owned_fields(twice).is_err());
    }
}
