//! What the `opsc` tests share: running the binary with a deadline, a private Redis seeded with
//! entries and dead letters as a publisher in any language would write them, and a snapshot of
//! every key to prove a command changed nothing.

// Each test crate that includes this module uses a different part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use opsc_events_runtime::keys::Keys;
use opsc_events_testkit::RedisServer;

/// How long one `opsc` run may take before the test fails (a usage error takes milliseconds;
/// a command that went on to wait for entries would never end).
pub(crate) const DEADLINE: Duration = Duration::from_secs(20);

/// Runs `opsc` with `args` (nothing added), without `REDIS_URL` unless `env` sets it, and fails
/// the test if it has not exited within [`DEADLINE`].
pub(crate) fn run(args: &[String], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_opsc"));
    cmd.args(args)
        .env_remove("REDIS_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run opsc");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for opsc") {
            break status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`opsc {}` did not exit within {DEADLINE:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    if let Some(mut out) = child.stdout.take() {
        out.read_to_end(&mut stdout).expect("read stdout");
    }
    if let Some(mut err) = child.stderr.take() {
        err.read_to_end(&mut stderr).expect("read stderr");
    }
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Runs `opsc --redis <server> args...` within the deadline.
pub(crate) fn opsc(server: &RedisServer, args: &[&str]) -> Output {
    let mut all = vec!["--redis".to_owned(), server.url()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    run(&all, &[])
}

pub(crate) fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

pub(crate) fn conn(server: &RedisServer) -> redis::Connection {
    redis::Client::open(server.url())
        .expect("client")
        .get_connection()
        .expect("connect")
}

/// An entry as a publisher in any language would write it (see docs/WIRE.md), payload `{n}`.
pub(crate) fn entry(n: u64) -> Vec<(&'static str, Vec<u8>)> {
    #[derive(serde::Serialize)]
    struct Payload {
        n: u64,
    }
    let id = uuid::Uuid::now_v7().to_string();
    vec![
        ("event_type", b"ping".to_vec()),
        ("version", b"1".to_vec()),
        ("schema", b"0000000000001234".to_vec()),
        ("event_id", id.clone().into_bytes()),
        ("service", b"cli-test".to_vec()),
        ("timestamp", b"1700000000000".to_vec()),
        ("correlation_id", id.into_bytes()),
        (
            "data",
            rmp_serde::to_vec_named(&Payload { n }).expect("msgpack"),
        ),
    ]
}

pub(crate) fn xadd(c: &mut redis::Connection, key: &str, fields: &[(&str, Vec<u8>)]) -> String {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(key).arg("*");
    for (k, v) in fields {
        cmd.arg(*k).arg(v);
    }
    cmd.query(c).expect("XADD")
}

/// Adds a dead letter of `original` (an entry of `stream`) failed by `group` for `reason`,
/// failed at `failed_at` (ms); returns its id.
pub(crate) fn dead_letter(
    c: &mut redis::Connection,
    stream: &str,
    original: &str,
    group: &str,
    reason: &str,
    failed_at: u64,
) -> String {
    let mut letter = entry(0);
    for (k, v) in [
        ("original_id", original.to_owned()),
        ("stream", stream.to_owned()),
        ("group", group.to_owned()),
        ("handler", "svc::handler".to_owned()),
        ("reason", reason.to_owned()),
        ("error", "handler timed out".to_owned()),
        ("attempts", "4".to_owned()),
        ("first_failed_at", failed_at.saturating_sub(1).to_string()),
        ("failed_at", failed_at.to_string()),
        ("replays", "0".to_owned()),
    ] {
        letter.push((k, v.into_bytes()));
    }
    xadd(c, &Keys::new("opsconductor").dead_letter(stream), &letter)
}

/// Three entries on `pings`, a group that has read none, and one dead letter of the first;
/// returns the first entry's id and the letter's id.
pub(crate) fn seed(server: &RedisServer) -> (String, String) {
    let keys = Keys::new("opsconductor");
    let mut c = conn(server);
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(keys.events("pings"))
        .arg("svc.handler")
        .arg("0")
        .arg("MKSTREAM")
        .query(&mut c)
        .expect("XGROUP CREATE");
    let ids: Vec<String> = (0..3)
        .map(|n| xadd(&mut c, &keys.events("pings"), &entry(n)))
        .collect();
    let dl = dead_letter(&mut c, "pings", &ids[0], "svc.handler", "timeout", 2);
    (ids[0].clone(), dl)
}

/// Every key and its `DUMP`, to compare before and after a command.
pub(crate) fn snapshot(c: &mut redis::Connection) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut keys = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, page): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(1000)
            .query(c)
            .expect("SCAN");
        keys.extend(page);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.into_iter()
        .map(|k| {
            let dump: Vec<u8> = redis::cmd("DUMP").arg(&k).query(c).expect("DUMP");
            (k, dump)
        })
        .collect()
}

/// How many connections the server has accepted so far (`INFO stats`).
pub(crate) fn connections(c: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("stats").query(c).expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix("total_connections_received:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("total_connections_received in INFO stats")
}
