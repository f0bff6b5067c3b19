use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets", name = "asset_created", version = 1)]
pub struct AssetCreatedV1 {
    pub asset_id: u64,
}

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets", version = 2, upcast_from = "AssetCreatedV1")]
pub struct AssetCreated {
    pub asset_id: u64,
}

impl From<AssetCreatedV1> for AssetCreated {
    fn from(v1: AssetCreatedV1) -> Self {
        AssetCreated {
            asset_id: v1.asset_id,
        }
    }
}

fn main() {}
