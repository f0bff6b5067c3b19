//! Parsing of stream replies. Nothing here panics on what the server sends: an unexpected shape
//! is an error naming what was expected.

use redis::Value;

use crate::message_id::MessageId;
use crate::transport::{Fields, RawEntry};

pub(crate) type ReplyResult<T> = Result<T, String>;

fn describe(v: &Value) -> String {
    let mut s = format!("{v:?}");
    if s.len() > 120 {
        s.truncate(120);
        s.push_str("...");
    }
    s
}

pub(crate) fn bytes(v: Value) -> ReplyResult<Vec<u8>> {
    match v {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        Value::VerbatimString { text, .. } => Ok(text.into_bytes()),
        other => Err(format!("expected a string, got {}", describe(&other))),
    }
}

pub(crate) fn int(v: Value) -> ReplyResult<i64> {
    match v {
        Value::Int(i) => Ok(i),
        Value::BulkString(b) => std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| "expected an integer".to_owned()),
        other => Err(format!("expected an integer, got {}", describe(&other))),
    }
}

pub(crate) fn array(v: Value) -> ReplyResult<Vec<Value>> {
    match v {
        Value::Array(items) | Value::Set(items) => Ok(items),
        Value::Nil => Ok(Vec::new()),
        other => Err(format!("expected an array, got {}", describe(&other))),
    }
}

pub(crate) fn id(v: Value) -> ReplyResult<MessageId> {
    let raw = bytes(v)?;
    MessageId::from_bytes(&raw).map_err(|e| e.to_string())
}

fn fields(v: Value) -> ReplyResult<Option<Fields>> {
    if matches!(v, Value::Nil) {
        return Ok(None);
    }
    let flat = match v {
        Value::Map(pairs) => {
            let mut out = Vec::with_capacity(pairs.len());
            for (k, v) in pairs {
                out.push((bytes(k)?, bytes(v)?));
            }
            return Ok(Some(out));
        }
        other => array(other)?,
    };
    if flat.len() % 2 != 0 {
        return Err(format!("odd number of field items ({})", flat.len()));
    }
    let mut out = Vec::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((bytes(k)?, bytes(v)?));
    }
    Ok(Some(out))
}

/// `[[id, [field, value, ...] | nil], ...]`
pub(crate) fn entries(v: Value) -> ReplyResult<Vec<RawEntry>> {
    array(v)?
        .into_iter()
        .map(|e| {
            let mut parts = array(e)?.into_iter();
            let (Some(id_v), Some(fields_v)) = (parts.next(), parts.next()) else {
                return Err("stream entry with fewer than two elements".to_owned());
            };
            Ok(RawEntry {
                id: id(id_v)?,
                fields: fields(fields_v)?,
            })
        })
        .collect()
}

/// XREADGROUP: nil on timeout, else `[[key, entries], ...]` (or a map in RESP3).
pub(crate) fn read_reply(v: Value) -> ReplyResult<Vec<RawEntry>> {
    let streams = match v {
        Value::Nil => return Ok(Vec::new()),
        Value::Map(pairs) => pairs.into_iter().map(|(_, e)| e).collect::<Vec<_>>(),
        other => array(other)?
            .into_iter()
            .map(|s| {
                let mut parts = array(s)?.into_iter();
                parts
                    .nth(1)
                    .ok_or_else(|| "stream reply without entries".to_owned())
            })
            .collect::<ReplyResult<Vec<_>>>()?,
    };
    let mut out = Vec::new();
    for s in streams {
        out.extend(entries(s)?);
    }
    Ok(out)
}

/// XAUTOCLAIM: `[next-cursor, entries, deleted-ids]` (the third element since Redis 7).
pub(crate) fn autoclaim_reply(v: Value) -> ReplyResult<(MessageId, Vec<RawEntry>, Vec<MessageId>)> {
    let mut parts = array(v)?.into_iter();
    let next = id(parts.next().ok_or("XAUTOCLAIM reply without a cursor")?)?;
    let claimed = entries(parts.next().ok_or("XAUTOCLAIM reply without entries")?)?;
    let deleted = match parts.next() {
        Some(d) => array(d)?
            .into_iter()
            .map(id)
            .collect::<ReplyResult<Vec<_>>>()?,
        None => Vec::new(),
    };
    Ok((next, claimed, deleted))
}

/// The claim script's `{'suspect', id}` reply: the id; `None` for an XAUTOCLAIM reply.
pub(crate) fn suspect_reply(v: &Value) -> ReplyResult<Option<MessageId>> {
    let Value::Array(parts) = v else {
        return Ok(None);
    };
    match parts.as_slice() {
        [Value::BulkString(tag), id_v] if tag.as_slice() == b"suspect" => {
            Ok(Some(id(id_v.clone())?))
        }
        _ => Ok(None),
    }
}

/// XPENDING (extended form): `[[id, consumer, idle-ms, delivery-count], ...]`.
pub(crate) fn pending_reply(v: Value) -> ReplyResult<Vec<(MessageId, u32)>> {
    array(v)?
        .into_iter()
        .map(|p| {
            let mut parts = array(p)?.into_iter();
            let id_v = parts.next().ok_or("XPENDING entry without an id")?;
            let count_v = parts
                .nth(2)
                .ok_or("XPENDING entry without a delivery count")?;
            let count = int(count_v)?;
            Ok((id(id_v)?, u32::try_from(count.max(0)).unwrap_or(u32::MAX)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn read_reply_parses_entries_and_deleted_ones() {
        let v = Value::Array(vec![Value::Array(vec![
            bulk("k"),
            Value::Array(vec![
                Value::Array(vec![bulk("1-1"), Value::Array(vec![bulk("a"), bulk("b")])]),
                Value::Array(vec![bulk("1-2"), Value::Nil]),
            ]),
        ])]);
        let entries = read_reply(v).expect("well-formed reply");
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[0].fields.as_deref(),
            Some(&[(b"a".to_vec(), b"b".to_vec())][..])
        );
        assert!(entries[1].fields.is_none());
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        for v in [
            Value::Int(3),
            Value::Array(vec![Value::Int(1)]),
            Value::Array(vec![Value::Array(vec![bulk("k")])]),
            Value::Array(vec![Value::Array(vec![
                bulk("k"),
                Value::Array(vec![Value::Array(vec![bulk("x")])]),
            ])]),
            Value::Array(vec![Value::Array(vec![
                bulk("k"),
                Value::Array(vec![Value::Array(vec![
                    bulk("1-1"),
                    Value::Array(vec![bulk("a")]),
                ])]),
            ])]),
        ] {
            assert!(read_reply(v).is_err());
        }
        assert!(autoclaim_reply(Value::Array(vec![])).is_err());
        assert!(pending_reply(Value::Array(vec![Value::Array(vec![bulk("1-1")])])).is_err());
    }
}
