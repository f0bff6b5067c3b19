use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
}

// A batch handler takes `BatchContext` (its messages are `ctx[i]`), not `Context`.
#[handler(stream = "assets", batch = 100)]
async fn index(events: Vec<AssetCreated>, ctx: Context) {
    let _ = (events.len(), ctx.attempt());
}

fn main() {}
