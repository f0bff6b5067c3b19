//! The `opsc` command against a private redis-server: streams, tail, schema and the dead-letter
//! commands, their JSON output and exit codes.

mod cli_support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cli_support::{
    DEADLINE, conn, dead_letter, entry, json_lines, opsc, run, seed, snapshot, xadd,
};
use opsc_events_runtime::Runtime;
use opsc_events_testkit::RedisServer;

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
fn streams_lists_priority_lanes_in_use() {
    let server = RedisServer::start();
    seed(&server);
    let keys = opsc_events_runtime::keys::Keys::new("opsconductor").stream("pings");
    let high = keys.lane(opsc_events_runtime::Priority::High);
    let mut c = conn(&server);
    let _: i64 = redis::cmd("SADD")
        .arg(keys.lanes_marker())
        .arg("high")
        .query(&mut c)
        .expect("SADD");
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&high.events)
        .arg("svc.handler")
        .arg("0")
        .arg("MKSTREAM")
        .query(&mut c)
        .expect("XGROUP CREATE");
    for n in 0..2 {
        xadd(&mut c, &high.events, &entry(n));
    }
    let out = opsc(&server, &["--json", "streams"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "a lane is not a stream of its own");
    assert_eq!(lines[0]["length"], 3);
    let lane = &lines[0]["lanes"][0];
    assert_eq!(
        (&lane["priority"], &lane["length"]),
        (&serde_json::json!("high"), &serde_json::json!(2))
    );
    assert_eq!(lane["groups"][0]["group"], "svc.handler");
    assert_eq!(lane["groups"][0]["lag"], 2);
    let text = String::from_utf8_lossy(&opsc(&server, &["streams"]).stdout).into_owned();
    assert!(text.contains("priority lane high: 2 entries"), "{text}");
    // Removing the group removes it from every lane.
    let removed = opsc(&server, &["groups", "remove", "pings", "svc.handler"]);
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    let out = opsc(&server, &["--json", "streams"]);
    let lines = json_lines(&out);
    assert_eq!(lines[0]["groups"], serde_json::json!([]));
    assert_eq!(lines[0]["lanes"][0]["groups"], serde_json::json!([]));
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
    let malformed = opsc(&server, &["dlq", "show", "pings", "not-an-id"]);
    assert_eq!(
        malformed.status.code(),
        Some(2),
        "a malformed id is a usage error"
    );
    let missing = opsc(&server, &["dlq", "show", "pings", "1-0"]);
    assert_eq!(
        missing.status.code(),
        Some(1),
        "a missing letter is a failure"
    );
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no dead letter `1-0` on stream `pings`")
    );
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

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn tail_of_a_malformed_stream_name_is_refused_at_once() {
    let server = RedisServer::start();
    // Before names were checked, this waited for entries forever (the deadline fails it).
    let out = opsc(&server, &["tail", "bad name*"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("<STREAM>") && err.contains("stream name"),
        "{err}"
    );
    assert!(err.contains("docs/WIRE.md § Names and limits"), "{err}");
}

#[test]
fn dead_letter_filters_are_checked_even_when_no_stream_matches() {
    // An empty Redis: the filters used to be parsed per stream, so with no stream they were
    // never parsed and the command printed "no dead letters" with exit 0.
    let server = RedisServer::start();
    for (arg, value) in [("--since", "garbage-value"), ("--reason", "not_a_reason")] {
        let out = opsc(&server, &["dlq", "list", arg, value]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{arg} {value}: {}",
            stderr(&out)
        );
        assert!(stderr(&out).contains(arg), "{}", stderr(&out));
        assert!(
            out.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn a_malformed_prefix_is_a_usage_error() {
    let server = RedisServer::start();
    let out = opsc(&server, &["--prefix", "x y", "streams"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--prefix"), "{}", stderr(&out));
}

#[test]
fn a_purge_by_seconds_instead_of_milliseconds_is_refused() {
    // `--since 1700000000` read as milliseconds would be January 1970: every letter.
    let server = RedisServer::start();
    seed(&server);
    let mut c = conn(&server);
    let before = snapshot(&mut c);
    let out = opsc(&server, &["dlq", "purge", "--since", "1700000000"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("13 digits"), "{}", stderr(&out));
    assert_eq!(snapshot(&mut c), before, "nothing purged");
}

#[test]
fn since_and_until_select_by_failure_time() {
    let server = RedisServer::start();
    let (first, _) = seed(&server);
    let mut c = conn(&server);
    let recent = dead_letter(
        &mut c,
        "pings",
        &first,
        "svc.handler",
        "panic",
        1_800_000_000_000,
    );
    let ids = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["--json", "dlq", "list"];
        all.extend_from_slice(args);
        json_lines(&opsc(&server, &all))
            .iter()
            .map(|l| l["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(ids(&["--since", "1700000000000"]), vec![recent.clone()]);
    assert_eq!(ids(&["--until", "1700000000000"]).len(), 1);
    assert_eq!(ids(&["--since", "36500d", "--until", "1h"]).len(), 1);
    let conflict = opsc(
        &server,
        &["dlq", "replay", "--since", "1h", "--until", "2h"],
    );
    assert_eq!(conflict.status.code(), Some(2), "{}", stderr(&conflict));
}

#[test]
fn help_says_what_the_tool_does() {
    let out = run(&["--help".to_owned()], &[]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Operate opsc-events streams in Redis"),
        "{help}"
    );
    assert!(!help.contains(env!("CARGO_PKG_DESCRIPTION")), "{help}");
    assert!(help.contains("Exit codes: 0 ok"), "{help}");
    assert!(help.contains("Example:"), "{help}");
    let out = run(
        &["dlq".to_owned(), "purge".to_owned(), "--help".to_owned()],
        &[],
    );
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Delete dead letters") && help.contains("Example:\n  opsc dlq purge"),
        "{help}"
    );
}

#[test]
fn tail_ends_quietly_when_its_reader_goes_away() {
    // `opsc tail pings | head -1`: the next line written after `head` exits fails with a
    // broken pipe, which ends the command with 0 instead of a panic.
    let server = RedisServer::start();
    seed(&server);
    let mut child = Command::new(env!("CARGO_BIN_EXE_opsc"))
        .args(["--redis", &server.url(), "tail", "pings", "--from-start"])
        .env_remove("REDIS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run opsc");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    reader.read_line(&mut first).expect("read a line");
    assert!(first.starts_with(|c: char| c.is_ascii_digit()), "{first}");
    drop(reader);
    let mut c = conn(&server);
    let deadline = Instant::now() + DEADLINE;
    // New entries until tail writes one into the closed pipe and exits.
    let status = loop {
        xadd(&mut c, "opsconductor:{pings}:events", &entry(9));
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("tail kept running after its reader went away");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err).expect("read stderr");
    }
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// `opsc` over TLS with the server's CA and a client certificate (mutual TLS required by the
/// server), and with the password read from a file: `streams` and `groups remove` (which opens
/// a connection of its own) work; without `--tls-ca` the server is not trusted (exit 1).
#[test]
fn opsc_reaches_a_tls_server_with_a_password_from_a_file() {
    let server = RedisServer::start_with(opsc_events_testkit::ServerOptions {
        tls: true,
        extra: vec![
            ("tls-auth-clients".into(), "yes".into()),
            ("requirepass".into(), "cli-s3cret".into()),
        ],
        ..Default::default()
    });
    let tls = server.tls().expect("TLS").clone();
    // The server's own directory is private to this test and removed with it.
    let password = server.dir().join("pw");
    std::fs::write(&password, "cli-s3cret\n").expect("write");
    let mut c = redis::Client::open(format!("redis://:cli-s3cret@127.0.0.1:{}", server.port()))
        .expect("client")
        .get_connection()
        .expect("connect");
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg("opsconductor:{pings}:events")
        .arg("svc.handler")
        .arg("0")
        .arg("MKSTREAM")
        .query(&mut c)
        .expect("XGROUP CREATE");
    let path = |p: &std::path::Path| p.display().to_string();
    let base = vec![
        "--redis".to_owned(),
        server.tls_url(),
        "--tls-ca".to_owned(),
        path(&tls.ca),
        "--tls-cert".to_owned(),
        path(&tls.client_cert),
        "--tls-key".to_owned(),
        path(&tls.client_key),
        "--password-file".to_owned(),
        path(&password),
    ];
    let with = |args: &[&str]| {
        let mut all = base.clone();
        all.extend(args.iter().map(|a| (*a).to_owned()));
        run(&all, &[])
    };
    let out = with(&["--json", "streams"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_lines(&out)[0]["stream"], "pings");
    let out = with(&["groups", "remove", "pings", "svc.handler"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        &[
            "--redis".to_owned(),
            server.tls_url(),
            "--password-file".to_owned(),
            path(&password),
            "streams".to_owned(),
        ],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "an untrusted server certificate"
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("cli-s3cret"));
}

/// `--tls-cert` without `--tls-key` (or the reverse) is a usage error, before any connection.
#[test]
fn a_client_certificate_needs_its_key() {
    for flag in ["--tls-cert", "--tls-key"] {
        let out = run(
            &[
                "--redis".to_owned(),
                "rediss://127.0.0.1:1".to_owned(),
                flag.to_owned(),
                "/etc/passwd".to_owned(),
                "streams".to_owned(),
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(2), "{flag}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("go together"));
    }
}
