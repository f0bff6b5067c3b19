//! The example of the spec: defaults for `name` and `version`, and a round trip through the
//! envelope.

use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
    pub hostname: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "audit-log_2", name = "ops.asset-deleted_v1", version = 65535)]
pub struct AssetDeleted {}

fn main() {
    assert_eq!(AssetCreated::STREAM, "assets");
    assert_eq!(AssetCreated::NAME, "asset_created");
    assert_eq!(AssetCreated::VERSION, 1);
    let schema = AssetCreated::schema();
    assert_eq!(schema.fingerprint, AssetCreated::FINGERPRINT);
    assert!(schema.upcast_from.is_empty());

    assert_eq!(AssetDeleted::STREAM, "audit-log_2");
    assert_eq!(AssetDeleted::NAME, "ops.asset-deleted_v1");
    assert_eq!(AssetDeleted::VERSION, 65535);

    let event = AssetCreated {
        asset_id: 7,
        hostname: "db-1".into(),
        tags: vec!["prod".into()],
    };
    let entry = envelope::encode(&event, &Metadata::new("inventory")).unwrap();
    let env = Envelope::from_fields(entry.fields().map(|(k, v)| (k.as_bytes(), v))).unwrap();
    let decoded: AssetCreated = envelope::decode_event(&env).unwrap();
    assert_eq!(decoded, event);
}
