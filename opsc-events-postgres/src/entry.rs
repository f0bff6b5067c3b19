//! How an outbox row holds the fields of one stream entry: `count u8`, then per field
//! `name_len u32 BE`, name (UTF-8), `value_len u32 BE`, value. Written at staging, read by the
//! relay; every length is checked on reading (the bytes come from the database).

use opsc_events_runtime::envelope::EncodedEvent;

/// The fields of `entry` as one byte string.
pub(crate) fn pack(entry: &EncodedEvent) -> Vec<u8> {
    let fields = entry.fields();
    let mut out = Vec::with_capacity(1 + fields.len() * 8 + 64);
    out.push(u8::try_from(fields.len()).unwrap_or(u8::MAX));
    for (name, value) in fields {
        for part in [name.as_bytes(), value] {
            // An encoded entry's offsets are u32 already.
            out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(part);
        }
    }
    out
}

/// The next length-prefixed part of `rest`.
fn take<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], &'static str> {
    let (len, tail) = rest.split_at_checked(4).ok_or("a length is cut short")?;
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let (part, tail) = tail.split_at_checked(len).ok_or("a field is cut short")?;
    *rest = tail;
    Ok(part)
}

/// The entry packed in `bytes`, or what is wrong with them.
pub(crate) fn unpack(bytes: &[u8]) -> Result<EncodedEvent, &'static str> {
    let (&count, mut rest) = bytes.split_first().ok_or("it is empty")?;
    let mut fields = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let name = take(&mut rest)?;
        let name = std::str::from_utf8(name).map_err(|_| "a field name is not UTF-8")?;
        let value = take(&mut rest)?;
        fields.push((name, value));
    }
    if !rest.is_empty() {
        return Err("bytes follow the last field");
    }
    EncodedEvent::from_fields(fields).ok_or("it has more fields than an envelope")
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn packed_entries_unpack_to_the_same_fields() {
        let e = EncodedEvent::from_fields([("a@1", &b"\x02xyz"[..]), ("b", &b""[..])])
            .expect("two fields");
        let back = unpack(&pack(&e)).expect("round trip");
        assert_eq!(back, e);
    }

    #[test]
    fn truncated_or_padded_bytes_are_refused() {
        let e = EncodedEvent::from_fields([("a@1", &b"value"[..])]).expect("one field");
        let bytes = pack(&e);
        for cut in 0..bytes.len() {
            assert!(unpack(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut padded = bytes.clone();
        padded.push(0);
        assert_eq!(unpack(&padded), Err("bytes follow the last field"));
    }
}
