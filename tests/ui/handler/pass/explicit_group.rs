//! An explicit `group`, with every character the group name allows.

use opsc_events::handler::HandlerRegistration;
use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
}

#[handler(stream = "assets", group = "Billing.asset-indexer_2:v1")]
async fn on_created(event: AssetCreated) {
    let _ = event;
}

fn main() {
    let reg = opsc_events::__private::inventory::iter::<HandlerRegistration>
        .into_iter()
        .next()
        .expect("registered");
    assert_eq!(reg.group, Some("Billing.asset-indexer_2:v1"));
}
