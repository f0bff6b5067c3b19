//! Quick start: define an event, build a publish-only runtime, publish.
//!
//! Run with `cargo run --example quickstart` (uses `REDIS_URL`, default
//! `redis://127.0.0.1:6379`).

use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

/// An asset was discovered on the network.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "assets", name = "asset_created", version = 1)]
pub struct AssetCreated {
    pub asset_id: u64,
    pub hostname: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[tokio::main]
async fn main() -> opsc_events::Result<()> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let rt = Runtime::builder()
        .service("quickstart")
        .redis(&url)
        .no_handlers()
        .build()
        .await?;
    println!("connected to {}", opsc_events::error::redact_url(&url));
    println!("schema: {}", AssetCreated::schema());

    let publisher = rt.publisher();
    let first = AssetCreated { asset_id: 1, hostname: "db-1".into(), tags: vec!["prod".into()] };
    let id = publisher.publish(&first).await?;
    println!("published asset 1 as entry {id} on {}", rt.keys().events(AssetCreated::STREAM));

    let batch: Vec<AssetCreated> = (2..=5)
        .map(|i| AssetCreated { asset_id: i, hostname: format!("web-{i}"), tags: vec![] })
        .collect();
    let ids = publisher.publish_all(&batch).await?;
    let shown: Vec<String> = ids.iter().map(ToString::to_string).collect();
    println!("published assets 2..=5 in one pipeline as {}", shown.join(", "));
    Ok(())
}
