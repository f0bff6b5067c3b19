use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
}

pub struct Indexer;

impl Indexer {
    #[handler(stream = "assets")]
    async fn on_created(&self, event: AssetCreated) {
        let _ = event;
    }
}

fn main() {}
