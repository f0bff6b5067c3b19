//! Trimming on Redis: bounded steps, one trimmer at a time, and a failing stream does not stop
//! the others.

mod common;

use std::time::Duration;

use opsc_events::prelude::*;
use opsc_events_testkit::RedisServer;

/// Calls of EVALSHA/EVAL so far (`INFO commandstats`).
async fn script_calls(url: &str) -> u64 {
    let mut c = common::conn(url).await;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut c)
        .await
        .unwrap();
    info.lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// A stream of `n` entries read by group `g` (everything delivered and acknowledged: all of it
/// can be trimmed).
async fn consumed_stream(url: &str, stream: &str, n: usize) {
    let mut c = common::conn(url).await;
    let key = format!("opsconductor:{{{stream}}}:events");
    for chunk in 0..n.div_ceil(10_000) {
        let mut pipe = redis::pipe();
        for _ in 0..10_000.min(n - chunk * 10_000) {
            pipe.cmd("XADD")
                .arg(&key)
                .arg("*")
                .arg("x@1")
                .arg("v")
                .ignore();
        }
        let () = pipe.query_async(&mut c).await.unwrap();
    }
    let () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&key)
        .arg("g")
        .arg("$")
        .query_async(&mut c)
        .await
        .unwrap();
}

fn trimmer(url: &str, name: &str, streams: &[&str]) -> opsc_events::RuntimeBuilder {
    let mut b = Runtime::builder()
        .service("trim")
        .consumer_name(name)
        .redis(url)
        .response_timeout(Duration::from_secs(30))
        .no_handlers();
    for s in streams {
        b = b.stream_limits(*s, StreamLimits::new());
    }
    b
}

/// 250,000 trimmable entries are removed in several bounded steps (one script each, at most
/// about 100,000 entries per step), not in one script that blocks Redis for all of them.
#[tokio::test]
async fn a_large_trim_is_done_in_bounded_steps() {
    let server = RedisServer::start();
    let url = server.url();
    consumed_stream(&url, "big", 250_000).await;
    let rt = trimmer(&url, "t1", &["big"]).build().await.unwrap();
    let before = script_calls(&url).await;
    let r = rt.trim_now().await.unwrap();
    let steps = script_calls(&url).await - before;
    assert_eq!(r[0].trimmed, 250_000, "{r:?}");
    assert!(steps >= 3, "{steps} script calls for 250,000 entries");
    assert_eq!(rt.stream_info("big").await.unwrap().length, 0);
}

/// While another instance holds a stream's trim lock, this one leaves the stream alone; once
/// the lock is gone it trims. A stream that cannot be trimmed (its key is of the wrong type)
/// fails with an error, after the other streams were trimmed.
#[tokio::test]
async fn one_trimmer_at_a_time_and_a_failing_stream_does_not_stop_the_others() {
    let server = RedisServer::start();
    let url = server.url();
    let mut c = common::conn(&url).await;
    consumed_stream(&url, "a", 100).await;
    consumed_stream(&url, "c", 100).await;
    let rt = trimmer(&url, "t1", &["a"]).build().await.unwrap();
    let lock = "opsconductor:{a}:trim_lock";
    let () = redis::cmd("SET")
        .arg(lock)
        .arg("another-instance")
        .arg("PX")
        .arg(60_000)
        .query_async(&mut c)
        .await
        .unwrap();
    let r = rt.trim_now().await.unwrap();
    assert_eq!(r[0].trimmed, 0, "another instance holds the lock");
    assert_eq!(rt.stream_info("a").await.unwrap().length, 100);
    let () = redis::cmd("DEL")
        .arg(lock)
        .query_async(&mut c)
        .await
        .unwrap();
    let r = rt.trim_now().await.unwrap();
    assert_eq!(r[0].trimmed, 100);
    let held: Option<String> = redis::cmd("GET")
        .arg(lock)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(held, None, "the lock is released when the pass is complete");

    // "b" sorts between "a" and "c": it fails, "c" is still trimmed.
    let () = redis::cmd("SET")
        .arg("opsconductor:{b}:events")
        .arg("not a stream")
        .query_async(&mut c)
        .await
        .unwrap();
    let rt = trimmer(&url, "t2", &["b", "c"]).build().await.unwrap();
    let err = rt.trim_now().await.expect_err("stream b cannot be trimmed");
    assert!(err.to_string().contains("{b}"), "{err}");
    assert_eq!(
        rt.stream_info("c").await.unwrap().length,
        0,
        "c was trimmed"
    );
}
