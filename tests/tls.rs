//! Production connections (issue: TLS, ACL users and secrets): `rediss://` with the test's own
//! CA and mutual TLS, the server's name checked against its certificate, and a password taken
//! from the environment or a file that never shows in a `Debug`, an error or a log line. (The
//! conformance suite runs every behaviour over TLS too: `conformance redis_tls::`.)

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use opsc_events::prelude::*;
use opsc_events::{ConfigError, Error};
use opsc_events_testkit::{RedisServer, ServerOptions};
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "tls_jobs")]
pub struct TlsJob {
    pub n: u64,
}

fn problems(err: Error) -> Vec<String> {
    match err {
        Error::Config(ConfigError { problems }) => problems.iter().map(|p| p.to_string()).collect(),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

fn publish_only(url: String) -> opsc_events::RuntimeBuilder {
    Runtime::builder().service("tls").redis(url).no_handlers()
}

#[tokio::test]
async fn tls_is_checked_and_mutual_tls_works() {
    let server = RedisServer::start_with(ServerOptions {
        tls: true,
        // Client certificates required.
        extra: vec![("tls-auth-clients".into(), "yes".into())],
        ..ServerOptions::default()
    });
    let tls = server.tls().unwrap().clone();

    // The test CA and a client certificate: publishes land.
    let rt = publish_only(server.tls_url())
        .tls_ca_file(&tls.ca)
        .tls_client_cert_files(&tls.client_cert, &tls.client_key)
        .build()
        .await
        .expect("mutual TLS");
    rt.publisher().publish(&TlsJob { n: 1 }).await.unwrap();
    assert_eq!(rt.stream_info("tls_jobs").await.unwrap().length, 1);

    // Without a client certificate the server refuses the handshake.
    let p = problems(
        publish_only(server.tls_url())
            .tls_ca_file(&tls.ca)
            .build()
            .await
            .expect_err("no client certificate"),
    );
    assert!(p[0].contains("cannot reach redis"), "{p:?}");

    // Without the test CA (system roots only) the server's certificate is not trusted.
    let p = problems(
        publish_only(server.tls_url())
            .tls_client_cert_files(&tls.client_cert, &tls.client_key)
            .build()
            .await
            .expect_err("an untrusted certificate"),
    );
    assert!(p[0].contains("cannot reach redis"), "{p:?}");

    // A name the certificate does not carry (127.0.0.2 reaches the same loopback server).
    let p = problems(
        publish_only(format!("rediss://127.0.0.2:{}", server.tls_port()))
            .tls_ca_file(&tls.ca)
            .tls_client_cert_files(&tls.client_cert, &tls.client_key)
            .build()
            .await
            .expect_err("the name is checked"),
    );
    assert!(p[0].contains("cannot reach redis"), "{p:?}");
}

#[tokio::test]
async fn tls_settings_that_cannot_work_are_config_problems() {
    let p = problems(
        publish_only("redis://127.0.0.1:1".into())
            .tls_ca_file("/nonexistent/ca.crt")
            .build()
            .await
            .unwrap_err(),
    );
    assert!(p.iter().any(|p| p.contains("not `rediss://`")), "{p:?}");
    let p = problems(
        publish_only("rediss://127.0.0.1:1".into())
            .tls_ca_file("/nonexistent/ca.crt")
            .build()
            .await
            .unwrap_err(),
    );
    assert!(p.iter().any(|p| p.contains("/nonexistent/ca.crt")), "{p:?}");
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The password comes from the environment or a file, works, and shows nowhere: not in the
/// builder's `Debug`, not in any error (`Display` and `Debug`) of a failed connect with a wrong
/// one (from the URL, the environment or a file), not in the logs at any level.
#[tokio::test]
async fn the_password_comes_from_env_or_file_and_never_shows() {
    const PASSWORD: &str = "s3cret-Pw-4e1f";
    const WRONG: &str = "wr0ng-Pw-9c2d";
    let captured = Captured::default();
    let sink = captured.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_writer(move || sink.clone())
        .init();
    let server = RedisServer::start_with(ServerOptions {
        extra: vec![("requirepass".into(), PASSWORD.into())],
        ..ServerOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let wrong_file = dir.path().join("wrong");
    std::fs::write(&wrong_file, WRONG).unwrap();
    // The environment source: cargo sets CARGO_PKG_NAME for the test process; a second server
    // takes that as its password (this test cannot set variables: no `unsafe` here).
    let env_server = RedisServer::start_with(ServerOptions {
        extra: vec![("requirepass".into(), env!("CARGO_PKG_NAME").into())],
        ..ServerOptions::default()
    });
    let mut seen = String::new();
    for b in [
        publish_only(env_server.url()).redis_password_env("CARGO_PKG_NAME"),
        publish_only(server.url()).redis_password_file(&file),
    ] {
        seen.push_str(&format!("{b:?}"));
        let rt = b.build().await.expect("the password works");
        rt.publisher().publish(&TlsJob { n: 2 }).await.unwrap();
        seen.push_str(&format!("{rt:?}"));
    }
    for b in [
        publish_only(format!("redis://:{WRONG}@127.0.0.1:{}", server.port())),
        publish_only(server.url()).redis_password_env("CARGO_PKG_NAME"),
        publish_only(server.url()).redis_password_file(&wrong_file),
        publish_only(server.url()).redis_password_env("OPSC_TEST_NO_SUCH_VARIABLE"),
    ] {
        seen.push_str(&format!("{b:?}"));
        let err = b.build().await.expect_err("a wrong password fails");
        seen.push_str(&format!("{err}\n{err:?}\n"));
    }
    seen.push_str(&String::from_utf8_lossy(&captured.0.lock().unwrap()));
    assert!(
        seen.contains("cannot reach redis"),
        "the failures were reported: {seen}"
    );
    for secret in [PASSWORD, WRONG] {
        assert!(!seen.contains(secret), "the password shows: {seen}");
    }
}
