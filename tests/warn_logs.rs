//! Failures that stop progress are logged at warn — once per minute per loop, not once per
//! try: a reclaim that keeps failing (here: every `XAUTOCLAIM`, injected with the runtime's
//! `fault-injection` feature) gives one warning over many failed tries, on Redis and on the
//! embedded broker. (They were logged at debug only, so nobody saw a stuck reclaim.)

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::wait_until;
use opsc_events::prelude::*;
use opsc_events_runtime::fault::{self, Fault};
use opsc_events_testkit::RedisServer;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(name = "warned", version = 1, stream = "warn_stream")]
pub struct Warned {
    pub n: u32,
}

pub mod reclaiming {
    use super::*;

    /// `claim_after` 200 ms: the reclaimer looks every 100 ms.
    #[handler(
        stream = "warn_stream",
        group = "warn.redis",
        timeout = "100ms",
        claim_after = "200ms"
    )]
    pub async fn on_redis(_e: Warned) {}

    #[handler(
        stream = "warn_stream",
        group = "warn.memory",
        timeout = "100ms",
        claim_after = "200ms"
    )]
    pub async fn on_memory(_e: Warned) {}
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reclaim_that_keeps_failing_is_warned_about_once_per_minute() {
    let captured = Captured::default();
    let sink = captured.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(move || sink.clone())
        .init();
    let server = RedisServer::start();
    for (group, redis) in [("warn.redis", true), ("warn.memory", false)] {
        let b = Runtime::builder()
            .service("warn")
            .only(move |h| h.group() == group);
        let b = if redis {
            b.redis(server.url())
        } else {
            b.memory()
        };
        let rt = b.build().await.unwrap();
        fault::arm(group, "reclaim", Fault::Fail);
        let running = common::spawn(rt);
        wait_until("ten failed reclaims", Duration::from_secs(20), || async {
            fault::failures(group, "reclaim") >= 10
        })
        .await;
        fault::disarm(group, "reclaim");
        common::stop(running).await;
        let text = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
        let warnings: Vec<&str> = text
            .lines()
            .filter(|l| {
                l.contains("WARN")
                    && l.contains("reclaiming entries of dead consumers failed")
                    && l.contains(group)
            })
            .collect();
        assert_eq!(
            warnings.len(),
            1,
            "one warning for ten failures: {warnings:#?}"
        );
        // Every log line of a consumer names its stream, group and handler (its span).
        assert!(
            warnings[0].contains("stream=warn_stream")
                && warnings[0].contains(&format!("group={group}"))
                && warnings[0].contains("handler=")
                && warnings[0].contains("reclaiming::on_"),
            "{}",
            warnings[0]
        );
    }
}
