//! Health over HTTP for orchestrators: `/healthz` (liveness) and `/readyz` (readiness) from
//! `Runtime::health()`, served with axum in a few lines.
//!
//! `cargo run --example health_http` — on Redis when `REDIS_URL` is set, otherwise on the
//! embedded broker; serves on `HEALTH_ADDR` (default 127.0.0.1:8081) until Ctrl-C.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use opsc_events::health::Health;
use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "pings")]
pub struct Ping {
    pub n: u64,
}

#[handler(stream = "pings")]
async fn pong(_event: Ping) {}

/// The routes: 200 or 503, and the report as text for people.
pub fn routes(health: Health) -> Router {
    let live = health.clone();
    Router::new()
        .route(
            "/healthz",
            get(move || async move {
                let r = live.check().await;
                let code = if r.live() {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                (code, format!("{r:#?}"))
            }),
        )
        .route(
            "/readyz",
            get(move || async move {
                let r = health.check().await;
                let code = if r.ready() {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                (code, format!("{r:#?}"))
            }),
        )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let builder = Runtime::builder().service("pinger");
    let builder = match std::env::var("REDIS_URL") {
        Ok(url) => builder.redis(url),
        Err(_) => builder.memory(),
    };
    let rt = builder.build().await?;
    let addr = std::env::var("HEALTH_ADDR").unwrap_or_else(|_| "127.0.0.1:8081".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("health on http://{addr}/healthz and /readyz; Ctrl-C stops");
    let server = tokio::spawn(axum::serve(listener, routes(rt.health())).into_future());
    rt.run().await?;
    server.abort();
    Ok(())
}
