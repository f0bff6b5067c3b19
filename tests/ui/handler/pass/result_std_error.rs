//! `Result<(), E>` with a std error type: `std::io::Error`, through the `io::Result` alias, a
//! boxed error and a custom type implementing `std::error::Error`.

use std::fmt;

use opsc_events::handler::HandlerRegistration;
use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
}

#[handler(stream = "assets")]
async fn io_error(event: AssetCreated) -> Result<(), std::io::Error> {
    let _ = event;
    Ok(())
}

#[handler(stream = "assets")]
async fn io_result(event: AssetCreated) -> std::io::Result<()> {
    let _ = event;
    Ok(())
}

#[handler(stream = "assets")]
async fn boxed(event: AssetCreated) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let _ = event;
    Ok(())
}

#[derive(Debug)]
pub struct IndexFull;

impl fmt::Display for IndexFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the index is full")
    }
}

impl std::error::Error for IndexFull {}

#[handler(stream = "assets")]
async fn custom(event: AssetCreated) -> Result<(), IndexFull> {
    let _ = event;
    Err(IndexFull)
}

fn main() {
    let mut names: Vec<&str> = opsc_events::__private::inventory::iter::<HandlerRegistration>
        .into_iter()
        .map(|r| r.name)
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["boxed", "custom", "io_error", "io_result"]);
}
