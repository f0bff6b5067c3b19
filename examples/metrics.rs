//! Prometheus: the runtime's metrics (`metrics` facade) served on `/metrics`.
//!
//! `cargo run --example metrics` — runs a handler on the embedded broker (or on Redis when
//! `REDIS_URL` is set), publishes a few events, prints its own `/metrics` page and stops.
//! In a service, keep the two lines marked below: install the exporter **before** building the
//! runtime (the per-handler histogram is registered when its consumer starts).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "orders")]
pub struct OrderPlaced {
    pub id: u64,
}

#[handler(stream = "orders")]
async fn ship(event: OrderPlaced) -> Result<(), HandlerError> {
    if event.id.is_multiple_of(10) {
        return Err(HandlerError::permanent("cannot ship to the moon"));
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::var("METRICS_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:9464".to_owned())
        .parse()?;
    // 1. The exporter and its HTTP listener: `GET http://<addr>/metrics`.
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()?;
    // 2. Then the runtime, as usual.
    let builder = Runtime::builder()
        .service("shop")
        .trim_interval(Duration::from_secs(1));
    let builder = match std::env::var("REDIS_URL") {
        Ok(url) => builder.redis(url),
        Err(_) => builder.memory(),
    };
    let rt = builder.build().await?;
    let publisher = rt.publisher();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(rt.run_until(async move {
        let _ = stopped.await;
    }));
    for id in 1..=20 {
        publisher.publish(&OrderPlaced { id }).await?;
    }
    // Long enough for the handlers and one round of the backlog gauges.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut stream = TcpStream::connect(addr)?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut page = String::new();
    stream.read_to_string(&mut page)?;
    for line in page.lines().filter(|l| l.starts_with("opsc_events_")) {
        println!("{line}");
    }
    let _ = stop.send(());
    running.await??;
    Ok(())
}
