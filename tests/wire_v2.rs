//! Wire format v2, byte for byte: the golden vectors of `docs/WIRE.md` (also in
//! `tests/golden/wire_v2.txt` for implementers in other languages), every decode error of the
//! v2 layout, forward compatibility, the type-first check, and arbitrary bytes never panicking.

use opsc_events::envelope::{
    self, DecodeError, EncodeProblem, FORMAT_V2, decode_event, encode, event_type_of,
};
use opsc_events::prelude::*;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "assets", name = "asset_created", version = 1)]
struct AssetCreated {
    asset_id: u64,
    hostname: String,
    tags: Vec<String>,
}

type Fields = Vec<(Vec<u8>, Vec<u8>)>;

fn event() -> AssetCreated {
    AssetCreated {
        asset_id: 7,
        hostname: "db-1".into(),
        tags: vec!["prod".into()],
    }
}

fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).expect("uuid")
}

/// The worked example's metadata: every optional part present.
fn full_meta() -> Metadata {
    Metadata {
        event_id: uuid("0193717c-4a2b-7c3d-8e4f-5a6b7c8d9e0f"),
        service: "inventory".into(),
        timestamp_ms: 1_732_809_600_000,
        correlation_id: uuid("0193717c-4a00-7000-8000-000000000001"),
        causation_id: Some(uuid("0193717c-4a00-7000-8000-000000000002")),
        headers: Headers::from([(
            "traceparent".to_owned(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
        )]),
    }
}

/// The same event as the first of its conversation: no optional part.
fn minimal_meta() -> Metadata {
    let m = full_meta();
    Metadata {
        correlation_id: m.event_id,
        causation_id: None,
        headers: Headers::new(),
        ..m
    }
}

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
        .collect()
}

/// The golden vectors: `(name, metadata, field name, value)`.
fn golden() -> Vec<(&'static str, Metadata, &'static str, Vec<u8>)> {
    vec![
        ("minimal", minimal_meta(), "asset_created@1", hex(MINIMAL)),
        ("full", full_meta(), "asset_created@1", hex(FULL)),
    ]
}

const MINIMAL: &str = "
02 00 00 00 2b
00 70 68 76 df d3 73 9d 5d 01 93 71 7c 4a 2b 7c 3d 8e 4f 5a 6b 7c 8d 9e 0f
00 00 01 93 73 80 2c 00 09 69 6e 76 65 6e 74 6f 72 79
83 a8 61 73 73 65 74 5f 69 64 07 a8 68 6f 73 74 6e 61 6d 65 a4 64 62 2d 31 a4 74 61 67 73 91 a4
70 72 6f 64";

const FULL: &str = "
02 00 00 00 95
07 70 68 76 df d3 73 9d 5d 01 93 71 7c 4a 2b 7c 3d 8e 4f 5a 6b 7c 8d 9e 0f
00 00 01 93 73 80 2c 00 09 69 6e 76 65 6e 74 6f 72 79
01 93 71 7c 4a 00 70 00 80 00 00 00 00 00 00 01
01 93 71 7c 4a 00 70 00 80 00 00 00 00 00 00 02
00 00 00 46 81 ab 74 72 61 63 65 70 61 72 65 6e 74 d9 37 30 30 2d 34 62 66 39 32 66 33 35 37 37
62 33 34 64 61 36 61 33 63 65 39 32 39 64 30 65 30 65 34 37 33 36 2d 30 30 66 30 36 37 61 61 30
62 61 39 30 32 62 37 2d 30 31
83 a8 61 73 73 65 74 5f 69 64 07 a8 68 6f 73 74 6e 61 6d 65 a4 64 62 2d 31 a4 74 61 67 73 91 a4
70 72 6f 64";

fn fields_of(name: &str, value: &[u8]) -> Fields {
    vec![(name.as_bytes().to_vec(), value.to_vec())]
}

fn envelope_of(fields: &Fields) -> Result<Envelope, DecodeError> {
    Envelope::from_fields(fields.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))
}

fn decode(fields: &Fields) -> Result<AssetCreated, DecodeError> {
    decode_event::<AssetCreated>(&envelope_of(fields)?)
}

fn header_error(reason: &str) -> DecodeError {
    DecodeError::InvalidField {
        field: "header",
        reason: reason.to_owned(),
    }
}

#[test]
fn golden_vectors_encode_exactly() {
    for (name, meta, field, value) in golden() {
        let e = encode(&event(), &meta).expect("encode");
        let got: Vec<(&str, &[u8])> = e.fields().collect();
        assert_eq!(got, vec![(field, value.as_slice())], "vector {name}");
    }
}

#[test]
fn golden_vectors_decode() {
    for (name, meta, field, value) in golden() {
        let env = envelope_of(&fields_of(field, &value)).expect("decodes");
        assert_eq!(env.event_type, "asset_created", "{name}");
        assert_eq!(env.version, 1);
        assert_eq!(env.fingerprint, 0x7068_76df_d373_9d5d);
        assert_eq!(env.meta, meta);
        assert_eq!(env.data, rmp_serde::to_vec_named(&event()).expect("encode"));
        assert_eq!(decode_event::<AssetCreated>(&env).expect("event"), event());
    }
}

/// `tests/golden/wire_v2.txt` holds the same vectors, for readers in other languages.
#[test]
fn golden_file_matches() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/wire_v2.txt"
    ))
    .expect("golden file");
    for (name, meta, field, value) in golden() {
        let mut lines = text
            .lines()
            .skip_while(|l| *l != format!("[{name}]"))
            .skip(1)
            .take_while(|l| !l.is_empty());
        let mut get = |key: &str| -> String {
            let line = lines.next().unwrap_or_default();
            line.strip_prefix(&format!("{key} = "))
                .unwrap_or_else(|| panic!("[{name}]: expected `{key} = ...`, got `{line}`"))
                .to_owned()
        };
        assert_eq!(get("field"), field);
        assert_eq!(hex(&get("value")), value, "[{name}] value");
        assert_eq!(get("event_type"), "asset_created");
        assert_eq!(get("version"), "1");
        assert_eq!(get("fingerprint"), "706876dfd3739d5d");
        assert_eq!(get("event_id"), meta.event_id.to_string());
        assert_eq!(get("service"), meta.service);
        assert_eq!(get("timestamp_ms"), meta.timestamp_ms.to_string());
        assert_eq!(get("correlation_id"), meta.correlation_id.to_string());
        assert_eq!(
            get("causation_id"),
            meta.causation_id.map(|c| c.to_string()).unwrap_or_default()
        );
        let headers: Vec<String> = meta
            .headers
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(get("headers"), headers.join(" "));
        assert_eq!(
            hex(&get("payload")),
            rmp_serde::to_vec_named(&event()).expect("encode")
        );
    }
}

#[test]
fn other_versions_and_names_are_in_the_field_name() {
    #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
    #[event(stream = "assets", version = 300)]
    struct HostRenamed {
        host: String,
    }
    let e = encode(&HostRenamed { host: "a".into() }, &minimal_meta()).expect("encode");
    let names: Vec<&str> = e.fields().map(|(k, _)| k).collect();
    assert_eq!(names, ["host_renamed@300"]);
}

#[test]
fn a_long_service_name_is_a_typed_encode_error() {
    let mut m = minimal_meta();
    m.service = "s".repeat(256);
    let err = encode(&event(), &m).expect_err("too long");
    assert!(matches!(
        err.problem,
        EncodeProblem::TooLong {
            len: 256,
            max: 255,
            ..
        }
    ));
    m.service = "s".repeat(255);
    let e = encode(&event(), &m).expect("255 bytes fit");
    let (k, v) = e.fields().next().expect("one field");
    assert_eq!(
        envelope_of(&fields_of(k, v)).expect("decodes").meta.service,
        m.service
    );
}

/// Offsets in the minimal vector: format 0, header length 1..5, flags 5, fingerprint 6..14,
/// event id 14..30, timestamp 30..38, service length 38, service 39..48, payload 48...
#[test]
fn every_header_error() {
    let good = hex(MINIMAL);
    let name = "asset_created@1";
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut v = good.clone();
        f(&mut v);
        fields_of(name, &v)
    };
    let cases: Vec<(Fields, DecodeError)> = vec![
        (with(&|v| v.clear()), header_error("the value is empty")),
        (
            with(&|v| v[0] = 0x03),
            header_error("unsupported format byte 0x03 (this reader knows 0x02)"),
        ),
        (
            with(&|v| v.truncate(3)),
            header_error("truncated: 3 bytes, the format byte and header length take 5"),
        ),
        (
            with(&|v| v[4] = 0xff),
            header_error("header length 255 exceeds the 79 bytes after it"),
        ),
        (
            with(&|v| v[4] = 10),
            header_error(
                "truncated: the event id needs 16 bytes at header offset 9, the header has 10",
            ),
        ),
        (
            with(&|v| v[38] = 40),
            header_error(
                "truncated: the service needs 40 bytes at header offset 34, the header has 43",
            ),
        ),
        (
            with(&|v| v[39] = 0xff),
            DecodeError::InvalidField {
                field: "service",
                reason: "not UTF-8".to_owned(),
            },
        ),
        (
            // A correlation id announced, none there (the header still ends at the payload).
            with(&|v| v[5] = 0x01),
            header_error(
                "truncated: the correlation id needs 16 bytes at header offset 43, the header has 43",
            ),
        ),
    ];
    for (fields, expected) in cases {
        let err = decode(&fields).expect_err("must fail");
        assert_eq!(err, expected);
        assert!(!err.is_schema_mismatch());
    }
}

#[test]
fn headers_that_are_not_a_map_of_strings() {
    let mut v = hex(FULL);
    // The headers' first byte (the map marker 0x81) becomes a positive integer.
    let at = v.iter().position(|&b| b == 0x81).expect("headers map");
    v[at] = 0x01;
    let err = decode(&fields_of("asset_created@1", &v)).expect_err("must fail");
    assert!(
        matches!(
            err,
            DecodeError::NotMessagePack {
                field: "headers",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn every_name_error() {
    let v = hex(MINIMAL);
    for bad in [
        "asset_created@",
        "asset_created@0",
        "asset_created@01",
        "asset_created@65536",
        "asset_created@1.0",
        "@1",
        "asset@created@1",
    ] {
        let err = decode(&fields_of(bad, &v)).expect_err(bad);
        assert_eq!(
            err,
            DecodeError::InvalidField {
                field: "<event_type>@<version>",
                reason: format!(
                    "`{bad}` is not `<event_type>@<version>` with a version in 1..=65535"
                ),
            }
        );
    }
}

#[test]
fn schema_errors_come_from_the_name_and_the_header() {
    let v = hex(MINIMAL);
    let err = decode(&fields_of("asset_created@2", &v)).expect_err("unknown version");
    assert!(matches!(
        err,
        DecodeError::UnknownVersion { version: 2, .. }
    ));
    assert!(err.is_schema_mismatch());
    let mut w = v.clone();
    w[6] ^= 0xff;
    let err = decode(&fields_of("asset_created@1", &w)).expect_err("fingerprint");
    assert!(matches!(err, DecodeError::FingerprintMismatch { .. }));
    assert!(err.is_schema_mismatch());
    let err = decode(&fields_of("asset_deleted@1", &v)).expect_err("another type");
    assert!(matches!(err, DecodeError::UnknownEventType { .. }));
}

#[test]
fn payload_errors() {
    let v = hex(MINIMAL);
    let mut trailing = v.clone();
    trailing.push(0x00);
    let err = decode(&fields_of("asset_created@1", &trailing)).expect_err("trailing");
    assert_eq!(
        err,
        DecodeError::NotMessagePack {
            field: "data",
            reason: "1 trailing bytes after the value".to_owned()
        }
    );
    let mut cut = v.clone();
    cut.truncate(60);
    let err = decode(&fields_of("asset_created@1", &cut)).expect_err("truncated");
    assert!(matches!(
        err,
        DecodeError::NotMessagePack { field: "data", .. }
    ));
    let mut other = v[..48].to_vec();
    other.extend(rmp_serde::to_vec_named(&("x", 1)).expect("encode"));
    let err = decode(&fields_of("asset_created@1", &other)).expect_err("shape");
    assert!(matches!(err, DecodeError::DataMismatch { .. }));
}

/// A newer writer may set flags this reader does not know and append their fields to the
/// header: the header length lets the reader skip them.
#[test]
fn unknown_flags_and_header_bytes_are_ignored() {
    let v = hex(MINIMAL);
    let mut newer = v[..48].to_vec();
    newer[5] |= 0x80;
    newer.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    newer[4] += 4;
    newer.extend_from_slice(&v[48..]);
    let env = envelope_of(&fields_of("asset_created@1", &newer)).expect("decodes");
    assert_eq!(env.meta, minimal_meta());
    assert_eq!(decode_event::<AssetCreated>(&env).expect("event"), event());
}

#[test]
fn an_entry_has_one_event_field_and_other_fields_are_ignored() {
    let v = hex(MINIMAL);
    let mut two = fields_of("asset_created@1", &v);
    two.push((b"asset_deleted@1".to_vec(), v.clone()));
    let err = decode(&two).expect_err("two event fields");
    assert_eq!(
        err,
        DecodeError::InvalidField {
            field: "<event_type>@<version>",
            reason:
                "the entry has more than one event field (`asset_created@1` and `asset_deleted@1`)"
                    .to_owned()
        }
    );
    // A dead letter: the original field beside the letter's own (and a v1-named field, which a
    // v2 entry does not use).
    let mut letter = fields_of("asset_created@1", &v);
    for (k, val) in [
        ("original_id", "1-0"),
        ("reason", "panic"),
        ("version", "x"),
    ] {
        letter.push((k.as_bytes().to_vec(), val.as_bytes().to_vec()));
    }
    assert_eq!(decode(&letter).expect("decodes"), event());
}

#[test]
fn the_type_is_read_before_anything_else() {
    let broken = fields_of("asset_deleted@1", b"\x07 not a header");
    let borrowed = || broken.iter().map(|(k, v)| (k.as_slice(), v.as_slice()));
    assert_eq!(event_type_of(borrowed()), Some(&b"asset_deleted"[..]));
    assert!(Envelope::from_fields(borrowed()).is_err());
    let v1 = [(&b"event_type"[..], &b"x"[..]), (b"data", b"\x80")];
    assert_eq!(event_type_of(v1), Some(&b"x"[..]));
    let none = [(&b"data"[..], &b"\x80"[..])];
    assert_eq!(event_type_of(none), None);
    assert_eq!(FORMAT_V2, 0x02);
}

#[test]
fn v1_and_v2_carry_the_same_payload() {
    let meta = full_meta();
    let v1 = envelope::encode_as(&event(), &meta, opsc_events::WireFormat::V1).expect("v1");
    let v2 = encode(&event(), &meta).expect("v2");
    let fields = |e: &envelope::EncodedEvent| -> Fields {
        e.fields()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.to_vec()))
            .collect()
    };
    let (a, b) = (
        envelope_of(&fields(&v1)).expect("v1"),
        envelope_of(&fields(&v2)).expect("v2"),
    );
    assert_eq!(a, b);
    assert_eq!(v1.get("data"), Some(&b.data[..]));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Any bytes after a valid name, and any single-byte change or cut of a valid value: an
    /// error or an envelope, never a panic.
    #[test]
    fn arbitrary_values_never_panic(value in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(&fields_of("asset_created@1", &value));
    }

    #[test]
    fn mutated_values_never_panic(at in 0usize..190, byte in any::<u8>(), cut in 0usize..200) {
        let mut v = hex(FULL);
        let i = at % v.len();
        v[i] = byte;
        v.truncate(cut.max(1));
        let _ = decode(&fields_of("asset_created@1", &v));
    }

    #[test]
    fn arbitrary_names_never_panic(name in prop::collection::vec(any::<u8>(), 0..40)) {
        let v = hex(MINIMAL);
        let fields = vec![(name, v)];
        let _ = decode(&fields);
        let _ = event_type_of(fields.iter().map(|(k, v)| (k.as_slice(), v.as_slice())));
    }
}

// ---- answers to the questions an implementer in another language had (docs/WIRE.md) ----------

fn v2_with_headers(headers: &[u8]) -> Fields {
    // The minimal vector with the headers flag set and `headers` appended to the header.
    let v = hex(MINIMAL);
    let mut out = v[..48].to_vec();
    out[5] |= 0x04;
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    out.extend_from_slice(headers);
    let header_len = (out.len() - 5) as u32;
    out[1..5].copy_from_slice(&header_len.to_be_bytes());
    out.extend_from_slice(&v[48..]);
    fields_of("asset_created@1", &out)
}

#[test]
fn headers_duplicates_bin_strings_and_bad_utf8() {
    // {"a": "1", "a": "2"}: the last one wins.
    let dup = envelope_of(&v2_with_headers(b"\x82\xa1a\xa11\xa1a\xa12")).expect("decodes");
    assert_eq!(dup.meta.headers.get("a").map(String::as_str), Some("2"));
    // A value written as bin 8 holding UTF-8 is accepted as the string.
    let bin = envelope_of(&v2_with_headers(b"\x81\xa1a\xc4\x01x")).expect("decodes");
    assert_eq!(bin.meta.headers.get("a").map(String::as_str), Some("x"));
    // A str that is not UTF-8, or a value that is not a string: NotMessagePack on `headers`.
    for bad in [
        &b"\x81\xa1a\xa1\xff"[..],
        b"\x81\xa1a\x01",
        b"\x91\xa1a",
        b"\x80\x80",
    ] {
        let err = envelope_of(&v2_with_headers(bad)).expect_err("must fail");
        assert!(
            matches!(
                err,
                DecodeError::NotMessagePack {
                    field: "headers",
                    ..
                }
            ),
            "{bad:?}: {err:?}"
        );
    }
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "assets")]
struct WithOption {
    id: u64,
    note: Option<String>,
}

#[test]
fn payload_questions() {
    let decode_payload =
        |payload: &[u8]| envelope::decode_data::<WithOption>(payload).map(|e| (e.id, e.note));
    // A missing `Option` field reads as None (serde's rule for Option fields).
    assert_eq!(decode_payload(b"\x81\xa2id\x01").ok(), Some((1, None)));
    // A struct written as an array of its fields in order: the exact field count.
    assert_eq!(decode_payload(b"\x92\x01\xc0").ok(), Some((1, None)));
    assert!(decode_payload(b"\x91\x01").is_err());
    assert!(decode_payload(b"\x93\x01\xc0\x02").is_err());
    // Invalid UTF-8 in a str: valid MessagePack that does not fit the type.
    assert!(matches!(
        decode_payload(b"\x82\xa2id\x01\xa4note\xa1\xff"),
        Err(DecodeError::DataMismatch { .. })
    ));
    // An ext value where the type expects a string: DataMismatch too (ext is valid MessagePack).
    assert!(matches!(
        decode_payload(b"\x82\xa2id\x01\xa4note\xd4\x01\x00"),
        Err(DecodeError::DataMismatch { .. })
    ));
}
