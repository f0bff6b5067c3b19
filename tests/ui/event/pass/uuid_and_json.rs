//! `uuid::Uuid` and `serde_json::Value` fields (default features `uuid` and `json`).

use opsc_events::__private::Shape;
use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "assets")]
pub struct AssetAnnotated {
    pub asset_id: uuid::Uuid,
    pub previous: Option<uuid::Uuid>,
    pub annotation: serde_json::Value,
}

fn main() {
    let Shape::Struct(s) = AssetAnnotated::SHAPE else {
        panic!("not a struct")
    };
    assert_eq!(*s.fields[0].shape, Shape::Opaque("uuid"));
    assert_eq!(*s.fields[1].shape, Shape::Option(&Shape::Opaque("uuid")));
    assert_eq!(*s.fields[2].shape, Shape::Opaque("json"));

    let event = AssetAnnotated {
        asset_id: uuid::Uuid::now_v7(),
        previous: None,
        annotation: serde_json::json!({"owner": "infra", "tags": ["prod", 3]}),
    };
    let entry = envelope::encode(&event, &Metadata::new("inventory")).unwrap();
    let env = Envelope::from_fields(entry.fields().map(|(k, v)| (k.as_bytes(), v))).unwrap();
    let decoded: AssetAnnotated = envelope::decode_event(&env).unwrap();
    assert_eq!(decoded, event);
}
