use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets", priority = "critical")]
pub struct AssetLost {
    pub asset_id: u64,
}

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets", priority = "low")]
pub struct AssetSeen {
    pub asset_id: u64,
}

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
}

fn main() {
    assert_eq!(AssetLost::PRIORITY, Priority::Critical);
    assert_eq!(AssetSeen::PRIORITY, Priority::Low);
    assert_eq!(AssetCreated::PRIORITY, Priority::Normal);
}
