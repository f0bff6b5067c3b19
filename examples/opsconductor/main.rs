//! OpsConductor in one process: four services exchanging typed events over Redis Streams.
//!
//! identity registers users; assets discovers hosts; automation schedules and runs a scan for
//! every host; communication welcomes users and reports scan results; identity audits every
//! notification. Each service is its own runtime with its own consumer groups, as it would be
//! in its own process. The bracketed tag is the end of the correlation id: every event caused
//! by one discovery carries the same one.
//!
//! `cargo run --example opsconductor` — on Redis when `REDIS_URL` is set, otherwise on an
//! embedded broker shared by the four services.

mod events;
mod services;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use events::{AssetDiscovered, UserRegistered};
use opsc_events::prelude::*;
use services::{Console, Directory};

/// Where the services meet: one Redis, or one embedded broker shared by the four runtimes.
#[derive(Clone)]
enum Transport {
    Redis(String),
    Memory(MemoryBroker),
}

async fn service(
    name: &str,
    transport: &Transport,
    console: &Console,
    directory: &Directory,
) -> opsc_events::Result<Runtime> {
    let b = services::runtime(name, console, directory);
    let b = match transport {
        Transport::Redis(url) => b.redis(url),
        Transport::Memory(broker) => b.memory_with(broker.clone()),
    };
    b.shutdown_timeout(Duration::from_secs(5)).build().await
}

#[tokio::main]
async fn main() -> opsc_events::Result<()> {
    let transport = match std::env::var("REDIS_URL") {
        Ok(url) => {
            println!(
                "OpsConductor demo on redis at {}\n",
                opsc_events::error::redact_url(&url)
            );
            Transport::Redis(url)
        }
        Err(_) => {
            println!("OpsConductor demo on the embedded broker (set REDIS_URL to use Redis)\n");
            Transport::Memory(MemoryBroker::new())
        }
    };
    let console = Console {
        notifications: tokio::sync::watch::Sender::new(0),
        audited: tokio::sync::watch::Sender::new(0),
    };
    let directory = Directory::default();

    let identity = service("identity", &transport, &console, &directory).await?;
    let assets = service("assets", &transport, &console, &directory).await?;
    let automation = service("automation", &transport, &console, &directory).await?;
    let communication = service("communication", &transport, &console, &directory).await?;

    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut running = Vec::new();
    let identity_publisher = identity.publisher();
    for rt in [identity, automation, communication] {
        let mut stop = stop_tx.subscribe();
        running.push(tokio::spawn(rt.run_until(async move {
            let _ = stop.recv().await;
        })));
    }

    // Each service publishes through its own runtime's publisher (the `service` of each entry
    // says who published it); assets is publish-only here.
    let users = [
        UserRegistered {
            user_id: 1,
            email: "ada@example.com".into(),
        },
        UserRegistered {
            user_id: 2,
            email: "grace@example.com".into(),
        },
    ];
    let hosts = [
        AssetDiscovered {
            asset_id: 10,
            hostname: "db-1".into(),
            address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 10)),
            owner_id: 1,
        },
        AssetDiscovered {
            asset_id: 11,
            hostname: "web-1".into(),
            address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 11)),
            owner_id: 2,
        },
        AssetDiscovered {
            asset_id: 12,
            hostname: "web-2".into(),
            address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 12)),
            owner_id: 2,
        },
    ];
    for u in &users {
        identity_publisher.publish(u).await?;
        println!("{:<14} registered {}", "identity", u.email);
    }
    for h in &hosts {
        assets.publisher().publish(h).await?;
        println!(
            "{:<14} discovered {} at {}",
            "assets", h.hostname, h.address
        );
    }

    let expected = users.len() + hosts.len();
    let mut audited = console.audited.subscribe();
    // Done when every notification was sent and audited.
    let finished = tokio::time::timeout(
        Duration::from_secs(60),
        audited.wait_for(|n| *n >= expected),
    )
    .await;
    let _ = stop_tx.send(());
    for r in running {
        r.await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .ok();
    }
    match finished {
        Ok(_) => println!("\n{expected} notifications sent; all services stopped cleanly"),
        Err(_) => println!(
            "\nonly {} of {expected} notifications within 60 s",
            *console.notifications.borrow()
        ),
    }
    Ok(())
}
