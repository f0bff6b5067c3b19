use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct AssetCreatedV1 {
    pub asset_id: u64,
}

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets", version = 2, upcast_from = AssetCreatedV1)]
pub struct AssetCreated {
    pub asset_id: u64,
    pub hostname: Option<String>,
}

impl From<AssetCreatedV1> for AssetCreated {
    fn from(v1: AssetCreatedV1) -> Self {
        AssetCreated {
            asset_id: v1.asset_id,
            hostname: None,
        }
    }
}

fn main() {}
