use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(name = "asset_created", version = 1)]
pub struct AssetCreated {
    pub asset_id: u64,
}

fn main() {}
