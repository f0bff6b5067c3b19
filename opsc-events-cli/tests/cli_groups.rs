//! `opsc groups` against a private redis-server: every group with its lag, pending, consumers
//! and last activity, stale groups flagged, the group that holds back trimming, `--json`, and
//! `groups remove` (with `--dry-run`) deleting a group with its retry schedule and attempt
//! records so that lossless trimming passes it.

mod cli_support;

use std::time::{Duration, Instant};

use cli_support::{DEADLINE, conn, json_lines, opsc, seed, snapshot};
use opsc_events_runtime::trim::StreamLimits;
use opsc_events_runtime::{Runtime, keys::Keys};
use opsc_events_testkit::RedisServer;
use serde_json::Value;

const EVENTS: &str = "opsconductor:{pings}:events";

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Polls `cond` every 10 ms until it holds; fails the test after [`DEADLINE`].
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `group` reads every entry of `pings` as consumer `consumer` (all pending), and acknowledges
/// them if `ack`.
fn read_all(c: &mut redis::Connection, group: &str, consumer: &str, ack: bool) {
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(EVENTS)
        .arg(group)
        .arg("0")
        .query(c)
        .expect("XGROUP CREATE");
    let read: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(group)
        .arg(consumer)
        .arg("STREAMS")
        .arg(EVENTS)
        .arg(">")
        .query(c)
        .expect("XREADGROUP");
    if ack {
        for key in read.keys {
            for id in key.ids {
                let _: u64 = redis::cmd("XACK")
                    .arg(EVENTS)
                    .arg(group)
                    .arg(&id.id)
                    .query(c)
                    .expect("XACK");
            }
        }
    }
}

/// The idle time (ms) of `consumer` in `group`, as `XINFO CONSUMERS` reports it.
fn idle_ms(c: &mut redis::Connection, group: &str, consumer: &str) -> u64 {
    let info: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(EVENTS)
        .arg(group)
        .query(c)
        .expect("XINFO CONSUMERS");
    info.iter()
        .find(|m| {
            m.get("name").is_some_and(|n| {
                redis::from_redis_value::<String>(n.clone()).ok().as_deref() == Some(consumer)
            })
        })
        .and_then(|m| m.get("idle"))
        .and_then(|v| redis::from_redis_value::<u64>(v.clone()).ok())
        .expect("the consumer's idle time")
}

fn group<'a>(line: &'a Value, name: &str) -> &'a Value {
    line["groups"]
        .as_array()
        .and_then(|gs| gs.iter().find(|g| g["group"] == name))
        .unwrap_or_else(|| panic!("no group {name} in {line}"))
}

fn group_names(c: &mut redis::Connection) -> Vec<String> {
    let groups: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(EVENTS)
        .query(c)
        .expect("XINFO GROUPS");
    groups
        .iter()
        .filter_map(|g| g.get("name"))
        .filter_map(|n| redis::from_redis_value::<String>(n.clone()).ok())
        .collect()
}

#[test]
fn groups_lists_backlog_and_activity_and_flags_the_stale_group() {
    let server = RedisServer::start();
    // `svc.handler`: created, never read (3 entries waiting, no consumer).
    seed(&server);
    let mut c = conn(&server);
    // `svc.live`: one consumer that read all 3 entries and holds them pending.
    read_all(&mut c, "svc.live", "c1", false);
    // `svc.done`: read and acknowledged everything: nothing waits for it.
    read_all(&mut c, "svc.done", "c2", true);

    let out = opsc(&server, &["--json", "groups"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "one line per stream");
    let line = &lines[0];
    assert_eq!(line["stream"], "pings");
    assert_eq!(line["length"], 3);
    assert_eq!(line["stale_after_ms"], 3_600_000, "default 1h");
    assert_eq!(line["held_back_by"], serde_json::json!(["svc.handler"]));
    assert!(line["trim_floor"].is_string(), "{line}");

    let stale = group(line, "svc.handler");
    assert_eq!(stale["lag"], 3);
    assert_eq!(stale["pending"], 0);
    assert_eq!(stale["consumers"], 0);
    assert_eq!(stale["never_active"], true);
    assert!(stale["idle_ms"].is_null());
    assert_eq!(stale["stale"], true, "no consumer and entries waiting");
    assert_eq!(stale["holds_trim"], true);

    let live = group(line, "svc.live");
    assert_eq!(live["lag"], 0);
    assert_eq!(live["pending"], 3);
    assert_eq!(live["consumers"], 1);
    assert_eq!(live["stale"], false, "active within the hour");
    assert_eq!(live["holds_trim"], false);
    assert_eq!(live["consumer_list"][0]["name"], "c1");
    assert_eq!(live["consumer_list"][0]["pending"], 3);
    assert!(live["consumer_list"][0]["idle_ms"].is_u64(), "{live}");

    let done = group(line, "svc.done");
    assert_eq!(
        (done["lag"].as_u64(), done["pending"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(done["stale"], false);

    // Once `c1` has been idle longer than `--stale-after`, `svc.live` is stale too; `svc.done`
    // never is: nothing waits for it.
    wait_for("c1 idle for 300 ms", || {
        idle_ms(&mut c, "svc.live", "c1") > 300
    });
    let lines = json_lines(&opsc(
        &server,
        &["--json", "groups", "pings", "--stale-after", "200ms"],
    ));
    assert_eq!(group(&lines[0], "svc.live")["stale"], true);
    assert_eq!(group(&lines[0], "svc.done")["stale"], false);
    assert!(group(&lines[0], "svc.live")["idle_ms"].as_u64() > Some(200));

    let text = opsc(&server, &["groups", "--verbose", "--stale-after", "200ms"]);
    assert!(text.status.success(), "{}", stderr(&text));
    let text = stdout(&text);
    assert!(
        text.contains(
            "pings: 3 entries, 3 groups; trimming held back by svc.handler (lag 3, pending 0)"
        ),
        "{text}"
    );
    let line_of = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name}: {text}"))
            .to_owned()
    };
    let handler = line_of("svc.handler ");
    assert!(handler.contains("last active never"), "{handler}");
    assert!(
        handler.contains("[STALE, holds back trimming]"),
        "{handler}"
    );
    let live = line_of("svc.live ");
    assert!(
        live.contains("pending 3") && live.contains("consumers 1"),
        "{live}"
    );
    assert!(live.contains("ago  [STALE]"), "{live}");
    assert!(!line_of("svc.done ").contains("STALE"), "{text}");
    assert!(text.contains("    consumer c1: pending 3, idle "), "{text}");
}

#[test]
fn groups_text_escapes_control_characters_from_redis() {
    let server = RedisServer::start();
    seed(&server);
    let mut c = conn(&server);
    // Group names are checked by opsc and the runtime, not by Redis.
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(EVENTS)
        .arg("evil\u{1b}[2J\nname")
        .arg("0")
        .query(&mut c)
        .expect("XGROUP CREATE");
    let out = opsc(&server, &["groups"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(text.contains("evil\\u{1b}[2J\\nname"), "{text}");
    let json = json_lines(&opsc(&server, &["--json", "groups"]));
    assert!(
        json[0]["groups"]
            .as_array()
            .is_some_and(|gs| gs.iter().any(|g| g["group"] == "evil\u{1b}[2J\nname"))
    );
}

/// `pings` seeded with `svc.handler` (never read, 3 entries waiting) and `svc.done` (read and
/// acknowledged everything); `svc.handler` has a retry schedule and `records` attempt records;
/// the group `svc.handler:2` (whose record keys start like `svc.handler`'s) and the stream
/// `orders` have records of their own.
fn seed_removable(server: &RedisServer, records: usize) -> redis::Connection {
    let (first, _) = seed(server);
    let mut c = conn(server);
    read_all(&mut c, "svc.done", "c2", true);
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(EVENTS)
        .arg("svc.handler:2")
        .arg("$")
        .query(&mut c)
        .expect("XGROUP CREATE");
    let keys = Keys::new("opsconductor").stream("pings");
    let _: u64 = redis::cmd("ZADD")
        .arg(keys.retry("svc.handler"))
        .arg(1)
        .arg(&first)
        .query(&mut c)
        .expect("ZADD");
    let mut pipe = redis::pipe();
    for n in 0..records {
        pipe.cmd("HSET")
            .arg(keys.record("svc.handler", &format!("{n}-0")))
            .arg("attempts")
            .arg(1)
            .ignore();
    }
    pipe.cmd("HSET")
        .arg(keys.record("svc.handler:2", "1-0"))
        .arg("attempts")
        .arg(1)
        .ignore();
    pipe.cmd("HSET")
        .arg(
            Keys::new("opsconductor")
                .stream("orders")
                .record("svc.handler", "1-0"),
        )
        .arg("attempts")
        .arg(1)
        .ignore();
    let () = pipe.query(&mut c).expect("records");
    c
}

#[test]
fn groups_remove_dry_run_changes_nothing() {
    let server = RedisServer::start();
    let mut c = seed_removable(&server, 5);
    let before = snapshot(&mut c);
    let out = opsc(
        &server,
        &["groups", "remove", "pings", "svc.handler", "--dry-run"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("would remove group svc.handler of stream pings: pending 0, lag 3, retrying 1, 5 attempt records"),
        "{text}"
    );
    let json = json_lines(&opsc(
        &server,
        &[
            "--json",
            "groups",
            "remove",
            "pings",
            "svc.handler",
            "--dry-run",
        ],
    ));
    assert_eq!(json[0]["would"], "remove");
    assert_eq!(json[0]["lag"], 3);
    assert_eq!(json[0]["pending"], 0);
    assert_eq!(json[0]["attempt_records"], 5);
    assert!(snapshot(&mut c) == before, "a dry run changed a key");
}

#[test]
fn groups_remove_deletes_the_group_its_schedule_and_records_and_trimming_passes() {
    let server = RedisServer::start();
    // More records than one SCAN page looks at.
    let mut c = seed_removable(&server, 2_500);
    let keys = Keys::new("opsconductor").stream("pings");
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    let trimmer = rt.block_on(async {
        Runtime::builder()
            .service("t")
            .redis(server.url())
            .no_handlers()
            .stream_limits("pings", StreamLimits::new())
            .build()
            .await
            .expect("builds")
    });
    let trim =
        |rt: &tokio::runtime::Runtime| rt.block_on(trimmer.trim_now()).expect("trim")[0].trimmed;
    assert_eq!(trim(&rt), 0, "the unread group holds every entry");

    let out = opsc(
        &server,
        &["--json", "groups", "remove", "pings", "svc.handler"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json = json_lines(&out);
    assert_eq!(json[0]["removed"], true);
    assert_eq!(json[0]["attempt_records"], 2_500);

    let names = group_names(&mut c);
    assert!(!names.contains(&"svc.handler".to_owned()), "{names:?}");
    assert!(names.contains(&"svc.handler:2".to_owned()), "{names:?}");
    let exists = |c: &mut redis::Connection, key: &str| -> bool {
        redis::cmd("EXISTS")
            .arg(key)
            .query::<u64>(c)
            .expect("EXISTS")
            == 1
    };
    assert!(
        !exists(&mut c, &keys.retry("svc.handler")),
        "schedule deleted"
    );
    for n in [0, 1_234, 2_499] {
        assert!(!exists(
            &mut c,
            &keys.record("svc.handler", &format!("{n}-0"))
        ));
    }
    assert!(
        exists(&mut c, &keys.record("svc.handler:2", "1-0")),
        "another group's record"
    );
    assert!(
        exists(
            &mut c,
            &Keys::new("opsconductor")
                .stream("orders")
                .record("svc.handler", "1-0")
        ),
        "another stream's record"
    );
    assert_eq!(trim(&rt), 3, "nothing holds the entries any more");

    let again = opsc(&server, &["groups", "remove", "pings", "svc.handler"]);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("no consumer group `svc.handler` on stream `pings`"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn groups_remove_of_a_missing_group_fails_and_changes_nothing() {
    let server = RedisServer::start();
    let mut c = seed_removable(&server, 3);
    let before = snapshot(&mut c);
    for args in [
        &["groups", "remove", "pings", "svc.nobody"][..],
        &["groups", "remove", "pings", "svc.nobody", "--dry-run"][..],
        &["groups", "remove", "nostream", "svc.handler"][..],
    ] {
        let out = opsc(&server, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("no consumer group"),
            "{}",
            stderr(&out)
        );
    }
    assert!(snapshot(&mut c) == before);
}

#[test]
fn groups_reset_moves_the_read_position_and_keeps_pending_entries() {
    let server = RedisServer::start();
    seed(&server);
    let mut c = conn(&server);
    // `holder` has read every entry and acknowledged none: 3 pending.
    read_all(&mut c, "svc.holder", "h1", false);
    let before = snapshot(&mut c);
    let dry = opsc(
        &server,
        &[
            "--json",
            "groups",
            "reset",
            "pings",
            "svc.handler",
            "--to",
            "latest",
            "--dry-run",
        ],
    );
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    let line = &json_lines(&dry)[0];
    assert_eq!(
        (line["would"].clone(), line["lag"].clone()),
        (Value::from("reset"), Value::from(3))
    );
    assert!(snapshot(&mut c) == before, "a dry run changed a key");

    let lag_of = |g: &str| -> Value {
        let out = opsc(&server, &["--json", "groups", "pings"]);
        group(&json_lines(&out)[0], g)["lag"].clone()
    };
    let out = opsc(
        &server,
        &["groups", "reset", "pings", "svc.handler", "--to", "latest"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("reset group svc.handler of stream pings to latest"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        lag_of("svc.handler"),
        Value::from(0),
        "nothing left to deliver"
    );

    let out = opsc(
        &server,
        &["groups", "reset", "pings", "svc.holder", "--to", "latest"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (pending, _, _, _): (u64, redis::Value, redis::Value, redis::Value) =
        redis::cmd("XPENDING")
            .arg(EVENTS)
            .arg("svc.holder")
            .query(&mut c)
            .expect("XPENDING");
    assert_eq!(pending, 3, "pending entries stay pending");

    // `earliest`: the whole stream is delivered again.
    let out = opsc(
        &server,
        &[
            "groups",
            "reset",
            "pings",
            "svc.handler",
            "--to",
            "earliest",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let again: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("svc.handler")
        .arg("c9")
        .arg("STREAMS")
        .arg(EVENTS)
        .arg(">")
        .query(&mut c)
        .expect("XREADGROUP");
    assert_eq!(again.keys[0].ids.len(), 3);

    let missing = opsc(
        &server,
        &["groups", "reset", "pings", "no.such", "--to", "latest"],
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("no consumer group `no.such`"),
        "{}",
        stderr(&missing)
    );
}
