use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
}

// `BatchContext` belongs to batch handlers.
#[handler(stream = "assets")]
async fn index(event: AssetCreated, ctx: opsc_events::BatchContext) {
    let _ = (event.asset_id, ctx.len());
}

fn main() {}
