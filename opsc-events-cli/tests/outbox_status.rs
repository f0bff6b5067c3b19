//! `opsc outbox status`: the outbox's backlog per stream, read from the service's PostgreSQL
//! database (a database of its own, created and dropped by the test).

#![allow(unreachable_pub, clippy::unwrap_used, missing_debug_implementations)]

mod cli_support;
#[path = "../../opsc-events-postgres/tests/common/mod.rs"]
mod common;

use common::TestDb;
use opsc_events::prelude::*;
use opsc_events_postgres::Outbox;
use opsc_events_testkit::RedisServer;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "cli-outbox", name = "cli_outbox_staged", version = 1)]
struct Staged {
    n: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opsc_outbox_status_prints_the_unsent_rows_per_stream() {
    let db = TestDb::create().await;
    let server = RedisServer::start();
    let outbox = Outbox::new("cli");
    let mut tx = db.pool.begin().await.unwrap();
    outbox
        .stage_all(
            &mut tx,
            &[Staged { n: 1 }, Staged { n: 2 }, Staged { n: 3 }],
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let url = db.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        cli_support::opsc(&server, &["outbox", "status", "--database-url", &url])
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("cli-outbox"))
        .unwrap_or_else(|| panic!("no line for the stream in:\n{text}"))
        .split_whitespace()
        .collect();
    assert_eq!(line[1], "3", "three unsent rows:\n{text}");

    let bad = tokio::task::spawn_blocking(|| {
        cli_support::run(
            &[
                "--redis".to_owned(),
                "redis://127.0.0.1:1".to_owned(),
                "outbox".to_owned(),
                "status".to_owned(),
                "--database-url".to_owned(),
                "postgres://postgres:hunter2@127.0.0.1:1/none".to_owned(),
            ],
            &[],
        )
    })
    .await
    .unwrap();
    assert_ne!(bad.status.code(), Some(0));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&bad.stdout),
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(
        !all.contains("hunter2"),
        "the password is never printed: {all}"
    );
}
