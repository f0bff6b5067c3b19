//! Every subcommand and every option of `opsc`, taken from its clap definition, given invalid
//! values: each run must be a usage error (exit 2) that names the argument, and must change no
//! key in Redis — the run must not even connect. An option added without invalid values here
//! fails `every_option_has_invalid_values`.

mod cli_support;

use std::collections::BTreeSet;

use cli_support::{conn, connections, dead_letter, entry, opsc, run, seed, snapshot, xadd};
use opsc_events_cli as cli;
use opsc_events_testkit::RedisServer;

/// Options that take no value (nothing to get wrong but their spelling).
const FLAGS: &[&str] = &["json", "from_start", "dry_run", "verbose", "allow_writes"];

/// Where every error message sends the reader.
const RULES: &str = "docs/WIRE.md § Names and limits";

/// Where the errors about `id` send the reader: the console's own options are explained with
/// its security.
fn rules(id: &str) -> &'static str {
    match id {
        "listen" | "token" => "docs/OPERATIONS.md § Console",
        "database_url" => "docs/OPERATIONS.md § Outbox",
        _ => RULES,
    }
}

/// A password that must never be printed.
const SECRET: &str = "s3cret-pw";

/// Invalid values for the argument `id` (options and positionals share ids where they share a
/// parser), or `None` if the sweep does not know the argument.
fn invalid(id: &str) -> Option<Vec<String>> {
    let v = |xs: &[&str]| xs.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let mut values = match id {
        "redis" => v(&[
            "",
            "not a url",
            "http://127.0.0.1:6379",
            "redis://127.0.0.1:99999",
            "redis://127.0.0.1:6379/not-a-db",
        ]),
        // A readable file.
        "tls_ca" | "tls_cert" | "tls_key" | "password_file" | "lock" | "current" => {
            v(&["", "/nonexistent/opsc/file.pem", "/tmp"])
        }
        // Allowed: `A-Z a-z 0-9 _ . -`, 1 to 64 bytes.
        "prefix" => v(&["", "x y", "ops*", "ops:x", "{ops}", "préfix", "ops\n"]),
        // Allowed: `A-Z a-z 0-9 _ . -`, 1 to 64 bytes (`acl --user` follows the service rule).
        "service" | "user" => v(&["", "a b", "svc*", "svc:x", "{svc}", "sérvice", "svc\n"]),
        // Allowed: `a-z 0-9 _ -`, 1 to 64 bytes.
        "stream" | "publish" => v(&[
            "",
            "bad name*",
            "Assets",
            "a:b",
            "{pings}",
            "pings.v1",
            "ünï",
        ]),
        // Allowed: `A-Z a-z 0-9 _ . : -`, 1 to 128 bytes.
        "group" => v(&["", "a b", "svc.*", "g{x}", "grüppe", "svc/handler"]),
        "reason" => v(&["", "not_a_reason", "Timeout", "timeout ", "other", "*"]),
        "since" | "until" => v(&[
            "",
            "garbage-value",
            "-5m",
            "30x",
            "30M",
            "1.5h",
            "5 m",
            "m",
            "1700000000",
            "0",
            "99999999999999",
            "36501d",
            "99999999999999999999d",
        ]),
        // A whole number and a unit `ms`, `s`, `m`, `h`, `d`; 1ms to 36500d.
        "stale_after" => v(&[
            "",
            "0s",
            "0ms",
            "1",
            "h",
            "-1h",
            "1.5h",
            "1 h",
            "1H",
            "1us",
            "36501d",
            "99999999999999999999d",
        ]),
        "limit" | "count" | "scan" => v(&[
            "",
            "0",
            "-1",
            "+1",
            "abc",
            "1.5",
            "1e3",
            "99999999999999999999999",
        ]),
        // `latest`, `earliest` or an entry id.
        "to" => v(&["", "now", "LATEST", "latest ", "1-", "-1", "1-x", "$", "0"]),
        // An IP address and a port.
        "listen" => v(&[
            "",
            "localhost",
            "127.0.0.1",
            "127.0.0.1:99999",
            "localhost:8080",
            ":8080",
            "127.0.0.1:x",
        ]),
        // 13-digit milliseconds or a time from now.
        "due_after" | "due_before" => v(&["", "soon", "-5m", "30x", "1.5h", "1700000000", "5 m"]),
        // A UUID.
        "event_id" => v(&[
            "",
            "abc",
            "1-0",
            "0191c6d2-7b0e-7f3a-8c1e-5b8f2a9d4e6",
            "0191c6d2_7b0e_7f3a_8c1e_5b8f2a9d4e61x",
        ]),
        // `a-z 0-9 _ . -`, 1 to 128 bytes.
        "event_type" => v(&["", "Asset", "a b", "asset@1", "ässet"]),
        // postgres:// or postgresql://, a host, no spaces.
        "database_url" => v(&[
            "",
            "not a url",
            "mysql://127.0.0.1/app",
            "postgres://",
            "postgres:///app",
            "postgres://127.0.0.1/my app",
        ]),
        // 16 to 256 visible ASCII characters.
        "token" => v(&["", "short", "has spaces in it!!", "tøken-0123456789abc"]),
        "after" | "id" => v(&[
            "",
            "abc",
            "1",
            "1-",
            "-1",
            "1-2-3",
            "1-x",
            "+1-0",
            "99999999999999999999-0",
        ]),
        _ => return None,
    };
    // Too long for every name and every number.
    match id {
        "prefix" | "stream" | "publish" | "service" | "user" => values.push("a".repeat(65)),
        "group" => values.push("g".repeat(129)),
        "event_type" => values.push("t".repeat(129)),
        "limit" => values.push("1000001".to_owned()),
        "count" => values.push("1000000001".to_owned()),
        "scan" => values.push("10000001".to_owned()),
        "token" => values.push("t".repeat(257)),
        "redis" => values.push(format!("redis://:{SECRET}@127.0.0.1:notaport")),
        _ => {}
    }
    Some(values)
}

/// A valid value for a required argument (positional, or an option such as `acl --service`) that
/// is not the one under test.
fn valid(id: &str) -> &'static str {
    match id {
        "stream" => "pings",
        "service" => "svc",
        "group" => "svc.handler",
        "id" => "1-0",
        "to" => "latest",
        "database_url" => "postgres://postgres@127.0.0.1:5432/app",
        "event_id" => "0191c6d2-7b0e-7f3a-8c1e-5b8f2a9d4e61",
        "lock" | "current" => "/etc/passwd",
        other => panic!("the sweep has no valid value for the positional `{other}`"),
    }
}

/// A subcommand that runs something — a leaf, or one with options of its own besides its
/// subcommands (`groups [STREAM...]` next to `groups remove`): its path from the root and its
/// arguments, including the root's global options.
struct Leaf {
    path: Vec<String>,
    args: Vec<clap::Arg>,
}

fn leaves() -> Vec<Leaf> {
    fn walk(cmd: &clap::Command, path: Vec<String>, globals: &[clap::Arg], out: &mut Vec<Leaf>) {
        let subs: Vec<&clap::Command> = cmd.get_subcommands().collect();
        let own = cmd.get_arguments().any(|a| !a.is_global_set());
        if subs.is_empty() || (own && !path.is_empty()) {
            let mut args = globals.to_vec();
            args.extend(cmd.get_arguments().cloned());
            out.push(Leaf {
                path: path.clone(),
                args,
            });
        }
        for sub in subs {
            let mut p = path.clone();
            p.push(sub.get_name().to_owned());
            walk(sub, p, globals, out);
        }
    }
    let root = cli::command();
    let globals: Vec<clap::Arg> = root.get_arguments().cloned().collect();
    assert!(
        globals.iter().all(|a| a.is_global_set()),
        "every root option is global"
    );
    let mut out = Vec::new();
    walk(&root, Vec::new(), &globals, &mut out);
    out
}

fn takes_value(arg: &clap::Arg) -> bool {
    arg.get_num_args().is_none_or(|n| n.takes_values())
        && !matches!(
            arg.get_action(),
            clap::ArgAction::SetTrue
                | clap::ArgAction::SetFalse
                | clap::ArgAction::Count
                | clap::ArgAction::Help
                | clap::ArgAction::HelpShort
                | clap::ArgAction::HelpLong
                | clap::ArgAction::Version
        )
}

/// How clap names the argument in its errors: `--since`, `<STREAM>` or (optional) `[STREAM]`.
fn shown_name(arg: &clap::Arg) -> String {
    match arg.get_long() {
        Some(long) => format!("--{long}"),
        None => {
            let name = arg
                .get_value_names()
                .and_then(|n| n.first())
                .map_or_else(|| arg.get_id().as_str().to_uppercase(), |n| n.to_string());
            if arg.is_required_set() {
                format!("<{name}>")
            } else {
                format!("[{name}]")
            }
        }
    }
}

/// The command line for `leaf` with `bad` as the value of `arg`, every other required
/// positional valid: `--redis URL <path...> [--arg=bad] -- <positionals...>`.
fn argv(url: &str, leaf: &Leaf, arg: &clap::Arg, bad: &str) -> Vec<String> {
    let mut out = Vec::new();
    if arg.get_id() != "redis" {
        out.extend(["--redis".to_owned(), url.to_owned()]);
    }
    out.extend(leaf.path.iter().cloned());
    for o in leaf.args.iter().filter(|a| !a.is_positional()) {
        if o.is_required_set()
            && o.get_id() != arg.get_id()
            && let Some(long) = o.get_long()
        {
            out.push(format!("--{long}={}", valid(o.get_id().as_str())));
        }
    }
    if let Some(long) = arg.get_long() {
        out.push(format!("--{long}={bad}"));
    }
    out.push("--".to_owned());
    for p in leaf.args.iter().filter(|a| a.is_positional()) {
        if p.get_id() == arg.get_id() {
            out.push(bad.to_owned());
        } else if p.is_required_set() {
            out.push(valid(p.get_id().as_str()).to_owned());
        }
    }
    out
}

#[test]
fn every_option_has_invalid_values() {
    let mut missing = BTreeSet::new();
    for leaf in leaves() {
        for arg in &leaf.args {
            let id = arg.get_id().as_str();
            if FLAGS.contains(&id) {
                assert!(
                    !takes_value(arg),
                    "`{id}` is listed as a flag but takes a value"
                );
            } else if !takes_value(arg) {
                missing.insert(format!(
                    "{} --{id} (a flag: add it to FLAGS)",
                    leaf.path.join(" ")
                ));
            } else if invalid(id).is_none() {
                missing.insert(format!("{} {}", leaf.path.join(" "), shown_name(arg)));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the sweep has no invalid values for: {missing:?}"
    );
}

#[test]
fn every_command_says_what_it_does_with_an_example() {
    for leaf in leaves() {
        let mut cmd = cli::command();
        for p in &leaf.path {
            cmd = cmd
                .find_subcommand(p)
                .cloned()
                .unwrap_or_else(|| panic!("{p}"));
        }
        let name = leaf.path.join(" ");
        assert!(cmd.get_about().is_some(), "`opsc {name}` has no about");
        let help = cmd.render_help().to_string();
        assert!(
            help.contains(&format!("Example:\n  opsc {name}")),
            "`opsc {name} --help` shows no example:\n{help}"
        );
        for arg in &leaf.args {
            assert!(
                arg.get_help().is_some(),
                "`{}` of `opsc {name}` has no help",
                arg.get_id()
            );
        }
    }
}

/// Seeds two streams with entries, a group with pending entries, a retry schedule and dead
/// letters of several reasons.
fn seed_all(server: &RedisServer) {
    let (first, _) = seed(server);
    let mut c = conn(server);
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("svc.handler")
        .arg("c1")
        .arg("COUNT")
        .arg(2)
        .arg("STREAMS")
        .arg("opsconductor:{pings}:events")
        .arg(">")
        .query(&mut c)
        .expect("XREADGROUP");
    let _: i64 = redis::cmd("ZADD")
        .arg("opsconductor:{pings}:retry:svc.handler")
        .arg(1)
        .arg(&first)
        .query(&mut c)
        .expect("ZADD");
    let order = xadd(&mut c, "opsconductor:{orders}:events", &entry(7));
    for (reason, at) in [
        ("panic", 1_700_000_000_000),
        ("decode_error", 1_700_000_100_000),
    ] {
        dead_letter(&mut c, "orders", &order, "billing.charge", reason, at);
    }
}

#[test]
fn invalid_values_are_usage_errors_that_touch_nothing() {
    let server = RedisServer::start();
    seed_all(&server);
    let mut c = conn(&server);
    let keys = snapshot(&mut c);
    assert!(keys.len() >= 5, "seeded: {:?}", keys.keys());
    let accepted = connections(&mut c);
    let mut runs = 0;
    for leaf in leaves() {
        for arg in leaf.args.iter().filter(|a| takes_value(a)) {
            let id = arg.get_id().as_str();
            let values = invalid(id).unwrap_or_else(|| panic!("no invalid values for `{id}`"));
            for bad in values {
                let line = argv(&server.url(), &leaf, arg, &bad);
                let out = run(&line, &[]);
                runs += 1;
                let err = String::from_utf8_lossy(&out.stderr);
                let what = format!("`opsc {}`", line.join(" "));
                assert_eq!(out.status.code(), Some(2), "{what}: {err}");
                assert!(
                    err.contains(&shown_name(arg)),
                    "{what} does not name the argument: {err}"
                );
                assert!(
                    err.contains(rules(id)),
                    "{what} does not point to the rules: {err}"
                );
                assert!(!err.contains(SECRET), "{what} shows the password: {err}");
                assert!(
                    out.stdout.is_empty(),
                    "{what} printed: {}",
                    String::from_utf8_lossy(&out.stdout)
                );
                assert_eq!(connections(&mut c), accepted, "{what} connected to Redis");
                assert!(snapshot(&mut c) == keys, "{what} changed a key");
            }
            // The same line with a valid value parses: the errors above were about the values.
            let good = cli::command().try_get_matches_from(
                std::iter::once("opsc".to_owned()).chain(argv(
                    &server.url(),
                    &leaf,
                    arg,
                    good_value(id),
                )),
            );
            assert!(
                good.is_ok(),
                "{} {}: {:?}",
                leaf.path.join(" "),
                id,
                good.err()
            );
        }
    }
    assert!(runs > 200, "only {runs} runs");

    // The bad environment variable is as much a usage error as the option.
    let out = run(&["streams".to_owned()], &[("REDIS_URL", "not a url")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--redis"));
    assert_eq!(connections(&mut c), accepted);
    assert!(snapshot(&mut c) == keys);

    // The checks above can see a change: a valid purge connects and changes a key.
    let out = opsc(
        &server,
        &["dlq", "purge", "--stream", "orders", "--reason", "panic"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(connections(&mut c) > accepted);
    assert_ne!(snapshot(&mut c), keys);
}

/// A valid value for `id`, to show the sweep's command lines are otherwise well formed.
fn good_value(id: &str) -> &'static str {
    match id {
        "redis" => "redis://127.0.0.1:6379",
        "prefix" => "opsconductor",
        "stream" | "publish" => "pings",
        "service" | "user" => "svc",
        "group" => "svc.handler",
        "reason" => "timeout",
        "since" | "until" => "1700000000000",
        "limit" | "count" | "scan" => "10",
        "stale_after" => "1h",
        "tls_ca" | "tls_cert" | "tls_key" | "password_file" | "lock" | "current" => "/etc/passwd",
        "after" | "id" => "1-0",
        "listen" => "127.0.0.1:0",
        "token" => "0123456789abcdef-token",
        "to" => "earliest",
        "database_url" => "postgres://postgres@127.0.0.1:5432/app",
        "event_id" => "0191c6d2-7b0e-7f3a-8c1e-5b8f2a9d4e61",
        "due_after" | "due_before" => "2h",
        "event_type" => "asset_created",
        other => panic!("no valid value for `{other}`"),
    }
}

/// `opsc acl` prints the rules the library computes, from its arguments alone: it does not
/// connect, even to a reachable server; a line without any stream is a usage error.
#[test]
fn acl_prints_the_library_rules_without_connecting() {
    let server = RedisServer::start();
    let mut c = conn(&server);
    let accepted = connections(&mut c);
    let out = opsc(
        &server,
        &[
            "--prefix",
            "ops",
            "acl",
            "--service",
            "inventory",
            "--stream",
            "assets",
            "--publish",
            "audit",
            "--publish",
            "assets",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected =
        opsc_events_runtime::acl::rules("inventory", "ops", ["audit", "assets"], ["assets"])
            .expect("rules");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{expected}\n")
    );
    let out = opsc(
        &server,
        &[
            "acl",
            "--service",
            "web",
            "--user",
            "web-prod",
            "--publish",
            "orders",
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(v["user"], "web-prod");
    assert_eq!(
        v["keys"],
        serde_json::json!([
            "~opsconductor:{orders}:events",
            "~opsconductor:{schemas}:registry"
        ])
    );
    let out = opsc(&server, &["acl", "--service", "web"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--publish"));
    assert_eq!(connections(&mut c), accepted, "opsc acl connected to Redis");
}
