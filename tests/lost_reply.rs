//! A read whose reply is lost (the connection drops half-way through it) must not burn an
//! attempt: the entries Redis delivered to the consumer are taken back from its own pending list
//! after the reconnect and run as first attempts — not left for a reclaim that would count the
//! lost read (with `retries = 0` that was a `crashed` dead letter without the handler ever
//! running). A TCP proxy in the test forwards to a private redis-server and, when told to, cuts
//! the connection in the middle of the next `XREADGROUP` reply that carries entries.

mod common;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use common::wait_until;
use opsc_events::prelude::*;
use opsc_events_testkit::RedisServer;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(name = "lost.job", version = 1, stream = "lost_jobs")]
pub struct Job {
    pub n: u32,
}

/// `(n, attempt)` of every call.
static CALLS: Mutex<Vec<(u32, u32)>> = Mutex::new(Vec::new());

pub mod once {
    use super::*;

    #[handler(
        stream = "lost_jobs",
        group = "lost.once",
        retries = 0,
        timeout = "1s",
        claim_after = "2s"
    )]
    pub async fn once(event: Job, ctx: Context) -> Result<(), HandlerError> {
        CALLS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((event.n, ctx.attempt()));
        Ok(())
    }
}

/// Forwards every connection to `upstream`; while `cut` is set, the next reply of at least
/// 64 bytes that follows an `XREADGROUP` command is forwarded only half-way, then both sides
/// are closed (and `cut` cleared, `cuts` counted).
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    cuts: Arc<AtomicU32>,
}

impl Proxy {
    async fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicU32::new(0));
        let (c, n) = (cut.clone(), cuts.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    continue;
                };
                tokio::spawn(pipe(client, server, c.clone(), n.clone()));
            }
        });
        Proxy { port, cut, cuts }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

async fn pipe(client: TcpStream, server: TcpStream, cut: Arc<AtomicBool>, cuts: Arc<AtomicU32>) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let read_sent = Arc::new(AtomicBool::new(false));
    let sent = read_sent.clone();
    let up = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let chunk = &buf[..n];
            let is_read = chunk
                .windows(10)
                .any(|w| w.eq_ignore_ascii_case(b"XREADGROUP"));
            sent.store(is_read, Ordering::SeqCst);
            if sw.write_all(chunk).await.is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match sr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if n >= 64 && read_sent.load(Ordering::SeqCst) && cut.swap(false, Ordering::SeqCst) {
            let _ = cw.write_all(&buf[..n / 2]).await;
            cuts.fetch_add(1, Ordering::SeqCst);
            break;
        }
        if cw.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    up.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_read_reply_costs_no_attempt_and_nothing_waits_for_a_reclaim() {
    common::init_tracing();
    let server = RedisServer::start();
    let proxy = Proxy::start(server.port()).await;
    let rt = Runtime::builder()
        .service("lost")
        .redis(proxy.url())
        .shutdown_timeout(Duration::from_secs(2))
        .only(|h| h.module_path().ends_with("::once"))
        .build()
        .await
        .unwrap();
    let health = rt.health();
    let direct = Runtime::builder()
        .service("lost")
        .redis(server.url())
        .no_handlers()
        .build()
        .await
        .unwrap();
    let running = common::spawn(rt);
    wait_until("the consumer reads", Duration::from_secs(10), || async {
        health.check().await.healthy
    })
    .await;
    proxy.cut.store(true, Ordering::SeqCst);
    let jobs: Vec<Job> = (0..20).map(|n| Job { n }).collect();
    direct.publisher().publish_all(&jobs).await.unwrap();
    wait_until("every job handled", Duration::from_secs(15), || async {
        CALLS.lock().unwrap().len() >= 20
    })
    .await;
    assert_eq!(proxy.cuts.load(Ordering::SeqCst), 1, "a reply was cut");
    let letters = direct
        .dead_letters()
        .list(&DeadLetterFilter::stream("lost_jobs"))
        .await
        .unwrap();
    assert!(letters.is_empty(), "nothing dead-lettered: {letters:?}");
    let calls = CALLS.lock().unwrap().clone();
    let mut ns: Vec<u32> = calls.iter().map(|c| c.0).collect();
    ns.sort_unstable();
    assert_eq!(ns, (0..20).collect::<Vec<_>>(), "each job once");
    assert!(
        calls.iter().all(|c| c.1 == 1),
        "every call is a first attempt: {calls:?}"
    );
    common::stop(running).await;
}
