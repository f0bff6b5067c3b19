//! Health over HTTP (the axum routes of `examples/health_http.rs`): `/readyz` follows the broker
//! (503 while Redis is down, 200 again once the consumers are back) and `/healthz` does not —
//! a Redis outage is no reason to restart a process — but turns 503 when a consumer failed.

mod common;
#[path = "../examples/health_http.rs"]
#[allow(dead_code)]
mod example;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::wait_until;
use opsc_events::prelude::*;
use opsc_events_runtime::fault::{self, Fault};
use opsc_events_testkit::RedisServer;

/// The status code of `GET path` (0 when the server cannot be reached).
fn status(addr: SocketAddr, path: &str) -> u16 {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    if s.write_all(request.as_bytes()).is_err() {
        return 0;
    }
    let mut response = String::new();
    let _ = s.read_to_string(&mut response);
    response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

async fn get(addr: SocketAddr, path: &'static str) -> u16 {
    tokio::task::spawn_blocking(move || status(addr, path))
        .await
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_broker_and_liveness_a_failed_consumer() {
    common::init_tracing();
    let mut server = RedisServer::start();
    let rt = Runtime::builder()
        .service("hh")
        .redis(server.url())
        .connect_timeout(Duration::from_secs(2))
        .response_timeout(Duration::from_secs(1))
        .only(|h| h.module_path().ends_with("::example"))
        .build()
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let http = tokio::spawn(axum::serve(listener, example::routes(rt.health())).into_future());
    let running = common::spawn(rt);
    let t = Duration::from_secs(20);
    wait_until("ready", t, || async { get(addr, "/readyz").await == 200 }).await;
    assert_eq!(get(addr, "/healthz").await, 200);

    server.kill();
    wait_until("not ready while Redis is down", t, || async {
        get(addr, "/readyz").await == 503
    })
    .await;
    assert_eq!(
        get(addr, "/healthz").await,
        200,
        "a Redis outage is not a reason to restart"
    );
    server.restart();
    wait_until("ready again", t, || async {
        get(addr, "/readyz").await == 200
    })
    .await;

    // A consumer task dies: the runtime stops that handler, and liveness says so.
    fault::arm("hh.pong", "retry", Fault::Panic);
    wait_until("not live once a consumer failed", t, || async {
        get(addr, "/healthz").await == 503
    })
    .await;
    let ended = running.1.await.expect("runtime task");
    assert!(ended.is_err(), "run() ends with the failure");
    http.abort();
}
