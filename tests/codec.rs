//! The envelope codec without Redis: encode → stream entry fields → `Envelope::from_fields` →
//! `decode_event`, for arbitrary values and metadata; and every decode error path, fed with raw
//! bytes, asserting the exact `DecodeError`.
//!
//! The entries here are written in wire format **v1** (the eight-to-ten-field layout), which
//! every reader still accepts: this suite is how the current reader is held to v1. Round trips
//! also go through v2, which writes the same payload bytes; the v2 layout's own bytes and errors
//! are in `tests/wire_v2.rs`.

#![allow(dead_code)] // some fields exist for their schema only

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

use opsc_events::WireFormat;
use opsc_events::envelope::{DecodeError, EncodeError, EncodedEvent, decode_data, decode_event};
use opsc_events::prelude::*;
use opsc_events::schema::Shape;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

// ---- event types -------------------------------------------------------------------------------

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "codec", name = "scalars")]
struct Scalars {
    u8: u8,
    u16: u16,
    u32: u32,
    u64: u64,
    u128: u128,
    i8: i8,
    i16: i16,
    i32: i32,
    i64: i64,
    i128: i128,
    f32: f32,
    f64: f64,
    flag: bool,
    ch: char,
    text: String,
    unit: (),
}

#[derive(EventSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Inner {
    label: String,
    weight: f64,
    flags: Vec<bool>,
    #[serde(rename = "n")]
    count: Option<i64>,
}

#[derive(EventSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Newtype(String);

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "codec", name = "composite", version = 4)]
#[serde(rename_all = "camelCase")]
struct Composite {
    inner: Inner,
    maybe_inner: Option<Inner>,
    list: Vec<Inner>,
    by_name: BTreeMap<String, Inner>,
    counters: HashMap<String, i64>,
    nested: Vec<Vec<Option<u32>>>,
    pair: (u8, String),
    array: [u16; 3],
    wrapped: Newtype,
    timeout: std::time::Duration,
}

#[derive(EventSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
enum External {
    Unit,
    Newtype(i64),
    Tuple(u8, String),
    Struct { id: u64, note: Option<String> },
}

#[derive(EventSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Internal {
    Unit,
    Newtype(Inner),
    Struct { id: u64, name: String },
}

#[derive(EventSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "t", content = "c")]
enum Adjacent {
    Unit,
    Newtype(u32),
    Tuple(u8, String),
    Struct { id: u64 },
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "codec", name = "enums")]
struct Enums {
    external: External,
    internal: Internal,
    adjacent: Adjacent,
    many: Vec<External>,
    maybe: Option<Adjacent>,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "codec", name = "ids")]
struct Ids {
    id: Uuid,
    parent: Option<Uuid>,
    extra: serde_json::Value,
    attrs: serde_json::Map<String, serde_json::Value>,
}

/// The event the error-path tests corrupt.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "codec", name = "sample")]
struct Sample {
    id: u64,
    name: String,
    tags: Vec<String>,
}

/// Three versions of one event, each upcast from the previous one.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "codec", name = "thing", version = 1)]
struct ThingV1 {
    id: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "codec", name = "thing", version = 2, upcast_from = ThingV1)]
struct ThingV2 {
    id: u64,
    note: Option<String>,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "codec", name = "thing", version = 3, upcast_from = ThingV2)]
struct Thing {
    id: u64,
    note: String,
}

impl From<ThingV1> for ThingV2 {
    fn from(v1: ThingV1) -> Self {
        ThingV2 {
            id: v1.id,
            note: None,
        }
    }
}

impl From<ThingV2> for Thing {
    fn from(v2: ThingV2) -> Self {
        Thing {
            id: v2.id,
            note: v2.note.unwrap_or_default(),
        }
    }
}

/// A unit struct field next to a `()` field, and the same event with `()` in both.
#[derive(EventSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Marker;

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "codec", name = "marked")]
struct Marked {
    marker: Marker,
    unit: (),
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "codec", name = "marked")]
struct MarkedWithUnit {
    marker: (),
    unit: (),
}

// ---- helpers -----------------------------------------------------------------------------------

type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// Encodes in wire format v1 (see the module doc).
fn encode<E: Event>(event: &E, meta: &Metadata) -> Result<EncodedEvent, EncodeError> {
    opsc_events::envelope::encode_as(event, meta, WireFormat::V1)
}

fn to_fields(encoded: &opsc_events::envelope::EncodedEvent) -> Fields {
    encoded
        .fields()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.to_vec()))
        .collect()
}

fn envelope_of(fields: &Fields) -> Result<Envelope, DecodeError> {
    Envelope::from_fields(fields.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))
}

fn decode<E: Event>(fields: &Fields) -> Result<E, DecodeError> {
    decode_event::<E>(&envelope_of(fields)?)
}

/// Fixed metadata with every optional field present.
fn meta() -> Metadata {
    Metadata {
        event_id: Uuid::parse_str("0193717c-4a2b-7c3d-8e4f-5a6b7c8d9e0f").expect("uuid"),
        service: "inventory".into(),
        timestamp_ms: 1_732_809_600_000,
        correlation_id: Uuid::parse_str("0193717c-4a00-7000-8000-000000000001").expect("uuid"),
        causation_id: Some(Uuid::parse_str("0193717c-4a00-7000-8000-000000000002").expect("uuid")),
        headers: Headers::from([(
            "traceparent".to_owned(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
        )]),
    }
}

fn sample() -> Sample {
    Sample {
        id: 42,
        name: "db-1".into(),
        tags: vec!["prod".into(), "eu".into()],
    }
}

/// A valid entry of `Sample` with every field.
fn entry() -> Fields {
    to_fields(&encode(&sample(), &meta()).expect("encode"))
}

fn entry_of<E: Event>(event: &E) -> Fields {
    to_fields(&encode(event, &meta()).expect("encode"))
}

fn set(fields: &mut Fields, name: &str, value: impl Into<Vec<u8>>) {
    let slot = fields
        .iter_mut()
        .find(|(k, _)| k == name.as_bytes())
        .unwrap_or_else(|| panic!("no field {name}"));
    slot.1 = value.into();
}

fn get<'a>(fields: &'a Fields, name: &str) -> &'a [u8] {
    fields
        .iter()
        .find(|(k, _)| k == name.as_bytes())
        .map(|(_, v)| v.as_slice())
        .unwrap_or_else(|| panic!("no field {name}"))
}

fn without(mut fields: Fields, name: &str) -> Fields {
    let before = fields.len();
    fields.retain(|(k, _)| k != name.as_bytes());
    assert_eq!(fields.len(), before - 1, "field {name} not removed");
    fields
}

fn with_data(data: Vec<u8>) -> Fields {
    let mut fields = entry();
    set(&mut fields, "data", data);
    fields
}

/// Asserts the error and that it is (not) a schema mismatch, as the dead-letter reason needs.
#[track_caller]
fn assert_err<E: Event + Debug>(fields: &Fields, expected: DecodeError) {
    let err = decode::<E>(fields).expect_err("decoding should fail");
    assert_eq!(err, expected);
    let schema = matches!(
        expected,
        DecodeError::UnknownVersion { .. } | DecodeError::FingerprintMismatch { .. }
    );
    assert_eq!(
        err.is_schema_mismatch(),
        schema,
        "is_schema_mismatch of {err:?}"
    );
    // The message is printable and names something useful.
    assert!(!err.to_string().is_empty());
}

fn invalid(field: &'static str, reason: &str) -> DecodeError {
    DecodeError::InvalidField {
        field,
        reason: reason.to_owned(),
    }
}

fn not_msgpack(field: &'static str, reason: &str) -> DecodeError {
    DecodeError::NotMessagePack {
        field,
        reason: reason.to_owned(),
    }
}

fn data_mismatch(reason: &str) -> DecodeError {
    DecodeError::DataMismatch {
        event_type: "sample".into(),
        version: 1,
        reason: reason.to_owned(),
    }
}

// ---- strategies --------------------------------------------------------------------------------

/// Any Unicode scalar values, control characters and NUL included.
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..16).prop_map(|cs| cs.into_iter().collect())
}

fn f64_not_nan() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => any::<f64>().prop_filter("NaN never equals itself", |f| !f.is_nan()),
        1 => prop::sample::select(vec![
            0.0,
            -0.0,
            f64::MIN,
            f64::MAX,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            f64::EPSILON,
            f64::INFINITY,
            f64::NEG_INFINITY,
            5e-324,
        ]),
    ]
}

fn f32_not_nan() -> impl Strategy<Value = f32> {
    any::<f32>().prop_filter("NaN never equals itself", |f| !f.is_nan())
}

fn u128_any() -> impl Strategy<Value = u128> {
    prop_oneof![
        2 => any::<u128>(),
        1 => prop::sample::select(vec![
            0,
            1,
            u128::from(u64::MAX),
            u128::from(u64::MAX) + 1,
            u128::MAX - 1,
            u128::MAX,
        ]),
    ]
}

fn i128_any() -> impl Strategy<Value = i128> {
    prop_oneof![
        2 => any::<i128>(),
        1 => prop::sample::select(vec![
            0,
            -1,
            i128::from(i64::MIN),
            i128::from(i64::MIN) - 1,
            i128::from(u64::MAX) + 1,
            i128::MIN,
            i128::MIN + 1,
            i128::MAX,
        ]),
    ]
}

fn scalars() -> impl Strategy<Value = Scalars> {
    (
        (
            any::<u8>(),
            any::<u16>(),
            any::<u32>(),
            any::<u64>(),
            u128_any(),
        ),
        (
            any::<i8>(),
            any::<i16>(),
            any::<i32>(),
            any::<i64>(),
            i128_any(),
        ),
        (
            f32_not_nan(),
            f64_not_nan(),
            any::<bool>(),
            any::<char>(),
            text(),
        ),
    )
        .prop_map(
            |((u8, u16, u32, u64, u128), (i8, i16, i32, i64, i128), (f32, f64, flag, ch, text))| {
                Scalars {
                    u8,
                    u16,
                    u32,
                    u64,
                    u128,
                    i8,
                    i16,
                    i32,
                    i64,
                    i128,
                    f32,
                    f64,
                    flag,
                    ch,
                    text,
                    unit: (),
                }
            },
        )
}

fn inner() -> impl Strategy<Value = Inner> {
    (
        text(),
        f64_not_nan(),
        prop::collection::vec(any::<bool>(), 0..4),
        any::<Option<i64>>(),
    )
        .prop_map(|(label, weight, flags, count)| Inner {
            label,
            weight,
            flags,
            count,
        })
}

fn composite() -> impl Strategy<Value = Composite> {
    (
        (
            inner(),
            prop::option::of(inner()),
            prop::collection::vec(inner(), 0..3),
            prop::collection::btree_map(text(), inner(), 0..3),
            prop::collection::hash_map(text(), any::<i64>(), 0..4),
        ),
        (
            prop::collection::vec(prop::collection::vec(any::<Option<u32>>(), 0..3), 0..3),
            (any::<u8>(), text()),
            any::<[u16; 3]>(),
            text(),
            (any::<u64>(), 0u32..1_000_000_000),
        ),
    )
        .prop_map(
            |(
                (inner, maybe_inner, list, by_name, counters),
                (nested, pair, array, wrapped, (secs, nanos)),
            )| Composite {
                inner,
                maybe_inner,
                list,
                by_name,
                counters,
                nested,
                pair,
                array,
                wrapped: Newtype(wrapped),
                timeout: std::time::Duration::new(secs, nanos),
            },
        )
}

fn external() -> impl Strategy<Value = External> {
    prop_oneof![
        Just(External::Unit),
        any::<i64>().prop_map(External::Newtype),
        (any::<u8>(), text()).prop_map(|(a, b)| External::Tuple(a, b)),
        (any::<u64>(), prop::option::of(text()))
            .prop_map(|(id, note)| External::Struct { id, note }),
    ]
}

fn internal() -> impl Strategy<Value = Internal> {
    prop_oneof![
        Just(Internal::Unit),
        inner().prop_map(Internal::Newtype),
        (any::<u64>(), text()).prop_map(|(id, name)| Internal::Struct { id, name }),
    ]
}

fn adjacent() -> impl Strategy<Value = Adjacent> {
    prop_oneof![
        Just(Adjacent::Unit),
        any::<u32>().prop_map(Adjacent::Newtype),
        (any::<u8>(), text()).prop_map(|(a, b)| Adjacent::Tuple(a, b)),
        any::<u64>().prop_map(|id| Adjacent::Struct { id }),
    ]
}

fn enums() -> impl Strategy<Value = Enums> {
    (
        external(),
        internal(),
        adjacent(),
        prop::collection::vec(external(), 0..4),
        prop::option::of(adjacent()),
    )
        .prop_map(|(external, internal, adjacent, many, maybe)| Enums {
            external,
            internal,
            adjacent,
            many,
            maybe,
        })
}

fn json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // `Value::from` maps infinities to null; only finite floats are JSON numbers.
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

fn ids() -> impl Strategy<Value = Ids> {
    (
        uuid(),
        prop::option::of(uuid()),
        json(),
        prop::collection::btree_map(text(), json(), 0..3),
    )
        .prop_map(|(id, parent, extra, attrs)| Ids {
            id,
            parent,
            extra,
            attrs: attrs.into_iter().collect(),
        })
}

fn metadata() -> impl Strategy<Value = Metadata> {
    (
        uuid(),
        text(),
        any::<u64>(),
        uuid(),
        prop::option::of(uuid()),
        prop::collection::btree_map(text(), text(), 0..4),
    )
        .prop_map(
            |(event_id, service, timestamp_ms, correlation_id, causation_id, headers)| Metadata {
                event_id,
                service,
                timestamp_ms,
                correlation_id,
                causation_id,
                headers,
            },
        )
}

/// Encodes, parses the fields back and decodes; checks the envelope on the way.
fn roundtrip<E: Event + Debug + PartialEq>(
    event: &E,
    meta: &Metadata,
) -> Result<(), TestCaseError> {
    let encoded = encode(event, meta).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let fields = to_fields(&encoded);
    let env = envelope_of(&fields).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&env.event_type, E::NAME);
    prop_assert_eq!(env.version, E::VERSION);
    prop_assert_eq!(env.fingerprint, E::FINGERPRINT);
    prop_assert_eq!(&env.meta, meta);
    prop_assert_eq!(env.data.as_slice(), encoded.get("data").unwrap_or_default());
    let decoded: E = decode_event(&env).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&decoded, event);
    // The same event in v2: one field, the same envelope and the same payload bytes.
    let v2 = opsc_events::envelope::encode(event, meta)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(v2.fields().len(), 1);
    let env2 = envelope_of(&to_fields(&v2)).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&env2, &env);
    let decoded: E = decode_event(&env2).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&decoded, event);
    Ok(())
}

// ---- round trips -------------------------------------------------------------------------------

proptest! {
    #[test]
    fn scalars_roundtrip(event in scalars(), meta in metadata()) {
        roundtrip(&event, &meta)?;
    }

    #[test]
    fn composite_roundtrips(event in composite(), meta in metadata()) {
        roundtrip(&event, &meta)?;
    }

    #[test]
    fn enums_roundtrip(event in enums(), meta in metadata()) {
        roundtrip(&event, &meta)?;
    }

    #[test]
    fn ids_and_json_roundtrip(event in ids(), meta in metadata()) {
        roundtrip(&event, &meta)?;
    }

    /// Optional metadata fields are left out when empty, and come back empty.
    #[test]
    fn metadata_roundtrips(meta in metadata()) {
        let encoded = encode(&sample(), &meta).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(encoded.get("causation_id").is_some(), meta.causation_id.is_some());
        prop_assert_eq!(encoded.get("headers").is_some(), !meta.headers.is_empty());
        roundtrip(&sample(), &meta)?;
    }
}

#[test]
fn extremes_roundtrip() {
    let event = Scalars {
        u8: u8::MAX,
        u16: u16::MAX,
        u32: u32::MAX,
        u64: u64::MAX,
        u128: u128::MAX,
        i8: i8::MIN,
        i16: i16::MIN,
        i32: i32::MIN,
        i64: i64::MIN,
        i128: i128::MIN,
        f32: f32::MIN_POSITIVE,
        f64: f64::NEG_INFINITY,
        flag: true,
        ch: '\u{10FFFF}',
        text: "\0 héllo 🦀 \u{202E} 日本語 \u{FEFF}".into(),
        unit: (),
    };
    roundtrip(&event, &meta()).expect("extremes");
    let event = Scalars {
        u128: 0,
        i128: i128::MAX,
        ..event
    };
    roundtrip(&event, &meta()).expect("extremes");
}

// ---- what rmp-serde writes ---------------------------------------------------------------------

/// Payload fields are written by name, enum variants by name (never by index).
#[test]
fn payload_is_a_map_with_names() {
    let event = Enums {
        external: External::Struct { id: 1, note: None },
        internal: Internal::Struct {
            id: 2,
            name: "x".into(),
        },
        adjacent: Adjacent::Tuple(3, "y".into()),
        many: vec![
            External::Unit,
            External::Newtype(-4),
            External::Tuple(5, "z".into()),
        ],
        maybe: Some(Adjacent::Unit),
    };
    let data = rmp_serde::to_vec_named(&event).expect("encode");
    let encoded = encode(&event, &meta()).expect("encode");
    assert_eq!(encoded.get("data"), Some(data.as_slice()));
    let value: serde_json::Value = rmp_serde::from_slice(&data).expect("any msgpack");
    assert_eq!(
        value,
        serde_json::json!({
            "external": { "Struct": { "id": 1, "note": null } },
            "internal": { "kind": "struct", "id": 2, "name": "x" },
            "adjacent": { "t": "Tuple", "c": [3, "y"] },
            "many": ["Unit", { "Newtype": -4 }, { "Tuple": [5, "z"] }],
            "maybe": { "t": "Unit" },
        })
    );

    // Internally tagged: the tag is the first entry of the variant's own map.
    let data = msgpack(&Internal::Struct {
        id: 2,
        name: "x".into(),
    });
    let mut expected = vec![0x83, 0xa4];
    expected.extend(b"kind");
    expected.push(0xa6);
    expected.extend(b"struct");
    expected.extend([
        0xa2, b'i', b'd', 0x02, 0xa4, b'n', b'a', b'm', b'e', 0xa1, b'x',
    ]);
    assert_eq!(data, expected);
    let data = msgpack(&Internal::Newtype(Inner {
        label: "l".into(),
        weight: 0.5,
        flags: vec![],
        count: None,
    }));
    assert_eq!(
        data[..13],
        [
            0x85, 0xa4, b'k', b'i', b'n', b'd', 0xa7, b'n', b'e', b'w', b't', b'y', b'p'
        ]
    );

    // Byte for byte, for a small payload.
    let data = rmp_serde::to_vec_named(&ThingV2 {
        id: 7,
        note: Some("é".into()),
    })
    .expect("encode");
    assert_eq!(
        data,
        [
            0x82, // map of 2
            0xa2, b'i', b'd', 0x07, // "id": 7
            0xa4, b'n', b'o', b't', b'e', 0xa2, 0xc3, 0xa9, // "note": "é"
        ]
    );
}

/// How the types without a MessagePack counterpart are written (docs/WIRE.md lists these).
#[test]
fn special_types_on_the_wire() {
    #[derive(Serialize)]
    struct T {
        u: u128,
        i: i128,
        small: u128,
        id: Uuid,
        ch: char,
        unit: (),
        f: f32,
        d: std::time::Duration,
        bytes: Vec<u8>,
        marker: UnitStruct,
        ip: std::net::IpAddr,
    }
    #[derive(Serialize)]
    struct UnitStruct;
    let t = T {
        u: u128::MAX,
        i: -2,
        small: 1,
        id: Uuid::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10),
        ch: 'x',
        unit: (),
        f: 1.5,
        d: std::time::Duration::new(3, 4),
        bytes: vec![1, 2],
        marker: UnitStruct,
        ip: std::net::IpAddr::from([10, 0, 0, 1]),
    };
    let data = rmp_serde::to_vec_named(&t).expect("encode");
    let mut expected = vec![0x8b];
    expected.extend([0xa1, b'u', 0xc4, 16]);
    expected.extend([0xff; 16]); // bin 8, 16 bytes, big-endian
    expected.extend([0xa1, b'i', 0xc4, 16]);
    expected.extend((-2i128).to_be_bytes());
    expected.extend([0xa5, b's', b'm', b'a', b'l', b'l', 0xc4, 16]);
    expected.extend(1u128.to_be_bytes()); // always 16 bytes, even when small
    expected.extend([0xa2, b'i', b'd', 0xc4, 16]);
    expected.extend(1..=16u8); // the UUID's 16 bytes, not its text
    expected.extend([0xa2, b'c', b'h', 0xa1, b'x']);
    expected.extend([0xa4, b'u', b'n', b'i', b't', 0xc0]);
    expected.extend([0xa1, b'f', 0xca, 0x3f, 0xc0, 0x00, 0x00]); // float 32
    expected.extend([0xa1, b'd', 0x82, 0xa4, b's', b'e', b'c', b's', 0x03]);
    expected.extend([0xa5, b'n', b'a', b'n', b'o', b's', 0x04]);
    expected.extend([0xa5, b'b', b'y', b't', b'e', b's', 0x92, 0x01, 0x02]); // an array
    // A unit struct is an empty array, where `()` is nil.
    expected.extend([0xa6, b'm', b'a', b'r', b'k', b'e', b'r', 0x90]);
    // Addresses in serde's compact form: an externally tagged enum of byte arrays.
    expected.extend([0xa2, b'i', b'p', 0x81, 0xa2, b'V', b'4', 0x94, 10, 0, 0, 1]);
    assert_eq!(data, expected);
}

/// A unit struct is an empty array on the wire and `()` is nil, so their shapes differ: a unit
/// struct is an empty tuple. Equal fingerprints would let one be read as the other.
#[test]
fn unit_struct_is_an_empty_tuple() {
    assert_eq!(<Marker as EventSchema>::SHAPE, &Shape::Tuple(&[]));
    assert_eq!(<() as EventSchema>::SHAPE, &Shape::Unit);
    let event = Marked {
        marker: Marker,
        unit: (),
    };
    let mut expected = vec![0x82];
    expected.extend([0xa6, b'm', b'a', b'r', b'k', b'e', b'r', 0x90]);
    expected.extend([0xa4, b'u', b'n', b'i', b't', 0xc0]);
    assert_eq!(msgpack(&event), expected);
    roundtrip(&event, &meta()).expect("round trip");
    assert_ne!(Marked::FINGERPRINT, MarkedWithUnit::FINGERPRINT);
}

/// The entry's fields, in the order `encode` writes them.
#[test]
fn entry_fields_in_order() {
    let names: Vec<_> = encode(&sample(), &meta())
        .expect("encode")
        .fields()
        .map(|(k, _)| k.to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "event_type",
            "version",
            "schema",
            "event_id",
            "service",
            "timestamp",
            "correlation_id",
            "causation_id",
            "headers",
            "data"
        ]
    );
    let mut m = meta();
    m.causation_id = None;
    m.headers.clear();
    let names: Vec<_> = encode(&sample(), &m)
        .expect("encode")
        .fields()
        .map(|(k, _)| k.to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "event_type",
            "version",
            "schema",
            "event_id",
            "service",
            "timestamp",
            "correlation_id",
            "data"
        ]
    );
}

/// `Some(None)` and `None` are both nil on the wire: a nested option loses its inner level.
#[test]
fn nested_none_is_nil() {
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct T {
        v: Option<Option<u32>>,
    }
    let data = rmp_serde::to_vec_named(&T { v: Some(None) }).expect("encode");
    assert_eq!(data, [0x81, 0xa1, b'v', 0xc0]);
    let back: T = rmp_serde::from_slice(&data).expect("decode");
    assert_eq!(back, T { v: None });
}

/// The worked example of docs/WIRE.md, byte for byte.
#[test]
fn wire_example() {
    #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
    #[event(stream = "assets", name = "asset_created", version = 1)]
    struct AssetCreated {
        asset_id: u64,
        hostname: String,
        tags: Vec<String>,
    }
    let event = AssetCreated {
        asset_id: 7,
        hostname: "db-1".into(),
        tags: vec!["prod".into()],
    };
    let fields = entry_of(&event);
    let shown: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| {
            let k = String::from_utf8(k.clone()).expect("utf-8 name");
            let v = if k == "data" || k == "headers" {
                v.iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                String::from_utf8(v.clone()).expect("utf-8 value")
            };
            (k, v)
        })
        .collect();
    for (k, v) in &shown {
        println!("{k:>15} {v}");
    }
    let expected = [
        ("event_type", "asset_created"),
        ("version", "1"),
        ("schema", "706876dfd3739d5d"),
        ("event_id", "0193717c-4a2b-7c3d-8e4f-5a6b7c8d9e0f"),
        ("service", "inventory"),
        ("timestamp", "1732809600000"),
        ("correlation_id", "0193717c-4a00-7000-8000-000000000001"),
        ("causation_id", "0193717c-4a00-7000-8000-000000000002"),
        (
            "headers",
            "81 ab 74 72 61 63 65 70 61 72 65 6e 74 d9 37 30 30 2d 34 62 66 39 32 66 33 35 37 37 62 \
             33 34 64 61 36 61 33 63 65 39 32 39 64 30 65 30 65 34 37 33 36 2d 30 30 66 30 36 37 61 \
             61 30 62 61 39 30 32 62 37 2d 30 31",
        ),
        (
            "data",
            "83 a8 61 73 73 65 74 5f 69 64 07 a8 68 6f 73 74 6e 61 6d 65 a4 64 62 2d 31 a4 74 61 67 \
             73 91 a4 70 72 6f 64",
        ),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    assert_eq!(shown, expected);
    assert_eq!(decode::<AssetCreated>(&fields), Ok(event));
}

// ---- decode errors: the payload ----------------------------------------------------------------

#[test]
fn valid_entry_decodes() {
    assert_eq!(decode::<Sample>(&entry()), Ok(sample()));
    // Optional fields may be absent; unknown fields are ignored, even repeated.
    let mut fields = without(without(entry(), "causation_id"), "headers");
    fields.push((b"x-extra".to_vec(), b"1".to_vec()));
    fields.push((b"x-extra".to_vec(), b"2".to_vec()));
    let env = envelope_of(&fields).expect("envelope");
    assert_eq!(env.meta.causation_id, None);
    assert!(env.meta.headers.is_empty());
    assert_eq!(decode_event::<Sample>(&env), Ok(sample()));
}

#[test]
fn data_not_messagepack() {
    // 0xc1 is the one byte MessagePack never uses.
    let reserved = not_msgpack("data", "wrong msgpack marker Reserved");
    assert_err::<Sample>(&with_data(vec![0xc1]), reserved.clone());
    assert_err::<Sample>(&with_data(vec![0xc1, 1, 2, 3]), reserved);
    // Empty.
    assert_err::<Sample>(
        &with_data(vec![]),
        not_msgpack(
            "data",
            "IO error while reading marker: failed to fill whole buffer",
        ),
    );
    // Text is MessagePack only by accident: `h` is the integer 104, followed by garbage.
    assert_err::<Sample>(
        &with_data(b"hello world".to_vec()),
        not_msgpack("data", "10 trailing bytes after the value"),
    );
    // JSON is not MessagePack either: `{` (0x7b) is the integer 123.
    assert_err::<Sample>(
        &with_data(br#"{"id":42}"#.to_vec()),
        not_msgpack("data", "8 trailing bytes after the value"),
    );
}

#[test]
fn data_truncated() {
    let data = get(&entry(), "data").to_vec();
    // Cut where a value starts (the marker is missing) or inside one (its data is).
    let marker = not_msgpack(
        "data",
        "IO error while reading marker: failed to fill whole buffer",
    );
    let inside = not_msgpack(
        "data",
        "IO error while reading data: unexpected end of file",
    );
    assert_eq!(&data[..4], [0x83, 0xa2, b'i', b'd']);
    assert_err::<Sample>(&with_data(data[..1].to_vec()), marker.clone());
    assert_err::<Sample>(&with_data(data[..2].to_vec()), inside.clone());
    assert_err::<Sample>(&with_data(data[..4].to_vec()), marker.clone());
    for len in 0..data.len() {
        let err = decode::<Sample>(&with_data(data[..len].to_vec())).expect_err("truncated");
        assert!(err == marker || err == inside, "{len}: {err:?}");
    }
}

#[test]
fn data_with_trailing_bytes() {
    let mut data = get(&entry(), "data").to_vec();
    data.push(0xc0);
    assert_err::<Sample>(
        &with_data(data.clone()),
        not_msgpack("data", "1 trailing bytes after the value"),
    );
    // Two values back to back.
    let twice = [data.as_slice(), data.as_slice()].concat();
    assert_err::<Sample>(
        &with_data(twice),
        not_msgpack("data", "31 trailing bytes after the value"),
    );
}

fn msgpack<T: Serialize>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec_named(value).expect("encode")
}

#[test]
fn data_of_the_wrong_shape() {
    #[derive(Serialize)]
    struct WrongType {
        id: &'static str,
        name: &'static str,
        tags: Vec<String>,
    }
    #[derive(Serialize)]
    struct Missing {
        id: u64,
    }
    #[derive(Serialize)]
    struct Negative {
        id: i64,
        name: &'static str,
        tags: Vec<String>,
    }
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            msgpack(&WrongType {
                id: "42",
                name: "x",
                tags: vec![],
            }),
            "wrong msgpack marker FixStr(2)",
        ),
        (msgpack(&Missing { id: 1 }), "missing field `name`"),
        (
            msgpack(&Negative {
                id: -1,
                name: "x",
                tags: vec![],
            }),
            "invalid value: integer `-1`, expected u64",
        ),
        (
            msgpack(&"a string"),
            "invalid type: string \"a string\", expected struct Sample",
        ),
        (
            msgpack(&-1i64),
            "invalid type: integer `-1`, expected struct Sample",
        ),
        (
            vec![0xc0],
            "invalid type: unit value, expected struct Sample",
        ),
        // serde reads integer keys as field indexes: key 1 is `name`.
        (
            msgpack(&BTreeMap::from([(1, 2)])),
            "invalid type: integer `2`, expected a string",
        ),
    ];
    for (data, reason) in cases {
        assert_err::<Sample>(&with_data(data), data_mismatch(reason));
    }
}

/// What serde's derived `Deserialize` tolerates beyond the canonical form (docs/WIRE.md:
/// writers must not rely on it).
#[test]
fn lenient_payload_forms() {
    // Fields in another order, and unknown fields, are fine.
    let mut reordered = Vec::new();
    reordered.push(0x84);
    reordered.extend(msgpack(&"tags"));
    reordered.extend(msgpack(&["prod", "eu"]));
    reordered.extend(msgpack(&"extra"));
    reordered.extend(msgpack(&[1, 2, 3]));
    reordered.extend(msgpack(&"name"));
    reordered.extend(msgpack(&"db-1"));
    reordered.extend(msgpack(&"id"));
    reordered.extend(msgpack(&42));
    assert_eq!(decode::<Sample>(&with_data(reordered)), Ok(sample()));
    // An array of the field values in declaration order (rmp-serde's compact form).
    let positional = rmp_serde::to_vec(&sample()).expect("encode");
    assert_eq!(positional[0], 0x93);
    assert_eq!(decode::<Sample>(&with_data(positional)), Ok(sample()));
}

// ---- decode errors: envelope fields ------------------------------------------------------------

const REQUIRED: [&str; 8] = [
    "event_type",
    "version",
    "schema",
    "event_id",
    "service",
    "timestamp",
    "correlation_id",
    "data",
];

#[test]
fn each_missing_required_field() {
    for name in REQUIRED {
        let fields = without(entry(), name);
        assert_err::<Sample>(&fields, DecodeError::MissingField { field: name });
    }
    // No fields at all: the first required field is reported.
    assert_err::<Sample>(
        &Fields::new(),
        DecodeError::MissingField {
            field: "event_type",
        },
    );
}

#[test]
fn bad_version() {
    for bad in [
        "abc", "0", "70000", "65536", "-1", "+1", " 1", "1 ", "1.0", "", "0x1",
    ] {
        let mut fields = entry();
        set(&mut fields, "version", bad);
        assert_err::<Sample>(
            &fields,
            invalid("version", &format!("`{bad}` is not a version in 1..=65535")),
        );
    }
    let mut fields = entry();
    set(&mut fields, "version", vec![0xff]);
    assert_err::<Sample>(&fields, invalid("version", "not UTF-8"));
}

#[test]
fn bad_schema() {
    for bad in [
        "",
        "abc",
        "0123456789abcde",   // 15 digits
        "0123456789abcdef0", // 17 digits
        "0123456789abcdeg",
        "+123456789abcdef",
        " 123456789abcdef",
        "0x23456789abcdef",
    ] {
        let mut fields = entry();
        set(&mut fields, "schema", bad);
        assert_err::<Sample>(
            &fields,
            invalid("schema", &format!("`{bad}` is not 16 hex digits")),
        );
    }
}

#[test]
fn bad_ids() {
    for field in ["event_id", "correlation_id", "causation_id"] {
        for bad in [
            "not-a-uuid",
            "",
            "0193717c-4a2b-7c3d-8e4f-5a6b7c8d9e0",
            "0193717c-4a2b-7c3d-8e4f-5a6b7c8d9e0fa",
        ] {
            let mut fields = entry();
            set(&mut fields, field, bad);
            assert_err::<Sample>(&fields, invalid(field, &format!("`{bad}` is not a UUID")));
        }
    }
}

#[test]
fn bad_timestamp() {
    for bad in ["-5", "abc", "", "1.5", "18446744073709551616", "1e12"] {
        let mut fields = entry();
        set(&mut fields, "timestamp", bad);
        assert_err::<Sample>(
            &fields,
            invalid(
                "timestamp",
                &format!("`{bad}` is not milliseconds since the epoch"),
            ),
        );
    }
    let mut fields = entry();
    set(&mut fields, "timestamp", "18446744073709551615");
    assert_eq!(
        envelope_of(&fields).map(|e| e.meta.timestamp_ms),
        Ok(u64::MAX)
    );
}

#[test]
fn long_invalid_values_are_shortened() {
    let mut fields = entry();
    set(&mut fields, "timestamp", "9".repeat(100));
    assert_err::<Sample>(
        &fields,
        invalid(
            "timestamp",
            &format!(
                "`{}...` is not milliseconds since the epoch",
                "9".repeat(64)
            ),
        ),
    );
}

#[test]
fn non_utf8_text_fields() {
    for field in [
        "event_type",
        "service",
        "event_id",
        "correlation_id",
        "causation_id",
        "schema",
        "timestamp",
    ] {
        let mut fields = entry();
        set(&mut fields, field, vec![0xff, 0xfe, b'a']);
        assert_err::<Sample>(&fields, invalid(field, "not UTF-8"));
    }
}

#[test]
fn duplicate_fields() {
    for name in REQUIRED.iter().chain(["causation_id", "headers"].iter()) {
        let mut fields = entry();
        let value = get(&fields, name).to_vec();
        fields.push((name.as_bytes().to_vec(), value));
        assert_err::<Sample>(&fields, invalid(name, "the field appears more than once"));
    }
}

#[test]
fn headers_not_messagepack() {
    let mut fields = entry();
    set(&mut fields, "headers", vec![0xc1]);
    assert_err::<Sample>(
        &fields,
        not_msgpack("headers", "wrong msgpack marker Reserved"),
    );
    // MessagePack, but not a map of strings.
    let mut fields = entry();
    set(
        &mut fields,
        "headers",
        rmp_serde::to_vec(&[1, 2]).expect("encode"),
    );
    assert_err::<Sample>(
        &fields,
        not_msgpack("headers", "invalid type: sequence, expected a map"),
    );
    let mut fields = entry();
    set(
        &mut fields,
        "headers",
        rmp_serde::to_vec(&BTreeMap::from([("a", 1)])).expect("encode"),
    );
    assert_err::<Sample>(
        &fields,
        not_msgpack("headers", "invalid type: integer `1`, expected a string"),
    );
    // Trailing bytes.
    let mut fields = entry();
    let mut headers = get(&fields, "headers").to_vec();
    headers.push(0);
    set(&mut fields, "headers", headers);
    assert_err::<Sample>(
        &fields,
        not_msgpack("headers", "1 trailing bytes after the value"),
    );
    // An empty map is fine.
    let mut fields = entry();
    set(&mut fields, "headers", vec![0x80]);
    assert_eq!(decode::<Sample>(&fields), Ok(sample()));
}

// ---- decode errors: schema ---------------------------------------------------------------------

#[test]
fn unknown_event_type() {
    let mut fields = entry();
    set(&mut fields, "event_type", "asset_deleted");
    assert_err::<Sample>(
        &fields,
        DecodeError::UnknownEventType {
            event_type: "asset_deleted".into(),
            expected: "`sample`".into(),
        },
    );
}

#[test]
fn unknown_version() {
    let mut fields = entry();
    set(&mut fields, "version", "2");
    let err = decode::<Sample>(&fields).expect_err("unknown version");
    assert!(err.is_schema_mismatch());
    assert_err::<Sample>(
        &fields,
        DecodeError::UnknownVersion {
            event_type: "sample".into(),
            version: 2,
            known: vec![1],
        },
    );
    let mut fields = entry_of(&Thing {
        id: 1,
        note: "n".into(),
    });
    for version in [4, 65535] {
        set(&mut fields, "version", version.to_string());
        assert_err::<Thing>(
            &fields,
            DecodeError::UnknownVersion {
                event_type: "thing".into(),
                version,
                known: vec![3, 2, 1],
            },
        );
    }
}

#[test]
fn fingerprint_mismatch() {
    let mut fields = entry();
    set(&mut fields, "schema", "0123456789abcdef");
    let err = decode::<Sample>(&fields).expect_err("mismatch");
    assert!(err.is_schema_mismatch());
    assert_err::<Sample>(
        &fields,
        DecodeError::FingerprintMismatch {
            event_type: "sample".into(),
            version: 1,
            expected: Sample::FINGERPRINT,
            found: 0x0123_4567_89ab_cdef,
        },
    );
    // Upper-case hex digits are read too.
    let mut fields = entry();
    let upper = format!("{:016X}", Sample::FINGERPRINT);
    set(&mut fields, "schema", upper);
    assert_eq!(decode::<Sample>(&fields), Ok(sample()));
}

#[test]
fn upcast_decodes_older_versions() {
    let v1 = entry_of(&ThingV1 { id: 5 });
    assert_eq!(
        decode::<Thing>(&v1),
        Ok(Thing {
            id: 5,
            note: String::new()
        })
    );
    assert_eq!(decode::<ThingV2>(&v1), Ok(ThingV2 { id: 5, note: None }));
    let v2 = entry_of(&ThingV2 {
        id: 6,
        note: Some("x".into()),
    });
    assert_eq!(
        decode::<Thing>(&v2),
        Ok(Thing {
            id: 6,
            note: "x".into()
        })
    );
    // An older type does not read newer versions.
    assert_err::<ThingV1>(
        &v2,
        DecodeError::UnknownVersion {
            event_type: "thing".into(),
            version: 2,
            known: vec![1],
        },
    );
}

#[test]
fn fingerprint_mismatch_on_an_upcast_version() {
    // A version-1 entry whose schema is not v1's (here: v2's).
    let mut fields = entry_of(&ThingV1 { id: 5 });
    set(
        &mut fields,
        "schema",
        format!("{:016x}", ThingV2::FINGERPRINT),
    );
    let expected = DecodeError::FingerprintMismatch {
        event_type: "thing".into(),
        version: 1,
        expected: ThingV1::FINGERPRINT,
        found: ThingV2::FINGERPRINT,
    };
    assert!(
        decode::<Thing>(&fields)
            .expect_err("mismatch")
            .is_schema_mismatch()
    );
    // Through a chain of one link and of two.
    assert_err::<ThingV2>(&fields, expected.clone());
    assert_err::<Thing>(&fields, expected);
    // The same at the middle of the chain.
    let mut fields = entry_of(&ThingV2 { id: 5, note: None });
    set(&mut fields, "schema", "ffffffffffffffff");
    assert_err::<Thing>(
        &fields,
        DecodeError::FingerprintMismatch {
            event_type: "thing".into(),
            version: 2,
            expected: ThingV2::FINGERPRINT,
            found: u64::MAX,
        },
    );
}

#[test]
fn data_mismatch_on_an_upcast_version() {
    let mut fields = entry_of(&ThingV1 { id: 5 });
    set(
        &mut fields,
        "data",
        rmp_serde::to_vec_named(&"x").expect("encode"),
    );
    assert_err::<Thing>(
        &fields,
        DecodeError::DataMismatch {
            event_type: "thing".into(),
            version: 1,
            reason: "invalid type: string \"x\", expected struct ThingV1".into(),
        },
    );
}

#[test]
fn decode_data_alone() {
    let data = rmp_serde::to_vec_named(&sample()).expect("encode");
    assert_eq!(decode_data::<Sample>(&data), Ok(sample()));
    assert_eq!(
        decode_data::<Sample>(&[0xc1]),
        Err(not_msgpack("data", "wrong msgpack marker Reserved"))
    );
}

// ---- large and hostile payloads ----------------------------------------------------------------

const TEN_MB: usize = 10 * 1024 * 1024;

#[test]
fn ten_megabyte_payload_decodes() {
    let big = Sample {
        id: 1,
        name: "x".repeat(TEN_MB),
        tags: vec!["t".repeat(1000); 100],
    };
    let fields = entry_of(&big);
    assert!(get(&fields, "data").len() > TEN_MB);
    assert_eq!(decode::<Sample>(&fields), Ok(big));
}

#[test]
fn ten_megabyte_garbage_is_an_error() {
    // Deterministic pseudo-random bytes (xorshift).
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let garbage: Vec<u8> = (0..TEN_MB)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    // Its first bytes happen to be one complete value; the rest is left over.
    assert_err::<Sample>(
        &with_data(garbage),
        not_msgpack("data", "10485746 trailing bytes after the value"),
    );
    // A 10 MB binary value: MessagePack, not a `Sample`.
    let mut bin = vec![0xc6];
    bin.extend((TEN_MB as u32).to_be_bytes());
    bin.resize(5 + TEN_MB, 0xab);
    assert_err::<Sample>(
        &with_data(bin.clone()),
        data_mismatch("invalid type: integer `171`, expected a string"),
    );
    // The same with its last byte missing.
    bin.pop();
    assert_err::<Sample>(
        &with_data(bin),
        not_msgpack(
            "data",
            "IO error while reading data: unexpected end of file",
        ),
    );
    // A length prefix that promises 4 GiB and delivers nothing: no huge allocation.
    assert_err::<Sample>(
        &with_data(vec![0xc6, 0xff, 0xff, 0xff, 0xff]),
        not_msgpack(
            "data",
            "IO error while reading data: unexpected end of file",
        ),
    );
    assert_err::<Sample>(
        &with_data(vec![0xdd, 0xff, 0xff, 0xff, 0xff]),
        not_msgpack(
            "data",
            "IO error while reading marker: failed to fill whole buffer",
        ),
    );
}

#[test]
fn deeply_nested_payload_is_an_error_not_a_stack_overflow() {
    let too_deep = not_msgpack("data", "depth limit exceeded");
    // 10 MB of "array of one element", nested: far beyond any sane depth.
    let nested = vec![0x91; TEN_MB];
    assert_err::<Sample>(&with_data(nested.clone()), too_deep.clone());
    // The same inside a JSON field, which accepts any value and so recurses as deep as the data.
    let mut data = vec![0x84];
    data.extend(msgpack(&"id"));
    data.extend(msgpack(&Uuid::nil()));
    data.extend(msgpack(&"parent"));
    data.push(0xc0);
    data.extend(msgpack(&"attrs"));
    data.push(0x80);
    data.extend(msgpack(&"extra"));
    data.extend(&nested);
    data.push(0xc0);
    let mut fields = entry_of(&Ids {
        id: Uuid::nil(),
        parent: None,
        extra: serde_json::Value::Null,
        attrs: serde_json::Map::new(),
    });
    set(&mut fields, "data", data);
    assert_err::<Ids>(&fields, too_deep.clone());
    // `headers` is a flat map of strings: the first array is already wrong.
    let mut fields = entry();
    set(&mut fields, "headers", nested);
    assert_err::<Sample>(
        &fields,
        not_msgpack("headers", "invalid type: sequence, expected a map"),
    );
}

/// `MAX_NESTING` nested arrays are accepted (as JSON), one more is an error.
#[test]
fn nesting_limit() {
    use opsc_events::envelope::MAX_NESTING;
    let ids = |extra: serde_json::Value| Ids {
        id: Uuid::nil(),
        parent: None,
        extra,
        attrs: serde_json::Map::new(),
    };
    let nested = |levels: usize| {
        let mut v = serde_json::Value::Null;
        for _ in 0..levels {
            v = serde_json::Value::Array(vec![v]);
        }
        v
    };
    // The event's own map is one level.
    let deepest = ids(nested(MAX_NESTING - 1));
    assert_eq!(decode::<Ids>(&entry_of(&deepest)), Ok(deepest));
    let too_deep = entry_of(&ids(nested(MAX_NESTING)));
    assert_err::<Ids>(&too_deep, not_msgpack("data", "depth limit exceeded"));
    // Run on a small stack, as a worker thread of a busy process might.
    std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(move || {
            let data = vec![0x91; 100_000];
            assert!(decode_data::<Ids>(&data).is_err());
            assert!(decode_data::<Sample>(&data).is_err());
            assert!(decode_data::<Enums>(&data).is_err());
        })
        .expect("spawn")
        .join()
        .expect("no stack overflow");
}

// ---- arbitrary input never panics --------------------------------------------------------------

fn field_name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::sample::select(
            REQUIRED.iter().chain(["causation_id", "headers"].iter()).map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>()
        ),
        1 => prop::collection::vec(any::<u8>(), 0..12),
    ]
}

/// A mutation of a valid entry: most of it stays valid, so decoding gets deep.
#[derive(Debug, Clone)]
enum Mutation {
    Remove(usize),
    Duplicate(usize),
    Replace(usize, Vec<u8>),
    Truncate(usize, usize),
    FlipBit(usize, usize, u8),
    Append(usize, Vec<u8>),
    Add(Vec<u8>, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let bytes = || prop::collection::vec(any::<u8>(), 0..40);
    prop_oneof![
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Duplicate),
        (any::<usize>(), bytes()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(i, n)| Mutation::Truncate(i, n)),
        (any::<usize>(), any::<usize>(), 0u8..8).prop_map(|(i, p, b)| Mutation::FlipBit(i, p, b)),
        (any::<usize>(), bytes()).prop_map(|(i, b)| Mutation::Append(i, b)),
        (field_name(), bytes()).prop_map(|(k, v)| Mutation::Add(k, v)),
    ]
}

fn apply(fields: &mut Fields, m: &Mutation) {
    if fields.is_empty() {
        return;
    }
    let n = fields.len();
    match m {
        Mutation::Remove(i) => {
            fields.remove(i % n);
        }
        Mutation::Duplicate(i) => {
            let f = fields[i % n].clone();
            fields.push(f);
        }
        Mutation::Replace(i, b) => fields[i % n].1 = b.clone(),
        Mutation::Truncate(i, len) => {
            let v = &mut fields[i % n].1;
            let keep = if v.is_empty() { 0 } else { len % v.len() };
            v.truncate(keep);
        }
        Mutation::FlipBit(i, pos, bit) => {
            let v = &mut fields[i % n].1;
            if !v.is_empty() {
                let p = pos % v.len();
                v[p] ^= 1 << bit;
            }
        }
        Mutation::Append(i, b) => fields[i % n].1.extend_from_slice(b),
        Mutation::Add(k, v) => fields.push((k.clone(), v.clone())),
    }
}

/// Decodes as every test event type; only errors or values may come out.
fn decode_all(fields: &Fields) {
    if let Ok(env) = envelope_of(fields) {
        let _ = decode_event::<Sample>(&env);
        let _ = decode_event::<Thing>(&env);
        let _ = decode_event::<Enums>(&env);
        let _ = decode_event::<Composite>(&env);
        let _ = decode_event::<Ids>(&env);
        let _ = decode_event::<Scalars>(&env);
        let _ = decode_data::<Enums>(&env.data);
        let _ = decode_data::<Composite>(&env.data);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_fields_never_panic(
        fields in prop::collection::vec((field_name(), prop::collection::vec(any::<u8>(), 0..64)), 0..14)
    ) {
        decode_all(&fields);
    }

    #[test]
    fn arbitrary_data_never_panics(data in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut fields = entry();
        set(&mut fields, "data", data.clone());
        decode_all(&fields);
        let _ = decode_data::<Enums>(&data);
        let _ = decode_data::<Scalars>(&data);
        let _ = decode_data::<Ids>(&data);
    }

    #[test]
    fn mutated_entries_never_panic(
        which in 0usize..4,
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut fields = match which {
            0 => entry(),
            1 => entry_of(&Thing { id: 9, note: "n".into() }),
            2 => entry_of(&ThingV1 { id: 9 }),
            _ => entry_of(&Enums {
                external: External::Tuple(1, "a".into()),
                internal: Internal::Newtype(Inner { label: "l".into(), weight: 1.5, flags: vec![true], count: Some(-3) }),
                adjacent: Adjacent::Struct { id: 2 },
                many: vec![External::Unit],
                maybe: None,
            }),
        };
        for m in &mutations {
            apply(&mut fields, m);
        }
        decode_all(&fields);
    }
}

/// Why `#[derive(Event)]` rejects 128-bit integers inside internally tagged enums
/// (`tests/ui/event/fail/wide_int_internally_tagged.rs`): MessagePack cannot carry them through
/// serde's buffering of such an enum's content, while the other taggings read them directly.
#[test]
fn wide_ints_decode_except_inside_internally_tagged_enums() {
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(tag = "kind")]
    enum InternallyTagged {
        Big { n: u128 },
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(tag = "t", content = "c")]
    enum AdjacentlyTagged {
        Big { n: u128 },
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum ExternallyTagged {
        Big { n: i128 },
    }
    let n = u128::MAX - 7;
    let bytes = rmp_serde::to_vec_named(&InternallyTagged::Big { n }).unwrap();
    assert!(rmp_serde::from_slice::<InternallyTagged>(&bytes).is_err());
    let bytes = rmp_serde::to_vec_named(&AdjacentlyTagged::Big { n }).unwrap();
    assert_eq!(
        rmp_serde::from_slice::<AdjacentlyTagged>(&bytes).unwrap(),
        AdjacentlyTagged::Big { n }
    );
    let bytes = rmp_serde::to_vec_named(&ExternallyTagged::Big { n: i128::MIN }).unwrap();
    assert_eq!(
        rmp_serde::from_slice::<ExternallyTagged>(&bytes).unwrap(),
        ExternallyTagged::Big { n: i128::MIN }
    );
}

#[test]
fn the_wide_int_check_follows_the_shape() {
    use opsc_events::__private::undecodable;
    assert!(undecodable(<Enums as EventSchema>::SHAPE).is_none());
    assert!(undecodable(<u128 as EventSchema>::SHAPE).is_none());
    assert!(undecodable(<Internal as EventSchema>::SHAPE).is_none());
}
