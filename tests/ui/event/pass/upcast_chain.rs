//! `upcast_from` chains: v3 decodes v1 and v2 entries through `From`.

use opsc_events::event::known_versions;
use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, PartialEq)]
#[event(stream = "assets", name = "asset_created", version = 1)]
pub struct AssetCreatedV1 {
    pub asset_id: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, PartialEq)]
#[event(stream = "assets", name = "asset_created", version = 2, upcast_from = AssetCreatedV1)]
pub struct AssetCreatedV2 {
    pub asset_id: u64,
    pub hostname: Option<String>,
}

#[derive(Event, Serialize, Deserialize, Debug, PartialEq)]
#[event(stream = "assets", version = 3, upcast_from = AssetCreatedV2)]
pub struct AssetCreated {
    pub asset_id: u64,
    pub hostname: String,
    pub tags: Vec<String>,
}

impl From<AssetCreatedV1> for AssetCreatedV2 {
    fn from(v1: AssetCreatedV1) -> Self {
        AssetCreatedV2 {
            asset_id: v1.asset_id,
            hostname: None,
        }
    }
}

impl From<AssetCreatedV2> for AssetCreated {
    fn from(v2: AssetCreatedV2) -> Self {
        AssetCreated {
            asset_id: v2.asset_id,
            hostname: v2.hostname.unwrap_or_else(|| "unknown".into()),
            tags: Vec::new(),
        }
    }
}

fn envelope_of<E: Event>(event: &E) -> Envelope {
    let entry = envelope::encode(event, &Metadata::new("inventory")).unwrap();
    Envelope::from_fields(entry.fields().map(|(k, v)| (k.as_bytes(), v))).unwrap()
}

fn main() {
    let versions: Vec<u16> = known_versions::<AssetCreated>()
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    assert_eq!(versions, [3, 2, 1]);
    let schema = AssetCreated::schema();
    let older: Vec<u16> = schema.upcast_from.iter().map(|s| s.version).collect();
    assert_eq!(older, [2, 1]);

    // A v1 entry, decoded as v3: v1 -> v2 -> v3.
    let v1 = envelope_of(&AssetCreatedV1 { asset_id: 3 });
    assert_eq!(v1.version, 1);
    let upcast: AssetCreated = envelope::decode_event(&v1).unwrap();
    assert_eq!(
        upcast,
        AssetCreated {
            asset_id: 3,
            hostname: "unknown".into(),
            tags: vec![]
        }
    );

    // A v2 entry, decoded as v3.
    let v2 = envelope_of(&AssetCreatedV2 {
        asset_id: 4,
        hostname: Some("db-4".into()),
    });
    let upcast: AssetCreated = envelope::decode_event(&v2).unwrap();
    assert_eq!(
        upcast,
        AssetCreated {
            asset_id: 4,
            hostname: "db-4".into(),
            tags: vec![]
        }
    );

    // A v3 entry, as itself.
    let event = AssetCreated {
        asset_id: 5,
        hostname: "db-5".into(),
        tags: vec!["prod".into()],
    };
    let decoded: AssetCreated = envelope::decode_event(&envelope_of(&event)).unwrap();
    assert_eq!(decoded, event);

    // A known version with another fingerprint is a schema mismatch, not a silent decode.
    let mut forged = envelope_of(&AssetCreatedV1 { asset_id: 6 });
    forged.fingerprint ^= 1;
    let err = envelope::decode_event::<AssetCreated>(&forged).unwrap_err();
    assert!(err.is_schema_mismatch(), "{err}");

    // An unknown version too.
    let mut future = envelope_of(&event);
    future.version = 4;
    let err = envelope::decode_event::<AssetCreated>(&future).unwrap_err();
    assert!(err.is_schema_mismatch(), "{err}");
}
