use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "Assets Stream")]
pub struct AssetCreated {
    pub asset_id: u64,
}

fn main() {}
