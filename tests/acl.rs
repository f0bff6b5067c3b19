//! Least privilege: a Redis user created from the generated ACL rules can do everything the
//! runtime does — publish, handle, retry, dead-letter, replay, purge, trim, report health — and
//! nothing outside its streams' keys. A command missing from the rules shows as a failed
//! operation or in the server's `ACL LOG` (checked empty); a key pattern wider than the
//! streams' families (`~*`) lets the refused writes below through.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::wait_until;
use opsc_events::acl;
use opsc_events::prelude::*;
use opsc_events::{StreamLimits, keys::DEFAULT_PREFIX};
use opsc_events_testkit::RedisServer;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

const USER: &str = "acl_svc";
const PASSWORD: &str = "acl-test-pw";

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "acl_jobs")]
pub struct Job {
    pub n: u64,
}

/// Published by the handler: a stream the service only publishes to.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "acl_audit")]
pub struct Audited {
    pub n: u64,
}

/// A stream the service has no rules for.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "acl_other")]
pub struct Other {
    pub n: u64,
}

/// Every call of the handler: (n, attempt).
#[derive(Clone, Default)]
pub struct Calls(Arc<Mutex<Vec<(u64, u32)>>>);

impl Calls {
    fn saw(&self, n: u64, attempt: u32) -> bool {
        self.0
            .lock()
            .map(|c| c.contains(&(n, attempt)))
            .unwrap_or(false)
    }
}

mod jobs {
    use super::*;

    /// `n = 0` always fails (dead letter after the retry), `n = 1` fails its first attempt
    /// (a retry through the schedule), others succeed; successes publish an `Audited`. A short
    /// `claim_after` makes the reclaim loop (`XAUTOCLAIM`) run during the test.
    #[handler(
        stream = "acl_jobs",
        retries = 1,
        backoff = "fixed(20ms)",
        timeout = "500ms",
        claim_after = "1s"
    )]
    pub async fn work(event: Job, ctx: Context, State(calls): State<Calls>) -> Result<(), String> {
        if let Ok(mut c) = calls.0.lock() {
            c.push((event.n, ctx.attempt()));
        }
        match (event.n, ctx.attempt()) {
            (0, _) => Err("always fails".to_owned()),
            (1, 1) => Err("fails once".to_owned()),
            (n, _) => ctx
                .publish(&Audited { n })
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
    }
}

/// Database 1, so that the client sends `SELECT` too.
fn user_url(server: &RedisServer) -> String {
    format!("redis://{USER}:{PASSWORD}@127.0.0.1:{}/1", server.port())
}

/// The server's `ACL LOG` entries as `(reason, object, context)`.
async fn acl_log(url: &str) -> Vec<(String, String, String)> {
    let mut c = common::conn(url).await;
    let entries: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("ACL")
        .arg("LOG")
        .query_async(&mut c)
        .await
        .expect("ACL LOG");
    let text = |m: &std::collections::HashMap<String, redis::Value>, k: &str| match m.get(k) {
        Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(redis::Value::SimpleString(s)) => s.clone(),
        other => format!("{other:?}"),
    };
    entries
        .iter()
        .map(|m| (text(m, "reason"), text(m, "object"), text(m, "context")))
        .collect()
}

fn is_noperm(e: &redis::RedisError) -> bool {
    e.code() == Some("NOPERM")
}

#[tokio::test]
async fn a_user_from_the_generated_rules_runs_everything_and_nothing_else() {
    common::init_tracing();
    let server = RedisServer::start();
    let admin_url = format!("{}/1", server.url());
    let rules = acl::rules(USER, DEFAULT_PREFIX, ["acl_audit"], ["acl_jobs"]).expect("rules");
    assert!(!rules.key_patterns().iter().any(|p| p == "~*"), "{rules}");

    // Create the user as an operator would, through a plain connection.
    let mut admin = common::conn(&admin_url).await;
    let mut setuser = redis::cmd("ACL");
    setuser.arg("SETUSER");
    for a in rules.setuser_args(PASSWORD) {
        setuser.arg(a);
    }
    let () = setuser.query_async(&mut admin).await.expect("ACL SETUSER");
    let () = redis::cmd("ACL")
        .arg("LOG")
        .arg("RESET")
        .query_async(&mut admin)
        .await
        .expect("ACL LOG RESET");

    // The service, connected as that user: builds (server check, groups), handles, retries,
    // dead-letters, publishes follow-ups to a stream it only publishes to.
    let calls = Calls::default();
    let rt = Runtime::builder()
        .service("aclsvc")
        .redis(user_url(&server))
        .state(calls.clone())
        .only(|h| h.stream() == "acl_jobs")
        .consumer_idle_timeout(Duration::from_millis(400))
        .shutdown_timeout(Duration::from_secs(2))
        .build()
        .await
        .expect("the runtime builds under the user");
    assert_eq!(
        rt.acl_rules(USER, &["acl_audit"]).expect("runtime rules"),
        rules,
        "the runtime computes the same rules"
    );
    // A second runtime of the same service, publish-only, that trims the handled stream with
    // caps (the capped trimming path) and reads stream info.
    let ops = Runtime::builder()
        .service("aclsvc")
        .redis(user_url(&server))
        .no_handlers()
        .stream_limits(
            "acl_jobs",
            StreamLimits::new()
                .max_len(1_000_000)
                .max_age(Duration::from_secs(3600)),
        )
        .build()
        .await
        .expect("a publish-only runtime builds under the user");
    assert_eq!(
        ops.acl_rules(USER, &["acl_audit"]).expect("ops rules"),
        rules,
        "a runtime trimming a stream needs its handling rules"
    );

    let publisher = rt.publisher();
    let dl = rt.dead_letters();
    let health = rt.health();
    for n in 0..3 {
        publisher.publish(&Job { n }).await.expect("publish");
    }
    // Delayed events on the handled stream: one scheduled and moved in by the runtime's mover
    // (its script under the user), one cancelled.
    publisher
        .publish_after(&Job { n: 5 }, Duration::from_millis(300))
        .await
        .expect("publish_after on a handled stream");
    let called_off = publisher
        .publish_after(&Job { n: 6 }, Duration::from_secs(3600))
        .await
        .expect("publish_after");
    assert!(publisher.cancel(&called_off).await.expect("cancel"));
    // A consumer that owns nothing, for the idle-consumer removal (`XGROUP DELCONSUMER`).
    let key = "opsconductor:{acl_jobs}:events";
    let created: i64 = redis::cmd("XGROUP")
        .arg("CREATECONSUMER")
        .arg(key)
        .arg("aclsvc.work")
        .arg("ghost")
        .query_async(&mut admin)
        .await
        .expect("XGROUP CREATECONSUMER");
    assert_eq!(created, 1);
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(rt.run_until(async move {
        let _ = stopped.await;
    }));

    let jobs = DeadLetterFilter::stream("acl_jobs");
    wait_until(
        "retry, success and a dead letter",
        Duration::from_secs(20),
        || async {
            calls.saw(2, 1)
                && calls.saw(5, 1)
                && calls.saw(1, 2)
                && calls.saw(0, 2)
                && dl.list(&jobs).await.is_ok_and(|l| l.len() == 1)
        },
    )
    .await;
    let letters = dl.list(&jobs).await.expect("list dead letters");
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].reason, DeadLetterReason::HandlerError);
    let letter = dl
        .get("acl_jobs", letters[0].id)
        .await
        .expect("get a dead letter");
    assert!(letter.is_some());

    wait_until(
        "the idle consumer removed",
        Duration::from_secs(20),
        || async {
            !common::consumers(&admin_url, key, "aclsvc.work")
                .await
                .iter()
                .any(|(name, _)| name == "ghost")
        },
    )
    .await;

    // Trimming (lossless, then the caps) empties the stream: every entry is acknowledged.
    let reports = ops.trim_now().await.expect("trim under the user");
    assert!(!reports.is_empty(), "{reports:?}");
    ops.stream_info("acl_jobs").await.expect("stream info");
    let left: u64 = redis::cmd("XLEN")
        .arg(key)
        .query_async(&mut admin)
        .await
        .expect("XLEN");
    assert_eq!(left, 0, "trimmed: {reports:?}");

    // Replay: back to the group's schedule (its entry now only in the attempt record), fails
    // twice again, dead-lettered with replays = 1.
    assert_eq!(dl.replay(&jobs).await.expect("replay"), 1);
    wait_until(
        "the replayed letter back",
        Duration::from_secs(20),
        || async {
            dl.list(&jobs)
                .await
                .is_ok_and(|l| l.len() == 1 && l[0].replays == 1)
        },
    )
    .await;
    assert_eq!(dl.purge(&jobs).await.expect("purge"), 1);
    let report = health.check().await;
    assert!(report.broker.is_ok(), "{report:?}");
    assert!(report.healthy, "{report:?}");

    let _ = stop.send(());
    running
        .await
        .expect("runtime task")
        .expect("the runtime ran without error");

    let mut admin = common::conn(&admin_url).await;
    let audited: u64 = redis::cmd("XLEN")
        .arg("opsconductor:{acl_audit}:events")
        .query_async(&mut admin)
        .await
        .expect("XLEN");
    assert_eq!(audited, 3, "follow-ups of n = 1, 2 and 5");

    // Nothing the runtime sent was refused.
    // (Redis 7.2 and later log the client's `CLIENT SETINFO` on connect, whose failure the
    // client ignores: not part of the rules, see `acl`.)
    let denied: Vec<_> = acl_log(&admin_url)
        .await
        .into_iter()
        .filter(|(_, object, _)| object != "client|setinfo")
        .collect();
    assert!(
        denied.is_empty(),
        "commands refused to the user: {denied:?}"
    );

    // Scheduling a delayed event on a stream only published to needs
    // `AclRules::with_delayed_publishing`.
    let err = ops
        .publisher()
        .publish_after(&Audited { n: 9 }, Duration::from_secs(60))
        .await
        .expect_err("delayed publishing without its rules is refused");
    assert!(
        matches!(&err, opsc_events::Error::Redis { source, .. } if is_noperm(source)),
        "{err:?}"
    );

    // Nothing outside the streams' families is allowed.
    let other = ops.publisher().publish(&Other { n: 1 }).await;
    let err = other.expect_err("publishing to a stream without rules is refused");
    assert!(
        matches!(&err, opsc_events::Error::Redis { source, .. } if is_noperm(source)),
        "{err:?}"
    );
    let mut user = common::conn(&user_url(&server)).await;
    for key in [
        "opsconductor:{acl_other}:events",
        "opsconductor:{acl_audit}:dead_letter",
        "other_app:data",
    ] {
        let res: redis::RedisResult<String> = redis::cmd("XADD")
            .arg(key)
            .arg("*")
            .arg("k")
            .arg("v")
            .query_async(&mut user)
            .await;
        assert!(
            res.as_ref().is_err_and(is_noperm),
            "XADD {key} as the user: {res:?}"
        );
    }
    // Commands outside the rules: SCAN (key patterns do not limit it) and any other.
    for cmd in ["FLUSHALL", "KEYS"] {
        let mut c = redis::cmd(cmd);
        if cmd == "KEYS" {
            c.arg("*");
        }
        let res: redis::RedisResult<redis::Value> = c.query_async(&mut user).await;
        assert!(res.as_ref().is_err_and(is_noperm), "{cmd}: {res:?}");
    }
    assert!(ops.streams().await.is_err(), "SCAN is not granted");
}
