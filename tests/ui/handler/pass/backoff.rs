//! The three backoff forms, with spaces and units as users write them.

use std::time::Duration;

use opsc_events::handler::{Backoff, HandlerRegistration};
use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
}

#[handler(stream = "assets", backoff = "none")]
async fn none(event: AssetCreated) {
    let _ = event;
}

#[handler(stream = "assets", backoff = "fixed(3s)")]
async fn fixed(event: AssetCreated) {
    let _ = event;
}

#[handler(stream = "assets", backoff = "exponential(200ms, 30s)")]
async fn exponential(event: AssetCreated) {
    let _ = event;
}

#[handler(stream = "assets", backoff = "exponential(1s,2m)")]
async fn exponential_minutes(event: AssetCreated) {
    let _ = event;
}

fn backoff(name: &str) -> Backoff {
    opsc_events::__private::inventory::iter::<HandlerRegistration>
        .into_iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("`{name}` is registered"))
        .config
        .backoff
}

fn main() {
    assert_eq!(backoff("none"), Backoff::None);
    assert_eq!(backoff("fixed"), Backoff::Fixed(Duration::from_secs(3)));
    assert_eq!(
        backoff("exponential"),
        Backoff::Exponential {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(30),
        }
    );
    assert_eq!(
        backoff("exponential_minutes"),
        Backoff::Exponential {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(120),
        }
    );
}
