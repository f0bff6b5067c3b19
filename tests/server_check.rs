//! `build()` checks the server before anything runs on it: a Redis older than 6.2 (no
//! `XAUTOCLAIM`) or one with a command the runtime needs renamed away is refused with a clear,
//! typed error naming what is missing — not discovered later, half-way through a settlement.

use opsc_events::prelude::*;
use opsc_events::{ConfigError, Error};
use opsc_events_testkit::{RedisServer, ServerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn problems(err: Error) -> Vec<String> {
    match err {
        Error::Config(ConfigError { problems }) => problems.iter().map(|p| p.to_string()).collect(),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_without_a_needed_command_is_refused_at_build() {
    let server = RedisServer::start_with(ServerOptions {
        extra: vec![("rename-command".into(), "XAUTOCLAIM \"\"".into())],
        ..ServerOptions::default()
    });
    let err = Runtime::builder()
        .service("check")
        .redis(server.url())
        .no_handlers()
        .build()
        .await
        .expect_err("XAUTOCLAIM is missing");
    let p = problems(err);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].contains("XAUTOCLAIM") && p[0].contains("cannot be used"),
        "{p:?}"
    );
    // The same server with every command is fine.
    let ok = RedisServer::start();
    Runtime::builder()
        .service("check")
        .redis(ok.url())
        .no_handlers()
        .build()
        .await
        .expect("a complete server");
}

/// A minimal RESP server that says it is Redis 6.0.9: `PING` → `PONG`, `INFO` → its version,
/// anything else → an error reply.
async fn old_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    // Commands are arrays of bulk strings; the first bulk string is the name.
                    while let Some((name, used)) = command(&buf) {
                        buf.drain(..used);
                        let reply: Vec<u8> = match name.to_ascii_uppercase().as_slice() {
                            b"PING" => b"+PONG\r\n".to_vec(),
                            b"INFO" => {
                                let body = "# Server\r\nredis_version:6.0.9\r\n";
                                format!("${}\r\n{body}\r\n", body.len()).into_bytes()
                            }
                            _ => b"-ERR unknown command\r\n".to_vec(),
                        };
                        if sock.write_all(&reply).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    port
}

/// The name of the first complete command in `buf` and the bytes it takes.
fn command(buf: &[u8]) -> Option<(Vec<u8>, usize)> {
    let line = |from: usize| -> Option<(&[u8], usize)> {
        let end = buf[from..].windows(2).position(|w| w == b"\r\n")? + from;
        Some((&buf[from..end], end + 2))
    };
    let (head, mut at) = line(0)?;
    let count: usize = std::str::from_utf8(head.strip_prefix(b"*")?)
        .ok()?
        .parse()
        .ok()?;
    let mut name = None;
    for _ in 0..count {
        let (len, next) = line(at)?;
        let len: usize = std::str::from_utf8(len.strip_prefix(b"$")?)
            .ok()?
            .parse()
            .ok()?;
        if buf.len() < next + len + 2 {
            return None;
        }
        name.get_or_insert_with(|| buf[next..next + len].to_vec());
        at = next + len + 2;
    }
    Some((name?, at))
}

#[tokio::test]
async fn a_server_older_than_6_2_is_refused_at_build() {
    let port = old_server().await;
    let err = Runtime::builder()
        .service("check")
        .redis(format!("redis://127.0.0.1:{port}"))
        .no_handlers()
        .build()
        .await
        .expect_err("6.0.9 is too old");
    let p = problems(err);
    assert!(
        p.iter()
            .any(|p| p.contains("6.0.9") && p.contains("too old") && p.contains("6.2.0")),
        "{p:?}"
    );
}
