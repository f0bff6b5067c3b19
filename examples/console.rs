//! The web console against a demo system with failures: orders are published every half
//! second; `charge` refuses every fifth order (dead letters, reason `permanent`) and fails the
//! seventh ones for a while (retries), `ship` is slow (lag), so the console has something to
//! show.
//!
//! `cargo run --example console` — on Redis when `REDIS_URL` is set, otherwise on the embedded
//! broker; the console on `CONSOLE_ADDR` (default 127.0.0.1:8080), writes allowed; Ctrl-C stops.

use std::time::Duration;

use opsc_events::prelude::*;
use opsc_events_cli::console::{Console, ConsoleOptions};
use serde::{Deserialize, Serialize};

/// An order was placed.
#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "orders", name = "order_placed", version = 1)]
pub struct OrderPlaced {
    pub order: u64,
    pub amount_cents: u64,
}

/// Refuses every fifth order for good (a dead letter at once) and fails every seventh until
/// its third attempt (retries, then success).
#[handler(stream = "orders", retries = 4, backoff = "exponential(200ms, 2s)")]
async fn charge(event: OrderPlaced, ctx: Context) -> Result<(), HandlerError> {
    if event.order.is_multiple_of(5) {
        return Err(HandlerError::permanent(format!(
            "card declined for order {}",
            event.order
        )));
    }
    if event.order.is_multiple_of(7) && ctx.attempt() < 3 {
        return Err(HandlerError::retryable("payment provider timed out"));
    }
    Ok(())
}

/// Slower than the publisher: its group's lag grows.
#[handler(stream = "orders")]
async fn ship(_event: OrderPlaced) {
    tokio::time::sleep(Duration::from_millis(700)).await;
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let broker = opsc_events::MemoryBroker::new();
    let url = std::env::var("REDIS_URL").ok();
    let on = |b: opsc_events::RuntimeBuilder| match &url {
        Some(url) => b.redis(url),
        None => b.memory_with(broker.clone()),
    };
    // The services: handlers and a publisher.
    let services = on(Runtime::builder().service("shop")).build().await?;
    let publisher = services.publisher();
    // The console's own runtime on the same broker, without handlers (as `opsc console`).
    let admin = on(Runtime::builder().service("opsc").no_handlers())
        .build()
        .await?;
    let addr = std::env::var("CONSOLE_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let console =
        Console::bind(admin, ConsoleOptions::new(addr.parse()?).allow_writes(true)).await?;
    println!("console on http://{}/ (Ctrl-C stops)", console.local_addr());

    // One stop signal for the publisher, the console and the services.
    let (stop, _) = tokio::sync::watch::channel(false);
    let publishing = tokio::spawn({
        let mut stopped = stop.subscribe();
        async move {
            let mut order = 0u64;
            loop {
                order += 1;
                let event = OrderPlaced {
                    order,
                    amount_cents: 1_000 + order % 9 * 250,
                };
                if let Err(e) = publisher.publish(&event).await {
                    eprintln!("publish failed: {e}");
                }
                tokio::select! {
                    _ = stopped.changed() => return,
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }
    });
    let serving = tokio::spawn(console.serve({
        let mut stopped = stop.subscribe();
        async move {
            let _ = stopped.changed().await;
        }
    }));
    let running = tokio::spawn(services.run_until({
        let mut stopped = stop.subscribe();
        async move {
            let _ = stopped.changed().await;
        }
    }));
    tokio::signal::ctrl_c().await?;
    let _ = stop.send(true);
    publishing.await?;
    serving.await??;
    running.await??;
    Ok(())
}
