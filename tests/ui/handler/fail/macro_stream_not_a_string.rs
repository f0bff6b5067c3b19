//! Through a `macro_rules!` macro, a `literal` fragment that is not a string is still rejected,
//! on the token the caller wrote.

use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
}

macro_rules! on_stream {
    ($stream:literal) => {
        #[handler(stream = $stream)]
        async fn on_created(event: AssetCreated) {
            let _ = event;
        }
    };
}

on_stream!(42);

fn main() {}
