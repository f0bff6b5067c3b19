use opsc_events::prelude::*;

#[derive(Event)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
}

fn main() {}
