//! Through a `macro_rules!` macro, the compile-time stream check still runs and names both
//! streams.

use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
}

macro_rules! on_stream {
    ($name:ident, $stream:expr) => {
        #[handler(stream = $stream, retries = 1)]
        async fn $name(event: AssetCreated, ctx: Context) {
            let _ = (event, ctx);
        }
    };
}

on_stream!(on_created, "inventory");

fn main() {}
