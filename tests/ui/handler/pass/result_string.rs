//! `Result<(), String>` (and `&'static str`): a message is a retryable error.

use opsc_events::handler::HandlerRegistration;
use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
}

#[handler(stream = "assets")]
async fn with_string(event: AssetCreated) -> Result<(), String> {
    if event.asset_id == 0 {
        return Err(format!("asset {} does not exist", event.asset_id));
    }
    Ok(())
}

#[handler(stream = "assets")]
async fn with_str(event: AssetCreated) -> Result<(), &'static str> {
    if event.asset_id == 0 {
        return Err("no such asset");
    }
    Ok(())
}

fn main() {
    let count = opsc_events::__private::inventory::iter::<HandlerRegistration>
        .into_iter()
        .filter(|r| r.name.starts_with("with_"))
        .count();
    assert_eq!(count, 2);
}
