//! `#[serde(rename)]` and `rename_all` on structs, enums and variants: the schema carries the
//! names serde writes, and renaming changes the fingerprint.

use opsc_events::__private::{Shape, VariantKind};
use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(EventSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    InService,
    #[serde(rename = "retired")]
    OutOfService,
    #[serde(rename_all = "camelCase")]
    Moving {
        to_site: String,
    },
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "assets", name = "asset_updated")]
#[serde(rename_all = "camelCase")]
pub struct AssetUpdated {
    pub asset_id: u64,
    #[serde(rename = "host")]
    pub host_name: String,
    pub new_status: Status,
    #[serde(skip)]
    pub local_only: u8,
    #[serde(rename(serialize = "seen", deserialize = "seen"))]
    pub last_seen: u64,
    #[serde(rename(serialize = "rack"))]
    #[serde(rename(deserialize = "rack"), alias = "rack_id", alias = "rackId")]
    pub rack_name: String,
}

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets", name = "asset_updated")]
pub struct AssetUpdatedUnrenamed {
    pub asset_id: u64,
    pub host_name: String,
    pub new_status: Status,
}

fn main() {
    let Shape::Struct(s) = AssetUpdated::SHAPE else {
        panic!("not a struct")
    };
    let names: Vec<_> = s.fields.iter().map(|f| f.name).collect();
    assert_eq!(names, ["assetId", "host", "newStatus", "seen", "rack"]);

    let Shape::Enum(e) = Status::SHAPE else {
        panic!("not an enum")
    };
    let variants: Vec<_> = e.variants.iter().map(|v| v.name).collect();
    assert_eq!(variants, ["IN_SERVICE", "retired", "MOVING"]);
    let VariantKind::Struct(fields) = e.variants[2].kind else {
        panic!("not a struct variant")
    };
    assert_eq!(fields[0].name, "toSite");

    // The schema's names are serde's names.
    let event = AssetUpdated {
        asset_id: 1,
        host_name: "db-1".into(),
        new_status: Status::Moving {
            to_site: "ams2".into(),
        },
        local_only: 0,
        last_seen: 9,
        rack_name: "r4".into(),
    };
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "assetId": 1,
            "host": "db-1",
            "newStatus": {"MOVING": {"toSite": "ams2"}},
            "seen": 9,
            "rack": "r4",
        })
    );

    assert_ne!(
        AssetUpdated::FINGERPRINT,
        AssetUpdatedUnrenamed::FINGERPRINT
    );
}
