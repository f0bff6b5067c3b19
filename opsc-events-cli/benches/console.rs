//! How fast the console answers on a big system (BENCHMARKS.md § Console): 1 000 streams, each
//! with a consumer group and a few entries, and 100 000 dead letters, on a private
//! `redis-server`; the console serves in this process. Each request the page makes is timed
//! over repeated loads (p50 / p99 / max).
//!
//! ```sh
//! cargo bench -p opsc-events-cli --bench console
//! ```
//!
//! Run by `cargo test` (without `--bench`), it is a smoke check with tiny sizes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use opsc_events::prelude::*;
use opsc_events_cli::console::{Console, ConsoleOptions};
use opsc_events_runtime::keys::Keys;
use opsc_events_testkit::RedisServer;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PREFIX: &str = "opsconductor";

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "bench_console")]
struct OrderPlaced {
    order: u64,
    customer: String,
    total_cents: u64,
}

struct Sizes {
    streams: usize,
    entries_per_stream: usize,
    letters: usize,
    /// Streams that hold the dead letters (spread evenly).
    letter_streams: usize,
    loads: usize,
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = if full {
        Sizes {
            streams: 1000,
            entries_per_stream: 10,
            letters: 100_000,
            letter_streams: 20,
            loads: 50,
        }
    } else {
        Sizes {
            streams: 30,
            entries_per_stream: 2,
            letters: 300,
            letter_streams: 3,
            loads: 2,
        }
    };
    let server = RedisServer::start();
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    tokio.block_on(run(&server, &sizes));
    if !full {
        println!(
            "\nsmoke check (`cargo test`): run `cargo bench -p opsc-events-cli --bench console`"
        );
    }
}

/// The fields of one real entry, as the runtime writes them.
async fn one_entry(url: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let rt = Runtime::builder()
        .service("bench-seed")
        .prefix(PREFIX)
        .redis(url)
        .no_handlers()
        .build()
        .await
        .expect("runtime");
    rt.publisher()
        .publish(&OrderPlaced {
            order: 42,
            customer: "c-1042".to_owned(),
            total_cents: 12_990,
        })
        .await
        .expect("publish");
    let entries = rt.read("bench_console", None, 1).await.expect("read");
    let entry = entries.into_iter().next().expect("one entry");
    entry
        .fields
        .into_iter()
        .map(|(k, v)| (k.into_bytes(), v))
        .collect()
}

async fn seed(server: &RedisServer, sizes: &Sizes) -> String {
    let fields = one_entry(&server.url()).await;
    let keys = Keys::new(PREFIX);
    let client = redis::Client::open(server.url()).expect("client");
    let mut c = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let mut first_letter_stream = String::new();
    for chunk in (0..sizes.streams).collect::<Vec<_>>().chunks(100) {
        let mut p = redis::pipe();
        for i in chunk {
            let key = keys.events(&format!("s{i:04}"));
            p.cmd("XGROUP")
                .arg("CREATE")
                .arg(&key)
                .arg("svc.handler")
                .arg("0")
                .arg("MKSTREAM")
                .ignore();
            for _ in 0..sizes.entries_per_stream {
                let mut x = redis::cmd("XADD");
                x.arg(&key).arg("*");
                for (k, v) in &fields {
                    x.arg(k).arg(v);
                }
                p.add_command(x).ignore();
            }
        }
        let () = p.query_async(&mut c).await.expect("seed streams");
    }
    let reasons = ["timeout", "panic", "handler_error", "decode_error"];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis();
    let per_stream = sizes.letters / sizes.letter_streams;
    for s in 0..sizes.letter_streams {
        let stream = format!("s{s:04}");
        if s == 0 {
            first_letter_stream.clone_from(&stream);
        }
        let dead = keys.dead_letter(&stream);
        for chunk in (0..per_stream).collect::<Vec<_>>().chunks(2000) {
            let mut p = redis::pipe();
            for n in chunk {
                let mut x = redis::cmd("XADD");
                x.arg(&dead).arg("*");
                for (k, v) in &fields {
                    x.arg(k).arg(v);
                }
                let failed_at = now - (per_stream - n) as u128 * 1000;
                for (k, v) in [
                    ("original_id", format!("1700000000000-{n}")),
                    ("stream", stream.clone()),
                    ("group", "svc.handler".to_owned()),
                    ("handler", "svc::handler".to_owned()),
                    ("reason", reasons[n % reasons.len()].to_owned()),
                    ("error", "upstream answered 503".to_owned()),
                    ("attempts", "4".to_owned()),
                    ("first_failed_at", (failed_at - 5000).to_string()),
                    ("failed_at", failed_at.to_string()),
                    ("replays", "0".to_owned()),
                ] {
                    x.arg(k).arg(v);
                }
                p.add_command(x).ignore();
            }
            let () = p.query_async(&mut c).await.expect("seed letters");
        }
    }
    first_letter_stream
}

async fn run(server: &RedisServer, sizes: &Sizes) {
    let started = Instant::now();
    let letter_stream = seed(server, sizes).await;
    println!(
        "seeded {} streams ({} entries each, one group each) and {} dead letters in {} streams in {:.1} s",
        sizes.streams,
        sizes.entries_per_stream,
        sizes.letters,
        sizes.letter_streams,
        started.elapsed().as_secs_f64()
    );
    let rt = Runtime::builder()
        .service("console-bench")
        .prefix(PREFIX)
        .redis(server.url())
        .no_handlers()
        .build()
        .await
        .expect("runtime");
    let console = Console::bind(
        rt,
        ConsoleOptions::new("127.0.0.1:0".parse().expect("addr")),
    )
    .await
    .expect("bind");
    let addr = console.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(console.serve(async move {
        let _ = stopped.await;
    }));

    // What the page asks for, view by view.
    let requests: Vec<(&str, String)> = vec![
        ("page (index.html)", "/".to_owned()),
        ("script (app.js)", "/assets/app.js".to_owned()),
        ("session", "/api/session".to_owned()),
        (
            "overview, first page (100 streams)",
            "/api/overview".to_owned(),
        ),
        (
            "overview, last page",
            format!("/api/overview?offset={}", sizes.streams.saturating_sub(100)),
        ),
        ("stream names (pickers)", "/api/streams".to_owned()),
        (
            "a stream's newest entries",
            format!("/api/streams/{letter_stream}/entries"),
        ),
        (
            "dead letters, first page (every stream)",
            "/api/dead-letters".to_owned(),
        ),
        (
            "dead letters of one stream, reason filter",
            format!("/api/dead-letters?stream={letter_stream}&reason=panic"),
        ),
        (
            "dead letters, older than an hour",
            format!(
                "/api/dead-letters?until={}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("clock")
                    .as_millis()
                    - 3_600_000
            ),
        ),
        ("groups, first page (100 streams)", "/api/groups".to_owned()),
    ];
    println!("\n| request | answer | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|");
    for (what, path) in &requests {
        let mut times = Vec::with_capacity(sizes.loads);
        let mut bytes = 0;
        for _ in 0..sizes.loads {
            let t = Instant::now();
            let (status, body) = get(addr, path).await;
            times.push(t.elapsed());
            assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
            bytes = body.len();
        }
        times.sort();
        println!(
            "| {what} `{path}` | {} | {} | {} | {} |",
            human(bytes),
            ms(pct(&times, 50)),
            ms(pct(&times, 99)),
            ms(*times.last().expect("times"))
        );
    }
    let _ = stop.send(());
    serving
        .await
        .expect("console task")
        .expect("console served");
}

fn pct(sorted: &[Duration], p: usize) -> Duration {
    let i = (sorted.len() * p).div_ceil(100).saturating_sub(1);
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn human(bytes: usize) -> String {
    if bytes >= 10 * 1024 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}

/// One `GET` over a fresh connection (as a browser's first request); status and body.
async fn get(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(120), s.read_to_end(&mut raw))
        .await
        .expect("an answer within two minutes")
        .expect("read");
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let status = String::from_utf8_lossy(&raw[..end])
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, raw[end + 4..].to_vec())
}
