//! `claim_after` given without `timeout` is checked against the runtime's default timeout
//! (`HandlerConfig::DEFAULT.timeout`, 30s), by a const assertion spanned on the value.

use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
}

#[handler(stream = "assets", claim_after = "30s")]
async fn on_created(event: AssetCreated) {
    let _ = event;
}

fn main() {}
