//! Through a `macro_rules!` macro, an `expr` fragment is checked like a value written in place,
//! and the error points at what the caller wrote.

use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

macro_rules! event {
    ($name:ident, $stream:expr, $version:expr) => {
        #[derive(Event, Serialize, Deserialize)]
        #[event(stream = $stream, version = $version)]
        pub struct $name {
            pub asset_id: u64,
        }
    };
}

event!(AssetCreated, "Assets!", 0);

fn main() {}
