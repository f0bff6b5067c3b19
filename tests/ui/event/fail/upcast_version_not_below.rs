use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets", name = "asset_created", version = 2)]
pub struct AssetCreatedV2 {
    pub asset_id: u64,
}

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets", version = 2, upcast_from = AssetCreatedV2)]
pub struct AssetCreated {
    pub asset_id: u64,
    pub hostname: Option<String>,
}

impl From<AssetCreatedV2> for AssetCreated {
    fn from(v2: AssetCreatedV2) -> Self {
        AssetCreated {
            asset_id: v2.asset_id,
            hostname: None,
        }
    }
}

fn main() {}
