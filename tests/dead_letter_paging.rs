//! Replay and purge work page by page: memory stays bounded however many letters match and
//! however large they are, and a pass only takes the letters that existed when it started.
//! One test per binary: it measures this process's peak memory (`VmHWM`).

mod common;

use std::time::Duration;

use opsc_events::prelude::*;
use opsc_events_testkit::RedisServer;

const LETTERS: usize = 40;
const SIZE: usize = 5 << 20;

/// Peak resident memory of this process, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM")
        * 1024
}

/// Writes `n` letters of `SIZE` bytes of data to the dead-letter stream of `paging`.
async fn write_letters(url: &str, n: usize) {
    let mut c = common::conn(url).await;
    let data = vec![b'd'; SIZE];
    for i in 0..n {
        let _: String = redis::cmd("XADD")
            .arg("opsconductor:{paging}:dead_letter")
            .arg("*")
            .arg("original_id")
            .arg(format!("1-{i}"))
            .arg("stream")
            .arg("paging")
            .arg("group")
            .arg("paging.g")
            .arg("reason")
            .arg("handler_error")
            .arg("error")
            .arg("no")
            .arg("attempts")
            .arg("1")
            .arg("data")
            .arg(&data[..])
            .query_async(&mut c)
            .await
            .expect("XADD");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_and_purge_page_through_large_letters_in_bounded_memory() {
    let server = RedisServer::start();
    let url = server.url();
    let rt = Runtime::builder()
        .service("paging")
        .redis(&url)
        .response_timeout(Duration::from_secs(30))
        .no_handlers()
        .build()
        .await
        .unwrap();
    let dl = rt.dead_letters();
    let all = || DeadLetterFilter::stream("paging");

    // A limit of 0 acts on nothing.
    write_letters(&url, 2).await;
    assert_eq!(dl.purge(&all().limit(0)).await.unwrap(), 0);
    assert_eq!(dl.replay(&all().limit(0)).await.unwrap(), 0);
    assert_eq!(dl.purge(&all()).await.unwrap(), 2);

    write_letters(&url, LETTERS).await;
    let total = (LETTERS * SIZE) as u64;
    let before = peak_rss();
    let replayed = dl.replay(&all()).await.unwrap();
    assert_eq!(replayed, LETTERS, "every letter replayed");
    let grew = peak_rss().saturating_sub(before);
    eprintln!(
        "replay of {LETTERS} letters of {} MB: peak memory grew by {} MB",
        SIZE >> 20,
        grew >> 20
    );
    assert!(
        grew < total / 2,
        "replay holds the letters page by page, not all {} MB at once (grew {} MB)",
        total >> 20,
        grew >> 20
    );

    write_letters(&url, LETTERS).await;
    let before = peak_rss();
    assert_eq!(dl.purge(&all()).await.unwrap(), LETTERS);
    let grew = peak_rss().saturating_sub(before);
    eprintln!("purge: peak memory grew by {} MB", grew >> 20);
    assert!(grew < total / 2, "purge grew {} MB", grew >> 20);
    assert!(dl.list(&all()).await.unwrap().is_empty());
}
