//! What the console tests share: a console served in the test's process against a Redis, and a
//! small HTTP/1.1 client (every request bounded in time) for the API and for WebDriver.

// Each test crate that includes this module uses a different part of it.
#![allow(dead_code)]

pub(crate) mod webdriver;

use std::net::SocketAddr;
use std::time::Duration;

use opsc_events_cli::console::{Console, ConsoleError, ConsoleOptions};
use opsc_events_runtime::Runtime;
use opsc_events_runtime::keys::Keys;
use opsc_events_testkit::RedisServer;

use crate::cli_support::{conn, dead_letter, entry, seed, xadd};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long one HTTP exchange may take.
pub(crate) const HTTP_DEADLINE: Duration = Duration::from_secs(30);

/// A console serving in this process; stopped (and its outcome checked) by [`Served::stop`].
pub(crate) struct Served {
    pub(crate) addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ConsoleError>>,
}

impl Served {
    /// Stops the server and fails the test if it had failed.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let outcome = tokio::time::timeout(HTTP_DEADLINE, &mut self.task)
            .await
            .expect("the console stops")
            .expect("the console task did not panic");
        outcome.expect("the console served without error");
    }

    pub(crate) fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A runtime without handlers on the Redis at `url`, prefix `opsconductor`.
pub(crate) async fn runtime(url: &str) -> Runtime {
    Runtime::builder()
        .service("console-test")
        .redis(url)
        .no_handlers()
        .build()
        .await
        .expect("runtime")
}

/// Serves a console with `options` on `127.0.0.1:0` for `rt`.
pub(crate) async fn serve(
    rt: Runtime,
    options: impl FnOnce(ConsoleOptions) -> ConsoleOptions,
) -> Served {
    serve_at(rt, "127.0.0.1:0".parse().expect("addr"), options).await
}

/// Serves a console with `options` on `listen` for `rt`.
pub(crate) async fn serve_at(
    rt: Runtime,
    listen: SocketAddr,
    options: impl FnOnce(ConsoleOptions) -> ConsoleOptions,
) -> Served {
    let opts = options(ConsoleOptions::new(listen));
    let console = Console::bind(rt, opts).await.expect("bind");
    let addr = console.local_addr();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(console.serve(async move {
        let _ = rx.await;
    }));
    Served {
        addr,
        stop: Some(tx),
        task,
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 exchange with `addr` (`Connection: close`); `headers` may override `Host`.
pub(crate) async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    tokio::time::timeout(HTTP_DEADLINE, exchange(addr, method, path, headers, body))
        .await
        .unwrap_or_else(|_| panic!("{method} {path} took longer than {HTTP_DEADLINE:?}"))
}

async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method == "POST" {
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            req.push_str("Content-Type: application/json\r\n");
        }
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.expect("send");
    // Read to the end of the answer: by its length when it has one (some servers keep the
    // connection open despite `Connection: close`), else to the end of the connection.
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = s.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if let Some(len) = length
                && raw.len() >= end + 4 + len
            {
                break;
            }
            if head.contains("transfer-encoding: chunked") && raw.ends_with(b"0\r\n\r\n") {
                break;
            }
        }
    }
    parse(&raw)
}

fn parse(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end: {}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&raw[..eol])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .expect("chunk size");
        if size == 0 {
            return out;
        }
        let start = eol + 2;
        out.extend_from_slice(&raw[start..start + size]);
        raw = &raw[start + size + 2..];
    }
}

/// `GET path` as JSON, status 200 required.
pub(crate) async fn get_json(addr: SocketAddr, path: &str) -> Value {
    let r = http(addr, "GET", path, &[], None).await;
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    r.json()
}

/// The CSRF token of the console at `addr`.
pub(crate) async fn csrf(addr: SocketAddr) -> String {
    get_json(addr, "/api/session").await["csrf"]
        .as_str()
        .expect("csrf")
        .to_owned()
}

/// `POST path` with `body` and the CSRF token, as the page sends it.
pub(crate) async fn post(addr: SocketAddr, path: &str, body: &Value) -> Reply {
    let token = csrf(addr).await;
    http(
        addr,
        "POST",
        path,
        &[("x-opsc-csrf", &token)],
        Some(&body.to_string()),
    )
    .await
}

/// Polls `check` until it returns `Some` (at most 20 s), every 50 ms.
pub(crate) async fn eventually<T, F, Fut>(mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the condition did not hold within 20s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

/// What [`seed_all`] wrote.
pub(crate) struct Seeded {
    /// The dead letter of `pings` (group `svc.handler`, reason `timeout`, failed long ago).
    pub(crate) pings_letter: String,
    /// The dead letters of `orders`: `panic` (now) and `handler_error` (two hours ago).
    pub(crate) orders_panic: String,
    pub(crate) orders_error: String,
}

/// `pings`: 3 entries, group `svc.handler` that read none (lag 3), one dead letter.
/// `orders`: 2 entries, group `billing.charge` whose consumer `c1` holds one (pending 1, lag 1),
/// two dead letters.
pub(crate) fn seed_all(server: &RedisServer) -> Seeded {
    let (_, pings_letter) = seed(server);
    let keys = Keys::new("opsconductor");
    let mut c = conn(server);
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(keys.events("orders"))
        .arg("billing.charge")
        .arg("0")
        .arg("MKSTREAM")
        .query(&mut c)
        .expect("XGROUP CREATE");
    let first = xadd(&mut c, &keys.events("orders"), &entry(10));
    xadd(&mut c, &keys.events("orders"), &entry(11));
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("billing.charge")
        .arg("c1")
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg(keys.events("orders"))
        .arg(">")
        .query(&mut c)
        .expect("XREADGROUP");
    let now = now_ms();
    let orders_error = dead_letter(
        &mut c,
        "orders",
        &first,
        "billing.charge",
        "handler_error",
        now - 7_200_000,
    );
    let orders_panic = dead_letter(&mut c, "orders", &first, "billing.charge", "panic", now);
    Seeded {
        pings_letter,
        orders_panic,
        orders_error,
    }
}

/// A console with writes allowed.
pub(crate) async fn writable(server: &RedisServer) -> Served {
    serve(runtime(&server.url()).await, |o| o.allow_writes(true)).await
}

pub(crate) fn stream<'a>(overview: &'a Value, name: &str) -> &'a Value {
    overview["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .find(|s| s["stream"] == name)
        .unwrap_or_else(|| panic!("no stream {name} in {overview}"))
}

pub(crate) fn group<'a>(stream: &'a Value, name: &str) -> &'a Value {
    stream["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["group"] == name)
        .unwrap_or_else(|| panic!("no group {name} in {stream}"))
}

pub(crate) fn letter_ids(v: &Value) -> Vec<String> {
    v["letters"]
        .as_array()
        .expect("letters")
        .iter()
        .map(|l| l["id"].as_str().expect("id").to_owned())
        .collect()
}
