//! `opsc console` as operators start it: the address it prints, the token rule for addresses
//! that are not loopback, and the audit log of writes on stderr.

mod cli_support;
mod console_support;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use cli_support::{DEADLINE, opsc};
use console_support::{get_json, http, seed_all};
use opsc_events_testkit::RedisServer;
use serde_json::json;

/// `opsc console ...` running, killed on drop.
struct Running {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `opsc --redis <server> console <args>` and waits (bounded) for its address line.
fn start(server: &RedisServer, args: &[&str], env: &[(&str, &str)]) -> Running {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_opsc"));
    cmd.args(["--redis", &server.url(), "console"])
        .args(args)
        .env_remove("OPSC_CONSOLE_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start opsc console");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = match rx.recv_timeout(DEADLINE) {
        Ok(line) => line,
        Err(_) => {
            let _ = child.kill();
            panic!("`opsc console` printed no address within {DEADLINE:?}");
        }
    };
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    Running { child, addr }
}

#[test]
fn an_address_that_is_not_loopback_without_a_token_is_refused() {
    let server = RedisServer::start();
    let out = opsc(&server, &["console", "--listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--token") && err.contains("OPSC_CONSOLE_TOKEN"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_comes_from_the_environment_and_is_never_printed() {
    let server = RedisServer::start();
    let token = "env-token-0123456789";
    let mut running = start(
        &server,
        &["--listen", "0.0.0.0:0"],
        &[("OPSC_CONSOLE_TOKEN", token)],
    );
    let addr: SocketAddr = ([127, 0, 0, 1], running.addr.port()).into();
    assert_eq!(
        http(addr, "GET", "/api/session", &[], None).await.status,
        401
    );
    let ok = http(
        addr,
        "GET",
        "/api/session",
        &[("Authorization", &format!("Bearer {token}"))],
        None,
    )
    .await;
    assert_eq!(ok.status, 200);
    assert!(!ok.text().contains(token));
    let _ = running.child.kill();
    let mut err = String::new();
    if let Some(mut e) = running.child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(!err.contains(token), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_write_is_logged_with_who_and_what() {
    let server = RedisServer::start();
    let s = seed_all(&server);
    let mut running = start(&server, &["--listen", "127.0.0.1:0", "--allow-writes"], &[]);
    let a = running.addr;
    let session = get_json(a, "/api/session").await;
    assert_eq!(session["writes"], true);
    let csrf = session["csrf"].as_str().expect("csrf").to_owned();
    let body = json!({ "stream": "orders", "ids": [s.orders_panic] }).to_string();
    let refused = http(a, "POST", "/api/dead-letters/replay", &[], Some(&body)).await;
    assert_eq!(refused.status, 403);
    let done = http(
        a,
        "POST",
        "/api/dead-letters/replay",
        &[("x-opsc-csrf", &csrf)],
        Some(&body),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(done.json()["count"], 1);
    let _ = running.child.kill();
    let _ = running.child.wait();
    let mut err = String::new();
    if let Some(mut e) = running.child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let logged = err
        .lines()
        .find(|l| l.contains("dead letters replayed"))
        .unwrap_or_else(|| panic!("no audit line for the replay: {err}"));
    assert!(logged.contains("opsc::console::audit"), "{logged}");
    assert!(
        logged.contains("127.0.0.1") && logged.contains("loopback"),
        "who: {logged}"
    );
    assert!(
        logged.contains(&s.orders_panic) && logged.contains("count=1"),
        "what: {logged}"
    );
    assert!(
        err.contains("write refused"),
        "the refused write is logged too: {err}"
    );
    assert!(!err.contains(&csrf), "the CSRF token is not logged: {err}");
}

#[test]
fn help_lists_the_console_with_the_other_commands() {
    let out = cli_support::run(&["--help".to_owned()], &[]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for want in [
        "Operate opsc-events streams in Redis",
        "console",
        "dlq",
        "groups",
        "Example:",
    ] {
        assert!(help.contains(want), "`{want}` in {help}");
    }
    let out = cli_support::run(&["console".to_owned(), "--help".to_owned()], &[]);
    let help = String::from_utf8_lossy(&out.stdout);
    for want in [
        "--listen",
        "--token",
        "--allow-writes",
        "OPSC_CONSOLE_TOKEN",
        "Example:",
    ] {
        assert!(help.contains(want), "`{want}` in {help}");
    }
}
