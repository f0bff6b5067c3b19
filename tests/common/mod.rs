//! Helpers shared by the integration tests: bounded waits and Redis inspection.
#![allow(dead_code)] // each test binary uses a different subset

use std::future::Future;
use std::time::{Duration, Instant};

/// Logs to the test output when `RUST_LOG` is set (e.g. `RUST_LOG=opsc_events_runtime=debug`).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Polls `cond` every 20 ms until it holds or `limit` passes; panics naming `what` on timeout.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if cond().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A plain connection to the test's server, with a generous response timeout (the client's
/// default of 500 ms is too short for large replies on a loaded CI machine).
pub async fn conn(url: &str) -> redis::aio::MultiplexedConnection {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(10)))
        .set_response_timeout(Some(Duration::from_secs(30)));
    redis::Client::open(url)
        .expect("client")
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("connect")
}

/// Number of pending entries of `group` on `key` (0 when the group does not exist).
pub async fn pending(url: &str, key: &str, group: &str) -> u64 {
    let mut c = conn(url).await;
    let v: redis::RedisResult<(u64, redis::Value, redis::Value, redis::Value)> =
        redis::cmd("XPENDING")
            .arg(key)
            .arg(group)
            .query_async(&mut c)
            .await;
    v.map(|r| r.0).unwrap_or(0)
}

/// The consumers of `group` on `key` with their pending counts.
pub async fn consumers(url: &str, key: &str, group: &str) -> Vec<(String, u64)> {
    let mut c = conn(url).await;
    let v: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(key)
        .arg(group)
        .query_async(&mut c)
        .await
        .unwrap_or_default();
    v.into_iter()
        .map(|m| {
            let name = match m.get("name") {
                Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
                other => format!("{other:?}"),
            };
            let pending = match m.get("pending") {
                Some(redis::Value::Int(n)) => *n as u64,
                _ => 0,
            };
            (name, pending)
        })
        .collect()
}

/// `XLEN key`.
pub async fn xlen(url: &str, key: &str) -> u64 {
    let mut c = conn(url).await;
    redis::cmd("XLEN")
        .arg(key)
        .query_async(&mut c)
        .await
        .expect("XLEN")
}

/// The group names on `key` (empty when the key does not exist).
pub async fn groups(url: &str, key: &str) -> Vec<String> {
    let mut c = conn(url).await;
    let v: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(key)
        .query_async(&mut c)
        .await
        .unwrap_or_default();
    v.into_iter()
        .filter_map(|m| match m.get("name") {
            Some(redis::Value::BulkString(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        })
        .collect()
}

/// `ZCARD key`.
pub async fn zcard(url: &str, key: &str) -> u64 {
    let mut c = conn(url).await;
    redis::cmd("ZCARD")
        .arg(key)
        .query_async(&mut c)
        .await
        .expect("ZCARD")
}

/// A runtime running in the background: the sender stops it, the handle waits for the drain.
pub type Running = (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<opsc_events::Result<()>>,
);

/// Runs `rt` in the background until [`stop`].
pub fn spawn(rt: opsc_events::Runtime) -> Running {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(rt.run_until(async move {
        let _ = rx.await;
    }));
    (tx, handle)
}

/// Stops a runtime started with [`spawn`] and waits for its graceful shutdown.
pub async fn stop(running: Running) {
    let _ = running.0.send(());
    running
        .1
        .await
        .expect("runtime task")
        .expect("runtime result");
}

/// Starts the `fault-consumer` process (`tests/bin/fault_consumer.rs`) in `mode` against `url`,
/// with `env` set, and returns it with the lines it prints (collected as they come).
pub fn spawn_fault_consumer(
    url: &str,
    mode: &str,
    env: &[(&str, &str)],
) -> (
    std::process::Child,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use std::io::BufRead;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_fault-consumer"));
    cmd.arg(url)
        .arg(mode)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn fault-consumer");
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let out = child.stdout.take().expect("stdout");
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    });
    (child, lines)
}
