//! (g) A publisher whose Redis goes away — killed (connections refused) and frozen with SIGSTOP
//! (connections open, nothing answers): every `publish` returns, with a typed error, within a
//! bounded time; nothing hangs; publishing resumes when Redis is back; and no event reported as
//! published is lost (AOF `appendfsync always`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opsc_events::Error;
use opsc_events::prelude::*;

use crate::common;
use crate::harness::{Rig, SERIAL_SCENARIOS};
use crate::work::{Job, KEY, fate};

/// The publisher's response timeout in this scenario.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest any single `publish` may take, whatever Redis does: the response timeout bounds
/// the whole call, including a wait for the connection manager to reconnect (before it did, a
/// call took up to 4.9 s here when connections were refused). The margin is for a loaded
/// machine's scheduling, not for Redis.
const BOUND: Duration = Duration::from_millis(2_500);

#[derive(Debug, Clone)]
struct Call {
    seq: u64,
    started: Instant,
    took: Duration,
    result: Result<MessageId, String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_whose_redis_goes_away_fails_fast_and_resumes() {
    let _one = SERIAL_SCENARIOS.lock().await;
    let rig = Rig::start(true, &[]).await;
    let rt = Runtime::builder()
        .service("faults")
        .redis(rig.url.clone())
        .no_handlers()
        .connect_timeout(RESPONSE_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT)
        .build()
        .await
        .expect("publisher runtime");
    let calls = Arc::new(Mutex::new(Vec::<Call>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (publisher, calls, stop, next) =
            (rt.publisher(), calls.clone(), stop.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let seq = next.fetch_add(1, Ordering::SeqCst);
                let job = Job {
                    seq,
                    fate: fate::OK,
                };
                let opts = PublishOptions::new().event_id(uuid::Uuid::now_v7());
                let started = Instant::now();
                let result = match tokio::time::timeout(
                    Duration::from_secs(60),
                    publisher.publish_with(&job, &opts),
                )
                .await
                {
                    Ok(Ok(id)) => Ok(id),
                    Ok(Err(e @ (Error::Redis { .. } | Error::Timeout { .. }))) => Err(kind(&e)),
                    Ok(Err(e)) => Err(format!("UNTYPED {e}")),
                    Err(_) => Err("HUNG".to_owned()),
                };
                let failed = result.is_err();
                calls.lock().unwrap().push(Call {
                    seq,
                    started,
                    took: started.elapsed(),
                    result,
                });
                let pause = if failed { 50 } else { 5 };
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
        }));
    }
    let phase = Duration::from_millis(1500);
    tokio::time::sleep(phase).await;
    rig.restart_redis(Duration::from_secs(5)).await;
    tokio::time::sleep(phase).await;
    rig.freeze_redis(Duration::from_secs(2)).await;
    tokio::time::sleep(phase).await;
    rig.restart_redis(Duration::from_secs(1)).await;
    let back = Instant::now();
    rig.wait(
        "a publish succeeds after the last outage",
        Duration::from_secs(20),
        || async {
            calls
                .lock()
                .unwrap()
                .iter()
                .any(|c| c.started > back && c.result.is_ok())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.expect("publisher task");
    }

    let calls = calls.lock().unwrap().clone();
    let acked: HashMap<MessageId, u64> = calls
        .iter()
        .filter_map(|c| c.result.as_ref().ok().map(|id| (*id, c.seq)))
        .collect();
    let errors: HashMap<String, usize> = calls
        .iter()
        .filter_map(|c| c.result.as_ref().err().cloned())
        .fold(HashMap::new(), |mut m, k| {
            *m.entry(k).or_default() += 1;
            m
        });
    let slowest = calls.iter().map(|c| c.took).max().unwrap_or_default();
    let slowest_ok = calls
        .iter()
        .filter(|c| c.result.is_ok())
        .map(|c| c.took)
        .max()
        .unwrap_or_default();
    // Every entry in the stream, by id → seq.
    let mut c = common::conn(&rig.url).await;
    let entries: Vec<(String, HashMap<String, Vec<u8>>)> = redis::cmd("XRANGE")
        .arg(KEY)
        .arg("-")
        .arg("+")
        .query_async(&mut c)
        .await
        .expect("XRANGE");
    let mut present: HashMap<MessageId, u64> = HashMap::new();
    for (id, fields) in &entries {
        let env = Envelope::from_fields(fields.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())))
            .expect("envelope");
        let job: Job = envelope::decode_event(&env).expect("payload");
        present.insert(id.parse().expect("id"), job.seq);
    }
    let lost: Vec<_> = acked
        .iter()
        .filter(|(id, seq)| present.get(*id) != Some(*seq))
        .collect();
    let unacked_present = present.keys().filter(|id| !acked.contains_key(*id)).count();
    println!(
        "==== ledger: publisher whose redis goes away ====\n\
         publish calls: {}, acknowledged: {}, failed: {} {:?}\n\
         slowest call: {:?} (slowest success {:?}), bound {:?}\n\
         entries in the stream: {}, acknowledged and missing: {}, failed but landed: {}\n\
         faults: {:?}",
        calls.len(),
        acked.len(),
        calls.len() - acked.len(),
        errors,
        slowest,
        slowest_ok,
        BOUND,
        present.len(),
        lost.len(),
        unacked_present,
        rig.ledger.verdict(&[], &[]).faults,
    );
    assert!(lost.is_empty(), "acknowledged publishes lost: {lost:?}");
    assert!(
        !errors
            .keys()
            .any(|k| k == "HUNG" || k.starts_with("UNTYPED")),
        "every failure is a typed Redis or timeout error: {errors:?}"
    );
    assert!(slowest <= BOUND, "a publish took {slowest:?}");
    assert!(
        errors.get("timeout").copied().unwrap_or(0) > 0,
        "the frozen server made publishes time out: {errors:?}"
    );
    assert!(
        errors.get("redis").copied().unwrap_or(0) > 0,
        "the killed server made publishes fail: {errors:?}"
    );
    assert!(present.len() >= acked.len());
}

fn kind(e: &Error) -> String {
    match e {
        Error::Timeout { .. } => "timeout".to_owned(),
        _ => "redis".to_owned(),
    }
}
