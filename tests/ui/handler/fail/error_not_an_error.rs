use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
}

pub struct NotAnError;

#[handler(stream = "assets")]
async fn on_created(event: AssetCreated) -> Result<(), NotAnError> {
    let _ = event;
    Ok(())
}

fn main() {}
