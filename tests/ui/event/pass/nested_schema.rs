//! Nested structs and enums deriving `EventSchema`: every variant kind, every tagging serde
//! supports in events, and a round trip through the envelope.

use opsc_events::__private::{Shape, Tagging, VariantKind};
use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(EventSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Location {
    pub site: String,
    pub rack: Option<u16>,
}

#[derive(EventSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Serial(pub String);

#[derive(EventSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Size(pub u32, pub u32);

#[derive(EventSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Marker;

/// Externally tagged (serde's default): unit, newtype, tuple and struct variants.
#[derive(EventSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum Kind {
    Server,
    Vm(String),
    Switch(u16, u16),
    Storage {
        capacity_gb: u64,
        location: Location,
    },
}

/// Internally tagged.
#[derive(EventSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "type")]
pub enum Owner {
    Nobody,
    Team { name: String },
    Person(Person),
}

#[derive(EventSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Person {
    pub email: String,
}

/// Adjacently tagged.
#[derive(EventSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "t", content = "c")]
pub enum State {
    Active,
    Retired(u64),
    Moved(Location, Location),
    Broken { reason: String },
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "assets")]
pub struct AssetRegistered {
    pub location: Location,
    pub serial: Serial,
    pub size: Size,
    pub marker: Marker,
    pub kind: Kind,
    pub owner: Owner,
    pub state: State,
}

fn main() {
    let Shape::Struct(event) = AssetRegistered::SHAPE else {
        panic!("not a struct")
    };
    let names: Vec<_> = event.fields.iter().map(|f| f.name).collect();
    assert_eq!(
        names,
        [
            "location", "serial", "size", "marker", "kind", "owner", "state"
        ]
    );

    assert_eq!(*Serial::SHAPE, Shape::Newtype("Serial", String::SHAPE));
    assert_eq!(*Size::SHAPE, Shape::Tuple(&[u32::SHAPE, u32::SHAPE]));
    // A unit struct is an empty array on the wire (`()` is nil): an empty tuple, not `Unit`.
    assert_eq!(*Marker::SHAPE, Shape::Tuple(&[]));

    let Shape::Enum(kind) = Kind::SHAPE else {
        panic!("not an enum")
    };
    assert_eq!(kind.tagging, Tagging::External);
    assert!(matches!(kind.variants[0].kind, VariantKind::Unit));
    assert!(matches!(kind.variants[1].kind, VariantKind::Newtype(_)));
    assert!(matches!(kind.variants[2].kind, VariantKind::Tuple(ts) if ts.len() == 2));
    assert!(matches!(kind.variants[3].kind, VariantKind::Struct(fs) if fs.len() == 2));

    let Shape::Enum(owner) = Owner::SHAPE else {
        panic!("not an enum")
    };
    assert_eq!(owner.tagging, Tagging::Internal { tag: "type" });
    let Shape::Enum(state) = State::SHAPE else {
        panic!("not an enum")
    };
    assert_eq!(
        state.tagging,
        Tagging::Adjacent {
            tag: "t",
            content: "c"
        }
    );

    // A nested type's shape is part of the event's fingerprint.
    assert_ne!(AssetRegistered::FINGERPRINT, 0);

    let here = Location {
        site: "par1".into(),
        rack: Some(4),
    };
    let event = AssetRegistered {
        location: here.clone(),
        serial: Serial("SN-1".into()),
        size: Size(2, 4),
        marker: Marker,
        kind: Kind::Storage {
            capacity_gb: 512,
            location: here.clone(),
        },
        owner: Owner::Team {
            name: "infra".into(),
        },
        state: State::Moved(
            here.clone(),
            Location {
                site: "ams2".into(),
                rack: None,
            },
        ),
    };
    let entry = envelope::encode(&event, &Metadata::new("inventory")).unwrap();
    let env = Envelope::from_fields(entry.fields().map(|(k, v)| (k.as_bytes(), v))).unwrap();
    let decoded: AssetRegistered = envelope::decode_event(&env).unwrap();
    assert_eq!(decoded, event);
}
