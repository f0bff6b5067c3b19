use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(EventSchema, Serialize, Deserialize)]
pub struct Location {
    pub rack: String,
}

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
    #[serde(flatten)]
    pub location: Location,
}

fn main() {}
