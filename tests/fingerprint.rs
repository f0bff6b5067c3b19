//! Schema fingerprints: a golden file that pins the fingerprints of a fixed set of event types
//! (same source → same fingerprint on every build and platform), and the structural rules of
//! SPEC §3: field and variant order, Rust type names, skipped fields and `#[serde(default)]` do
//! not count; wire names, types, tagging and the set of fields do.
//!
//! The golden file is `tests/golden/fingerprints.txt`. When a fingerprint changes on purpose,
//! rewrite it with `UPDATE_GOLDEN=1 cargo test --test fingerprint` and review the diff: a changed
//! line means entries written by the old code are no longer decodable by the new one.

#![allow(dead_code)] // the types exist for their schemas; most fields are never read

use opsc_events::prelude::*;
use opsc_events::schema::{Shape, Tagging, VariantKind, fingerprint};
use serde::{Deserialize, Serialize};

/// The golden types: every kind of shape the schema model knows, each at least once.
mod golden {
    use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

    use opsc_events::prelude::*;
    use serde::{Deserialize, Serialize};

    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "golden", name = "primitives", version = 1)]
    pub(crate) struct Primitives {
        pub(crate) unit: (),
        pub(crate) flag: bool,
        pub(crate) i8: i8,
        pub(crate) i16: i16,
        pub(crate) i32: i32,
        pub(crate) i64: i64,
        pub(crate) i128: i128,
        pub(crate) u8: u8,
        pub(crate) u16: u16,
        pub(crate) u32: u32,
        pub(crate) u64: u64,
        pub(crate) u128: u128,
        pub(crate) f32: f32,
        pub(crate) f64: f64,
        pub(crate) ch: char,
    }

    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "golden", name = "strings", version = 3)]
    pub(crate) struct Strings {
        pub(crate) owned: String,
        pub(crate) boxed: Box<str>,
        pub(crate) maybe: Option<String>,
        pub(crate) list: Vec<String>,
        pub(crate) path: std::path::PathBuf,
    }

    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "golden", name = "containers", version = 1)]
    pub(crate) struct Containers {
        pub(crate) opt: Option<u32>,
        pub(crate) opt_opt: Option<Option<u32>>,
        pub(crate) seq: Vec<u64>,
        pub(crate) deque: VecDeque<i16>,
        pub(crate) set: BTreeSet<String>,
        pub(crate) nested: Vec<Option<Vec<u8>>>,
        pub(crate) array: [u8; 4],
        pub(crate) pair: (u8, String),
        pub(crate) triple: (bool, i64, Option<f64>),
        pub(crate) boxed: Box<u16>,
    }

    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "golden", name = "maps", version = 1)]
    pub(crate) struct Maps {
        pub(crate) counts: HashMap<String, u64>,
        pub(crate) tags: BTreeMap<String, Vec<String>>,
        pub(crate) by_char: BTreeMap<char, bool>,
        pub(crate) nested: BTreeMap<String, BTreeMap<String, i32>>,
    }

    #[derive(EventSchema, Serialize, Deserialize)]
    pub(crate) struct Address {
        pub(crate) street: String,
        pub(crate) zip: Option<u32>,
    }

    #[derive(EventSchema, Serialize, Deserialize)]
    pub(crate) struct Person {
        pub(crate) name: String,
        pub(crate) address: Address,
        pub(crate) previous: Vec<Address>,
    }

    #[derive(EventSchema, Serialize, Deserialize)]
    pub(crate) struct Meters(pub(crate) f64);

    #[derive(EventSchema, Serialize, Deserialize)]
    pub(crate) struct Point(pub(crate) i32, pub(crate) i32);

    #[derive(EventSchema, Serialize, Deserialize)]
    pub(crate) struct Marker;

    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "golden", name = "nested", version = 2)]
    pub(crate) struct Nested {
        pub(crate) owner: Person,
        pub(crate) contacts: BTreeMap<String, Person>,
        pub(crate) distance: Meters,
        pub(crate) at: Point,
        pub(crate) marker: Marker,
        pub(crate) timeout: std::time::Duration,
    }

    #[derive(EventSchema, Serialize, Deserialize)]
    pub(crate) enum External {
        Unit,
        Newtype(u32),
        Tuple(u8, String),
        Struct { id: u64, label: Option<String> },
    }

    #[derive(EventSchema, Serialize, Deserialize)]
    pub(crate) struct Payload {
        pub(crate) value: i64,
    }

    #[derive(EventSchema, Serialize, Deserialize)]
    #[serde(tag = "type")]
    pub(crate) enum Internal {
        Unit,
        Newtype(Payload),
        Struct { id: u64 },
    }

    #[derive(EventSchema, Serialize, Deserialize)]
    #[serde(tag = "t", content = "c")]
    pub(crate) enum Adjacent {
        Unit,
        Newtype(u32),
        Tuple(u8, String),
        Struct { id: u64 },
    }

    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "golden", name = "enums", version = 1)]
    pub(crate) struct Enums {
        pub(crate) external: External,
        pub(crate) internal: Internal,
        pub(crate) adjacent: Adjacent,
        pub(crate) many: Vec<External>,
        pub(crate) maybe: Option<Adjacent>,
    }

    #[derive(EventSchema, Serialize, Deserialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE", rename_all_fields = "camelCase")]
    pub(crate) enum Status {
        Up,
        Degraded {
            since_ms: u64,
            error_rate: f32,
        },
        #[serde(rename = "gone")]
        Down,
        #[serde(rename_all = "kebab-case")]
        Maintenance {
            window_start: u64,
        },
    }

    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "golden", name = "renames", version = 1)]
    #[serde(rename_all = "camelCase")]
    pub(crate) struct Renames {
        pub(crate) asset_id: u64,
        #[serde(rename = "host")]
        pub(crate) hostname: String,
        pub(crate) status: Status,
        pub(crate) r#type: String,
    }

    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "golden", name = "ids_and_json", version = 1)]
    pub(crate) struct IdsAndJson {
        pub(crate) id: uuid::Uuid,
        pub(crate) parent: Option<uuid::Uuid>,
        pub(crate) children: Vec<uuid::Uuid>,
        pub(crate) extra: serde_json::Value,
        pub(crate) attrs: serde_json::Map<String, serde_json::Value>,
    }

    #[derive(EventSchema, Serialize, Deserialize)]
    pub(crate) enum Skipping {
        Kept,
        #[serde(skip)]
        Hidden,
    }

    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "golden", name = "skips_and_defaults", version = 1)]
    pub(crate) struct SkipsAndDefaults {
        pub(crate) kept: u32,
        #[serde(skip)]
        pub(crate) cache: Vec<u8>,
        #[serde(default)]
        pub(crate) defaulted: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub(crate) sparse: Option<u8>,
        pub(crate) kind: Skipping,
    }

    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "golden", name = "upcast", version = 1)]
    pub(crate) struct UpcastV1 {
        pub(crate) id: u64,
    }

    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "golden", name = "upcast", version = 2, upcast_from = UpcastV1)]
    pub(crate) struct UpcastV2 {
        pub(crate) id: u64,
        pub(crate) note: Option<String>,
    }

    impl From<UpcastV1> for UpcastV2 {
        fn from(v1: UpcastV1) -> Self {
            UpcastV2 {
                id: v1.id,
                note: None,
            }
        }
    }

    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "golden", name = "empty", version = 1)]
    pub(crate) struct Empty {}
}

const GOLDEN_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/fingerprints.txt");

fn line<E: Event>() -> String {
    let schema = E::schema();
    // The constant, the schema value and a fresh computation agree.
    assert_eq!(schema.fingerprint, E::FINGERPRINT, "{}", E::NAME);
    assert_eq!(fingerprint(E::SHAPE), E::FINGERPRINT, "{}", E::NAME);
    format!("{} {} {}", E::NAME, E::VERSION, schema.fingerprint_hex())
}

fn golden_content() -> String {
    let lines = [
        line::<golden::Primitives>(),
        line::<golden::Strings>(),
        line::<golden::Containers>(),
        line::<golden::Maps>(),
        line::<golden::Nested>(),
        line::<golden::Enums>(),
        line::<golden::Renames>(),
        line::<golden::IdsAndJson>(),
        line::<golden::SkipsAndDefaults>(),
        line::<golden::UpcastV1>(),
        line::<golden::UpcastV2>(),
        line::<golden::Empty>(),
    ];
    let mut out = String::new();
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
    out
}

#[test]
fn golden_fingerprints() {
    let expected = golden_content();
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden"))
            .expect("create tests/golden");
        std::fs::write(GOLDEN_PATH, &expected).expect("write the golden file");
        return;
    }
    // A checkout with CRLF line endings is the same file.
    match std::fs::read_to_string(GOLDEN_PATH).map(|s| s.replace("\r\n", "\n")) {
        Ok(found) if found == expected => {}
        Ok(found) => {
            let changed: Vec<&str> = expected
                .lines()
                .filter(|l| !found.lines().any(|f| f == *l))
                .collect();
            panic!(
                "fingerprints differ from {GOLDEN_PATH}: {changed:?}.\n\
                 A changed fingerprint means entries written by older code no longer decode.\n\
                 If the change is intended, run `UPDATE_GOLDEN=1 cargo test --test fingerprint`.\n\
                 --- file ---\n{found}--- computed (the new content) ---\n{expected}"
            )
        }
        Err(e) => panic!(
            "cannot read {GOLDEN_PATH} ({e}); create it with \
             `UPDATE_GOLDEN=1 cargo test --test fingerprint`. New content:\n{expected}"
        ),
    }
}

/// The fingerprint is a compile-time constant (usable in `const` items and patterns).
#[test]
fn fingerprint_is_const() {
    const F: u64 = <golden::Primitives as Event>::FINGERPRINT;
    const G: u64 = fingerprint(<golden::Primitives as EventSchema>::SHAPE);
    assert_eq!(F, G);
    assert_ne!(F, 0);
}

/// Golden values of simple shapes, so that a reimplementation in another language can check
/// itself against leaf values before whole events (see docs/WIRE.md).
#[test]
fn leaf_fingerprints() {
    let cases: [(&Shape, u64); 6] = [
        (<u64 as EventSchema>::SHAPE, 0x9319_1ebc_1bc1_fba9),
        (<String as EventSchema>::SHAPE, 0x82fd_2c53_e283_cde5),
        (<() as EventSchema>::SHAPE, 0x60f0_6d20_6a05_6798),
        (
            <Vec<Option<u32>> as EventSchema>::SHAPE,
            0x542e_ff7e_29eb_faaa,
        ),
        (
            <golden::UpcastV1 as EventSchema>::SHAPE,
            0xa79f_7432_c13a_abfd,
        ),
        (<golden::Empty as EventSchema>::SHAPE, 0xcf7e_b9bd_bebf_4f2f),
    ];
    for (shape, expected) in cases {
        assert_eq!(
            fingerprint(shape),
            expected,
            "{shape}: {:016x}",
            fingerprint(shape)
        );
    }
}

// ---- structural rules --------------------------------------------------------------------------

/// The fingerprint of `$m::Ev`.
macro_rules! fp {
    ($m:ident) => {
        <$m::Ev as Event>::FINGERPRINT
    };
}

mod base {
    use super::*;
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        pub(crate) asset_id: u32,
        pub(crate) hostname: String,
        pub(crate) tags: Vec<String>,
    }
}

mod reordered {
    use super::*;
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        pub(crate) tags: Vec<String>,
        pub(crate) asset_id: u32,
        pub(crate) hostname: String,
    }
}

mod renamed_field {
    use super::*;
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        pub(crate) id: u32,
        pub(crate) hostname: String,
        pub(crate) tags: Vec<String>,
    }
}

mod serde_renamed_field {
    use super::*;
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        #[serde(rename = "id")]
        pub(crate) asset_id: u32,
        pub(crate) hostname: String,
        pub(crate) tags: Vec<String>,
    }
}

mod rename_all_camel {
    use super::*;
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    #[serde(rename_all = "camelCase")]
    pub(crate) struct Ev {
        pub(crate) asset_id: u32,
        pub(crate) hostname: String,
        pub(crate) tags: Vec<String>,
    }
}

mod camel_by_hand {
    use super::*;
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        #[serde(rename = "assetId")]
        pub(crate) asset_id: u32,
        pub(crate) hostname: String,
        pub(crate) tags: Vec<String>,
    }
}

mod retyped_u64 {
    use super::*;
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        pub(crate) asset_id: u64,
        pub(crate) hostname: String,
        pub(crate) tags: Vec<String>,
    }
}

mod retyped_i32 {
    use super::*;
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        pub(crate) asset_id: i32,
        pub(crate) hostname: String,
        pub(crate) tags: Vec<String>,
    }
}

mod retyped_option {
    use super::*;
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        pub(crate) asset_id: Option<u32>,
        pub(crate) hostname: String,
        pub(crate) tags: Vec<String>,
    }
}

mod retyped_inner {
    use super::*;
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        pub(crate) asset_id: u32,
        pub(crate) hostname: String,
        pub(crate) tags: Vec<u64>,
    }
}

mod added_field {
    use super::*;
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        pub(crate) asset_id: u32,
        pub(crate) hostname: String,
        pub(crate) tags: Vec<String>,
        pub(crate) rack: Option<String>,
    }
}

mod removed_field {
    use super::*;
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        pub(crate) asset_id: u32,
        pub(crate) hostname: String,
    }
}

mod skipped_field {
    use super::*;
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        pub(crate) asset_id: u32,
        #[serde(skip)]
        pub(crate) cache: Vec<u8>,
        pub(crate) hostname: String,
        pub(crate) tags: Vec<String>,
        #[serde(skip_serializing, default)]
        pub(crate) local_only: bool,
    }
}

mod defaulted_field {
    use super::*;
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        pub(crate) asset_id: u32,
        pub(crate) hostname: String,
        #[serde(default)]
        pub(crate) tags: Vec<String>,
    }
}

mod other_identity {
    use super::*;
    /// Same payload, other stream, name, version and Rust name: the fingerprint is structural.
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "elsewhere", name = "something.else", version = 9)]
    pub(crate) struct Ev {
        pub(crate) asset_id: u32,
        pub(crate) hostname: String,
        pub(crate) tags: Vec<String>,
    }
}

mod swapped_types {
    use super::*;
    /// The same names and the same multiset of types, assigned to other fields.
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        pub(crate) a: u32,
        pub(crate) b: u64,
    }
    pub(crate) mod swapped {
        use super::*;
        #[derive(Event, Serialize, Deserialize)]
        #[event(stream = "rules", name = "ev")]
        pub(crate) struct Ev {
            pub(crate) a: u64,
            pub(crate) b: u32,
        }
    }
}

#[test]
fn reordering_fields_keeps_the_fingerprint() {
    assert_eq!(fp!(base), fp!(reordered));
}

#[test]
fn renaming_a_field_changes_the_fingerprint() {
    assert_ne!(fp!(base), fp!(renamed_field));
    // `#[serde(rename)]` counts as the wire name: the same as declaring the field so.
    assert_ne!(fp!(base), fp!(serde_renamed_field));
    assert_eq!(fp!(renamed_field), fp!(serde_renamed_field));
    // `rename_all` too.
    assert_ne!(fp!(base), fp!(rename_all_camel));
    assert_eq!(fp!(rename_all_camel), fp!(camel_by_hand));
}

#[test]
fn retyping_a_field_changes_the_fingerprint() {
    let all = [
        fp!(base),
        fp!(retyped_u64),
        fp!(retyped_i32),
        fp!(retyped_option),
        fp!(retyped_inner),
    ];
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert_ne!(a, b);
        }
    }
    assert_ne!(
        fp!(swapped_types),
        <swapped_types::swapped::Ev as Event>::FINGERPRINT
    );
}

#[test]
fn adding_or_removing_a_field_changes_the_fingerprint() {
    assert_ne!(fp!(base), fp!(added_field));
    assert_ne!(fp!(base), fp!(removed_field));
    assert_ne!(fp!(added_field), fp!(removed_field));
}

#[test]
fn skipped_fields_and_defaults_do_not_count() {
    assert_eq!(fp!(base), fp!(skipped_field));
    assert_eq!(fp!(base), fp!(defaulted_field));
}

#[test]
fn identity_is_not_part_of_the_fingerprint() {
    assert_eq!(fp!(base), fp!(other_identity));
}

// ---- nested types ------------------------------------------------------------------------------

mod nested_base {
    use super::*;
    #[derive(EventSchema, Serialize, Deserialize)]
    pub(crate) struct Location {
        pub(crate) site: String,
        pub(crate) rack: u16,
    }
    #[derive(EventSchema, Serialize, Deserialize)]
    pub(crate) enum Kind {
        Server,
        Switch { ports: u16 },
    }
    #[derive(EventSchema, Serialize, Deserialize)]
    pub(crate) struct Serial(pub(crate) String);
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        pub(crate) location: Location,
        pub(crate) kind: Kind,
        pub(crate) serial: Serial,
    }
}

mod nested_type_renamed {
    use super::*;
    /// `Location`, `Kind` and `Serial` under other Rust names: the wire is the same.
    #[derive(EventSchema, Serialize, Deserialize)]
    pub(crate) struct Place {
        pub(crate) site: String,
        pub(crate) rack: u16,
    }
    #[derive(EventSchema, Serialize, Deserialize)]
    pub(crate) enum DeviceKind {
        Server,
        Switch { ports: u16 },
    }
    #[derive(EventSchema, Serialize, Deserialize)]
    pub(crate) struct SerialNumber(pub(crate) String);
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        pub(crate) location: Place,
        pub(crate) kind: DeviceKind,
        pub(crate) serial: SerialNumber,
    }
}

mod nested_newtype_unwrapped {
    use super::*;
    /// A newtype struct is its inner value on the wire.
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        pub(crate) location: super::nested_base::Location,
        pub(crate) kind: super::nested_base::Kind,
        pub(crate) serial: String,
    }
}

mod nested_field_reordered {
    use super::*;
    #[derive(EventSchema, Serialize, Deserialize)]
    pub(crate) struct Location {
        pub(crate) rack: u16,
        pub(crate) site: String,
    }
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        pub(crate) serial: super::nested_base::Serial,
        pub(crate) location: Location,
        pub(crate) kind: super::nested_base::Kind,
    }
}

mod nested_field_retyped {
    use super::*;
    #[derive(EventSchema, Serialize, Deserialize)]
    pub(crate) struct Location {
        pub(crate) site: String,
        pub(crate) rack: u32,
    }
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        pub(crate) location: Location,
        pub(crate) kind: super::nested_base::Kind,
        pub(crate) serial: super::nested_base::Serial,
    }
}

mod nested_field_renamed {
    use super::*;
    #[derive(EventSchema, Serialize, Deserialize)]
    pub(crate) struct Location {
        pub(crate) site: String,
        #[serde(rename = "rack_no")]
        pub(crate) rack: u16,
    }
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        pub(crate) location: Location,
        pub(crate) kind: super::nested_base::Kind,
        pub(crate) serial: super::nested_base::Serial,
    }
}

mod flattened_by_hand {
    use super::*;
    /// The nested struct's fields moved up: another structure.
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        pub(crate) site: String,
        pub(crate) rack: u16,
        pub(crate) kind: super::nested_base::Kind,
        pub(crate) serial: super::nested_base::Serial,
    }
}

#[test]
fn renaming_a_nested_type_keeps_the_fingerprint() {
    assert_eq!(fp!(nested_base), fp!(nested_type_renamed));
    assert_eq!(fp!(nested_base), fp!(nested_newtype_unwrapped));
}

#[test]
fn nested_fields_follow_the_same_rules() {
    assert_eq!(fp!(nested_base), fp!(nested_field_reordered));
    assert_ne!(fp!(nested_base), fp!(nested_field_retyped));
    assert_ne!(fp!(nested_base), fp!(nested_field_renamed));
    assert_ne!(fp!(nested_base), fp!(flattened_by_hand));
}

// ---- enums -------------------------------------------------------------------------------------

mod enum_base {
    use super::*;
    #[derive(EventSchema, Serialize, Deserialize)]
    pub(crate) enum E {
        Unit,
        Newtype(u32),
        Tuple(u8, String),
        Struct { id: u64, label: String },
    }
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        pub(crate) e: E,
    }
}

mod enum_reordered {
    use super::*;
    #[derive(EventSchema, Serialize, Deserialize)]
    pub(crate) enum E {
        Struct { label: String, id: u64 },
        Tuple(u8, String),
        Unit,
        Newtype(u32),
    }
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        pub(crate) e: E,
    }
}

mod enum_variant_renamed {
    use super::*;
    #[derive(EventSchema, Serialize, Deserialize)]
    pub(crate) enum E {
        #[serde(rename = "Nothing")]
        Unit,
        Newtype(u32),
        Tuple(u8, String),
        Struct {
            id: u64,
            label: String,
        },
    }
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        pub(crate) e: E,
    }
}

mod enum_rename_all {
    use super::*;
    #[derive(EventSchema, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub(crate) enum E {
        Unit,
        Newtype(u32),
        Tuple(u8, String),
        Struct { id: u64, label: String },
    }
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        pub(crate) e: E,
    }
}

mod enum_tuple_reordered {
    use super::*;
    /// Tuple items are positional: their order counts.
    #[derive(EventSchema, Serialize, Deserialize)]
    pub(crate) enum E {
        Unit,
        Newtype(u32),
        Tuple(String, u8),
        Struct { id: u64, label: String },
    }
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        pub(crate) e: E,
    }
}

mod enum_kind_changed {
    use super::*;
    #[derive(EventSchema, Serialize, Deserialize)]
    pub(crate) enum E {
        Unit,
        Newtype(u32),
        Tuple(u8, String),
        Struct { id: u64, label: String },
    }
    // `Newtype(u32)` becomes a one-element tuple variant.
    #[derive(EventSchema, Serialize, Deserialize)]
    pub(crate) enum F {
        Unit,
        Newtype(u32, ()),
        Tuple(u8, String),
        Struct { id: u64, label: String },
    }
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        pub(crate) e: F,
    }
}

mod enum_variant_added {
    use super::*;
    #[derive(EventSchema, Serialize, Deserialize)]
    pub(crate) enum E {
        Unit,
        Newtype(u32),
        Tuple(u8, String),
        Struct { id: u64, label: String },
        Extra,
    }
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        pub(crate) e: E,
    }
}

mod enum_variant_skipped {
    use super::*;
    #[derive(EventSchema, Serialize, Deserialize)]
    pub(crate) enum E {
        Unit,
        Newtype(u32),
        #[serde(skip)]
        Local(Vec<u8>),
        Tuple(u8, String),
        Struct {
            id: u64,
            label: String,
            #[serde(skip)]
            scratch: u8,
        },
    }
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        pub(crate) e: E,
    }
}

mod enum_internal {
    use super::*;
    #[derive(EventSchema, Serialize, Deserialize)]
    #[serde(tag = "kind")]
    pub(crate) enum E {
        Unit,
        Struct { id: u64, label: String },
    }
    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "rules", name = "ev")]
    pub(crate) struct Ev {
        pub(crate) e: E,
    }
    pub(crate) mod other_tag {
        use super::*;
        #[derive(EventSchema, Serialize, Deserialize)]
        #[serde(tag = "type")]
        pub(crate) enum E {
            Unit,
            Struct { id: u64, label: String },
        }
        #[derive(Event, Serialize, Deserialize)]
        #[event(stream = "rules", name = "ev")]
        pub(crate) struct Ev {
            pub(crate) e: E,
        }
    }
    pub(crate) mod external {
        use super::*;
        #[derive(EventSchema, Serialize, Deserialize)]
        pub(crate) enum E {
            Unit,
            Struct { id: u64, label: String },
        }
        #[derive(Event, Serialize, Deserialize)]
        #[event(stream = "rules", name = "ev")]
        pub(crate) struct Ev {
            pub(crate) e: E,
        }
    }
    pub(crate) mod adjacent {
        use super::*;
        #[derive(EventSchema, Serialize, Deserialize)]
        #[serde(tag = "kind", content = "value")]
        pub(crate) enum E {
            Unit,
            Struct { id: u64, label: String },
        }
        #[derive(Event, Serialize, Deserialize)]
        #[event(stream = "rules", name = "ev")]
        pub(crate) struct Ev {
            pub(crate) e: E,
        }
    }
    pub(crate) mod adjacent_other_content {
        use super::*;
        #[derive(EventSchema, Serialize, Deserialize)]
        #[serde(tag = "kind", content = "data")]
        pub(crate) enum E {
            Unit,
            Struct { id: u64, label: String },
        }
        #[derive(Event, Serialize, Deserialize)]
        #[event(stream = "rules", name = "ev")]
        pub(crate) struct Ev {
            pub(crate) e: E,
        }
    }
}

#[test]
fn reordering_enum_variants_keeps_the_fingerprint() {
    assert_eq!(fp!(enum_base), fp!(enum_reordered));
}

#[test]
fn changing_enum_variants_changes_the_fingerprint() {
    let all = [
        fp!(enum_base),
        fp!(enum_variant_renamed),
        fp!(enum_rename_all),
        fp!(enum_tuple_reordered),
        fp!(enum_kind_changed),
        fp!(enum_variant_added),
    ];
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert_ne!(a, b);
        }
    }
}

#[test]
fn skipped_variants_and_variant_fields_do_not_count() {
    assert_eq!(fp!(enum_base), fp!(enum_variant_skipped));
}

#[test]
fn enum_tagging_is_part_of_the_fingerprint() {
    let all = [
        fp!(enum_internal),
        <enum_internal::other_tag::Ev as Event>::FINGERPRINT,
        <enum_internal::external::Ev as Event>::FINGERPRINT,
        <enum_internal::adjacent::Ev as Event>::FINGERPRINT,
        <enum_internal::adjacent_other_content::Ev as Event>::FINGERPRINT,
    ];
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert_ne!(a, b);
        }
    }
}

/// The derive records what serde writes: a check of the shapes behind the fingerprints above.
#[test]
fn shapes_use_wire_names() {
    let Shape::Struct(st) = <golden::Renames as EventSchema>::SHAPE else {
        panic!("not a struct")
    };
    let names: Vec<_> = st.fields.iter().map(|f| f.name).collect();
    assert_eq!(names, ["assetId", "host", "status", "type"]);
    let Shape::Enum(en) = st.fields[2].shape else {
        panic!("not an enum")
    };
    assert_eq!(en.tagging, Tagging::External);
    let variants: Vec<_> = en.variants.iter().map(|v| v.name).collect();
    assert_eq!(variants, ["UP", "DEGRADED", "gone", "MAINTENANCE"]);
    let VariantKind::Struct(fs) = en.variants[1].kind else {
        panic!("not a struct variant")
    };
    assert_eq!(
        fs.iter().map(|f| f.name).collect::<Vec<_>>(),
        ["sinceMs", "errorRate"]
    );
    let VariantKind::Struct(fs) = en.variants[3].kind else {
        panic!("not a struct variant")
    };
    assert_eq!(
        fs.iter().map(|f| f.name).collect::<Vec<_>>(),
        ["window-start"]
    );

    // And serde agrees (checked through JSON, which shows names plainly).
    let json = serde_json::to_value(golden::Renames {
        asset_id: 1,
        hostname: "h".into(),
        status: golden::Status::Degraded {
            since_ms: 2,
            error_rate: 0.5,
        },
        r#type: "t".into(),
    })
    .expect("serialize");
    assert_eq!(
        json,
        serde_json::json!({
            "assetId": 1, "host": "h", "type": "t",
            "status": { "DEGRADED": { "sinceMs": 2, "errorRate": 0.5 } },
        })
    );
    let json =
        serde_json::to_value(golden::Status::Maintenance { window_start: 3 }).expect("serialize");
    assert_eq!(
        json,
        serde_json::json!({ "MAINTENANCE": { "window-start": 3 } })
    );
}
