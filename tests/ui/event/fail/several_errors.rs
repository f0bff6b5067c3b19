use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "Assets", version = 0, retention = "7d")]
#[event(version = 2)]
pub struct AssetCreated {
    pub asset_id: u64,
    #[serde(flatten)]
    pub extra: std::collections::HashMap<String, String>,
}

fn main() {}
