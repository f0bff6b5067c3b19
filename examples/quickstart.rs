//! Quick start: one event, two handlers, one process.
//!
//! `cargo run --example quickstart` — on Redis when `REDIS_URL` is set and reachable, otherwise on
//! the embedded broker.

use std::time::Duration;

use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// An asset was discovered on the network.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "assets", name = "asset_created", version = 1)]
pub struct AssetCreated {
    pub asset_id: u64,
    pub hostname: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Counts handled events so the example can stop when everything was handled.
#[derive(Clone)]
struct Progress(watch::Sender<usize>);

impl Progress {
    fn tick(&self) {
        self.0.send_modify(|n| *n += 1);
    }
}

/// Each handler has its own consumer group (`quickstart.index_asset`), so it sees every event.
#[handler(stream = "assets")]
async fn index_asset(event: AssetCreated, ctx: Context, State(progress): State<Progress>) {
    println!(
        "[index_asset]  asset {} ({}) indexed — entry {}, attempt {}",
        event.asset_id,
        event.hostname,
        ctx.message_id(),
        ctx.attempt()
    );
    progress.tick();
}

#[handler(stream = "assets", retries = 5, timeout = "5s")]
async fn tag_audit(
    event: AssetCreated,
    State(progress): State<Progress>,
) -> Result<(), HandlerError> {
    if event.tags.is_empty() {
        println!("[tag_audit]    asset {} has no tags", event.asset_id);
    } else {
        println!(
            "[tag_audit]    asset {} tagged {}",
            event.asset_id,
            event.tags.join(", ")
        );
    }
    progress.tick();
    Ok(())
}

/// Redis when `REDIS_URL` is set and reachable, otherwise the embedded broker.
async fn runtime(progress: &Progress) -> opsc_events::Result<Runtime> {
    let builder = || {
        Runtime::builder()
            .service("quickstart")
            .state(progress.clone())
    };
    if let Ok(url) = std::env::var("REDIS_URL") {
        match builder()
            .redis(&url)
            .connect_timeout(Duration::from_secs(2))
            .build()
            .await
        {
            Ok(rt) => {
                println!(
                    "transport: redis at {}",
                    opsc_events::error::redact_url(&url)
                );
                return Ok(rt);
            }
            Err(e) => println!("REDIS_URL is set but unusable ({e}); falling back"),
        }
    }
    println!("transport: embedded broker (set REDIS_URL to use Redis)");
    builder().memory().build().await
}

#[tokio::main]
async fn main() -> opsc_events::Result<()> {
    let progress = Progress(watch::Sender::new(0));
    let rt = runtime(&progress).await?;
    println!("schema: {}", AssetCreated::schema());

    let publisher = rt.publisher();
    let assets = [
        AssetCreated {
            asset_id: 1,
            hostname: "db-1".into(),
            tags: vec!["prod".into()],
        },
        AssetCreated {
            asset_id: 2,
            hostname: "web-1".into(),
            tags: vec![],
        },
        AssetCreated {
            asset_id: 3,
            hostname: "web-2".into(),
            tags: vec!["edge".into(), "eu".into()],
        },
    ];
    let ids = publisher.publish_all(&assets).await?;
    let shown: Vec<String> = ids.iter().map(ToString::to_string).collect();
    println!("published 3 events as {}", shown.join(", "));

    // Run the handlers until both have seen the three events (or 10 s pass).
    let expected = assets.len() * 2;
    let mut handled = progress.0.subscribe();
    rt.run_until(async move {
        let all = handled.wait_for(|n| *n >= expected);
        if tokio::time::timeout(Duration::from_secs(10), all)
            .await
            .is_err()
        {
            eprintln!("not every event was handled within 10 s");
        }
    })
    .await?;
    println!(
        "handled {} of {expected}; stopped cleanly",
        *progress.0.borrow()
    );
    Ok(())
}
