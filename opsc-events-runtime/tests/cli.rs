//! The `opsc` command against a private redis-server: streams, tail, schema and the dead-letter
//! commands, their JSON output and exit codes.

use std::process::{Command, Output};

use opsc_events_runtime::Runtime;
use opsc_events_runtime::keys::Keys;
use opsc_events_testkit::RedisServer;

fn opsc(server: &RedisServer, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_opsc"))
        .arg("--redis")
        .arg(server.url())
        .args(args)
        .output()
        .expect("run opsc")
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

fn conn(server: &RedisServer) -> redis::Connection {
    redis::Client::open(server.url())
        .expect("client")
        .get_connection()
        .expect("connect")
}

/// An entry as a publisher in any language would write it (see docs/WIRE.md), payload `{n}`.
fn entry(n: u64) -> Vec<(&'static str, Vec<u8>)> {
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

fn xadd(c: &mut redis::Connection, key: &str, fields: &[(&str, Vec<u8>)]) -> String {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(key).arg("*");
    for (k, v) in fields {
        cmd.arg(*k).arg(v);
    }
    cmd.query(c).expect("XADD")
}

/// Three entries on `pings`, a group that has read none, and one dead letter of the first.
fn seed(server: &RedisServer) -> (String, String) {
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
    let mut letter = entry(0);
    for (k, v) in [
        ("original_id", ids[0].clone()),
        ("stream", "pings".into()),
        ("group", "svc.handler".into()),
        ("handler", "svc::handler".into()),
        ("reason", "timeout".into()),
        ("error", "handler timed out".into()),
        ("attempts", "4".into()),
        ("first_failed_at", "1".into()),
        ("failed_at", "2".into()),
        ("replays", "0".into()),
    ] {
        letter.push((k, v.into_bytes()));
    }
    let dl = xadd(&mut c, &keys.dead_letter("pings"), &letter);
    (ids[0].clone(), dl)
}

#[test]
fn streams_lists_lag_and_dead_letters() {
    let server = RedisServer::start();
    seed(&server);
    let out = opsc(&server, &["--json", "streams"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["stream"], "pings");
    assert_eq!(lines[0]["length"], 3);
    assert_eq!(lines[0]["dead_letters"], 1);
    assert_eq!(lines[0]["groups"][0]["group"], "svc.handler");
    assert_eq!(lines[0]["groups"][0]["lag"], 3);
    let text = opsc(&server, &["streams"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("pings: 3 entries, 1 dead letters"));
}

#[test]
fn tail_from_start_decodes_entries() {
    let server = RedisServer::start();
    seed(&server);
    let out = opsc(
        &server,
        &["--json", "tail", "pings", "--from-start", "--count", "3"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2]["event_type"], "ping");
    assert_eq!(lines[2]["data"]["n"], 2);
    assert_eq!(lines[2]["service"], "cli-test");
}

#[test]
fn schema_counts_what_each_stream_carries() {
    let server = RedisServer::start();
    seed(&server);
    let lines = json_lines(&opsc(&server, &["--json", "schema"]));
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["event_type"], "ping");
    assert_eq!(lines[0]["schema"], "0000000000001234");
    assert_eq!(lines[0]["count"], 3);
}

#[test]
fn dlq_list_show_replay_and_purge() {
    let server = RedisServer::start();
    let (first, dl) = seed(&server);
    let list = json_lines(&opsc(
        &server,
        &["--json", "dlq", "list", "--reason", "timeout"],
    ));
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], dl.as_str());
    assert_eq!(list[0]["original_id"], first.as_str());
    assert!(
        json_lines(&opsc(
            &server,
            &["--json", "dlq", "list", "--reason", "panic"]
        ))
        .is_empty()
    );

    let show = json_lines(&opsc(&server, &["--json", "dlq", "show", "pings", &dl]));
    assert_eq!(show[0]["data"]["n"], 0);
    assert_eq!(show[0]["attempts"], 4);

    let dry = opsc(&server, &["dlq", "replay", "--dry-run"]);
    assert!(dry.status.success());
    assert!(String::from_utf8_lossy(&dry.stdout).contains("1 dead letters would be replayed"));
    assert_eq!(
        json_lines(&opsc(&server, &["--json", "dlq", "list"])).len(),
        1,
        "a dry run changes nothing"
    );

    let replay = json_lines(&opsc(
        &server,
        &["--json", "dlq", "replay", "--stream", "pings"],
    ));
    assert_eq!(replay[0]["replay"], 1);
    assert!(json_lines(&opsc(&server, &["--json", "dlq", "list"])).is_empty());
    let mut c = conn(&server);
    let scheduled: Vec<String> = redis::cmd("ZRANGE")
        .arg("opsconductor:{pings}:retry:svc.handler")
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .expect("ZRANGE");
    assert_eq!(
        scheduled,
        vec![first],
        "replayed into the failing group's schedule"
    );

    xadd(
        &mut c,
        "opsconductor:{pings}:dead_letter",
        &[
            ("group", b"svc.handler".to_vec()),
            ("reason", b"panic".to_vec()),
        ],
    );
    let purge = json_lines(&opsc(
        &server,
        &["--json", "dlq", "purge", "--reason", "panic"],
    ));
    assert_eq!(purge[0]["purge"], 1);
    assert!(json_lines(&opsc(&server, &["--json", "dlq", "list"])).is_empty());
}

#[test]
fn exit_codes_tell_usage_from_failure() {
    let server = RedisServer::start();
    let usage = opsc(&server, &["no-such-command"]);
    assert_eq!(usage.status.code(), Some(2));
    let failed = opsc(&server, &["dlq", "show", "pings", "not-an-id"]);
    assert_eq!(failed.status.code(), Some(1));
    let unreachable = Command::new(env!("CARGO_BIN_EXE_opsc"))
        .args(["--redis", "redis://:secret@127.0.0.1:1", "streams"])
        .output()
        .expect("run opsc");
    assert_eq!(unreachable.status.code(), Some(1));
    let err = String::from_utf8_lossy(&unreachable.stderr);
    assert!(
        err.contains("cannot reach redis") && !err.contains("secret"),
        "{err}"
    );
}

#[test]
fn the_runtime_lists_and_reads_streams() {
    let server = RedisServer::start();
    seed(&server);
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    rt.block_on(async {
        let r = Runtime::builder()
            .service("t")
            .redis(server.url())
            .no_handlers()
            .build()
            .await
            .expect("builds");
        assert_eq!(
            r.streams().await.expect("streams"),
            vec!["pings".to_owned()]
        );
        let entries = r.read("pings", None, 2).await.expect("read");
        assert_eq!(entries.len(), 2);
        let rest = r
            .read("pings", Some(entries[1].id), 10)
            .await
            .expect("read");
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].envelope().expect("envelope").event_type, "ping");
    });
}
