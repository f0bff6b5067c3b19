//! Throughput, latency and memory of opsc-events against hand-written redis-rs loops, on one
//! private `redis-server` started for the run.
//!
//! ```sh
//! cargo bench --bench throughput                       # full run, a few minutes
//! OPSC_BENCH_QUICK=1 cargo bench --bench throughput    # quick run, a tenth of the sizes, not judged
//! OPSC_BENCH_ONLY=publish,e2e cargo bench --bench throughput
//! ```
//!
//! Run by `cargo test` (without `--bench`, as `cargo test --all-targets` does), it is a smoke
//! check: every scenario once with tiny sizes, no figure checked, a few seconds.
//!
//! Sections (`OPSC_BENCH_ONLY`, comma-separated): `redis-benchmark`, `publish`, `e2e`, `batch`, `big`,
//! `layout`, `latency`, `retry`, `dlq`, `rss`, `scale`, `trim`, `delayed`, `priority`. `OPSC_BENCH_REPS` sets how many times each throughput figure
//! is measured (default 5, 1 in quick mode). A framework figure is measured right after its
//! baseline in every repetition; the table shows the median rate and the median of the
//! per-repetition ratios, so that a slow spell of the machine hits both sides of a ratio.
//! Results are printed as a Markdown table; see BENCHMARKS.md for the method.

mod baseline;
mod delayed;
mod events;
mod framework;
mod peer;
mod priority;
mod report;
mod rss;
mod scale;
mod trim;

use std::sync::Arc;
use std::time::Instant;

use opsc_events_testkit::RedisServer;

use events::{Doomed, Flaky, Flowing, Published};
use framework::{Done, key};
use report::{Report, Sample, ms, sample};

/// How big a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Full,
    Quick,
    /// Under `cargo test`: checks that every scenario runs, measures nothing worth reading.
    Smoke,
}

/// Sizes of one run.
struct Config {
    mode: Mode,
    reps: usize,
    only: Option<Vec<String>>,
    /// Entries per publish measurement (pipelined, batched, concurrent).
    publish_n: usize,
    /// Entries for one-at-a-time publishing.
    sequential_n: usize,
    /// Backlog of the end-to-end measurement (100-byte payloads).
    e2e_n: usize,
    /// Entries with 4 KB payloads.
    big_n: usize,
    /// Seconds recorded per latency rate.
    latency_secs: f64,
    /// Entries of the retry and dead-letter measurements.
    failure_n: usize,
    /// Entries per stream of the memory scenario (10 streams).
    rss_per_stream: usize,
    /// Entries of the trimming scenario (a tenth of them scheduled for retry).
    trim_entries: usize,
    rss_secs: f64,
}

/// Pipeline depth of the hand-written publisher and batch size of `publish_all`.
const PUBLISH_BATCH: usize = 500;
/// `XREADGROUP COUNT` of the hand-written consumer: the framework's read batch (its `max_batch`,
/// the most entries one read asks for when enough slots are free).
const READ_COUNT: usize = 256;
/// The batch the SPEC's hand-written consume figure used, measured for context.
const SPEC_READ_COUNT: usize = 500;
/// Concurrent publishing tasks.
const TASKS: usize = 64;
const SMALL: usize = 100;
const BIG: usize = 4096;

impl Config {
    fn from_env() -> Config {
        let mode = if !std::env::args().any(|a| a == "--bench") {
            Mode::Smoke
        } else if std::env::var("OPSC_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0") {
            Mode::Quick
        } else {
            Mode::Full
        };
        let quick = mode != Mode::Full;
        let reps = std::env::var("OPSC_BENCH_REPS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if quick { 1 } else { 5 });
        let only = std::env::var("OPSC_BENCH_ONLY")
            .ok()
            .filter(|v| !v.is_empty())
            .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
        let k = match mode {
            Mode::Full => 1,
            Mode::Quick => 10,
            Mode::Smoke => 100,
        };
        Config {
            mode,
            reps: reps.max(1),
            only,
            publish_n: 200_000 / k,
            sequential_n: 20_000 / k,
            e2e_n: 200_000 / k,
            big_n: 50_000 / k,
            latency_secs: 10.0 / k as f64,
            failure_n: 50_000 / k,
            rss_per_stream: 100_000 / k,
            trim_entries: 1_000_000 / k,
            rss_secs: match mode {
                Mode::Full => 15.0,
                Mode::Quick => 3.0,
                Mode::Smoke => 1.0,
            },
        }
    }

    fn runs(&self, section: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|s| s == section))
    }
}

fn main() {
    match std::env::var("OPSC_BENCH_CHILD").as_deref() {
        Ok("rss") => return rss::child(),
        Ok("scale") => return scale::child(),
        _ => {}
    }
    let cfg = Config::from_env();
    let server = RedisServer::start();
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let started = Instant::now();
    let report = tokio.block_on(run(&cfg, &server));
    report.print();
    match cfg.mode {
        Mode::Smoke => println!(
            "\nsmoke check (`cargo test`): the figures mean nothing; run `cargo bench --bench throughput`"
        ),
        Mode::Quick => println!(
            "\nquick run: one repetition of a tenth of the sizes, too noisy to judge the targets; run `cargo bench --bench throughput`"
        ),
        Mode::Full => {}
    }
    println!(
        "\n{} run, {} repetition(s) per throughput figure (medians), {:.0} s in all",
        format!("{:?}", cfg.mode).to_lowercase(),
        cfg.reps,
        started.elapsed().as_secs_f64()
    );
}

async fn run(cfg: &Config, server: &RedisServer) -> Report {
    let url = server.url();
    let mut conn = baseline::conn(&url).await;
    let mut report = Report::default();
    report.smoke = cfg.mode != Mode::Full;
    println!(
        "opsc-events benchmark on redis-server port {} ({})",
        server.port(),
        format!("{:?}", cfg.mode).to_lowercase()
    );

    if cfg.runs("redis-benchmark") {
        println!("redis-benchmark (context):");
        let n = cfg.publish_n;
        for (label, pipeline) in [
            ("redis-benchmark XADD -P 64", 64),
            ("redis-benchmark XADD -c 50 -P 1", 1),
        ] {
            match baseline::redis_benchmark(server.port(), n, pipeline, 50) {
                Ok(v) => report.vs(
                    label,
                    &[Sample {
                        rate: v,
                        cpu_ns: f64::NAN,
                    }],
                    None,
                    None,
                ),
                Err(e) => report.row(label, "skipped".into(), &e),
            }
        }
        framework::del(&mut conn, &["rb:{bench}"]).await;
    }

    let publisher_rt = framework::runtime(&url, None, None).await;
    let publisher = publisher_rt.publisher();
    if cfg.runs("publish") {
        println!("publish, ~{SMALL} B payloads:");
        let k = key("bench_pub");
        // SPEC §10's baseline: the event's payload bytes alone in one field.
        let one_field = events::payload_fields(SMALL);
        let v2_fields = events::published_fields(SMALL);
        let events = Arc::new(Published::same(cfg.publish_n, SMALL));
        let seq_events = Published::same(cfg.sequential_n, SMALL);
        let peer_key = "peer:{bench_peer_pub}:events";
        let (mut bare, mut hand_v2, mut hand_conc, mut batched, mut conc, mut seq, mut peer) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        for _ in 0..cfg.reps {
            let n = cfg.publish_n;
            framework::del(&mut conn, &[&k]).await;
            bare.push(
                sample(
                    n,
                    baseline::pipelined_xadd(&mut conn, &k, &one_field, n, PUBLISH_BATCH),
                )
                .await,
            );
            framework::del(&mut conn, &[&k]).await;
            batched.push(
                sample(
                    n,
                    framework::publish_batched(&publisher, &events, PUBLISH_BATCH),
                )
                .await,
            );
            framework::del(&mut conn, &[&k]).await;
            conc.push(
                sample(
                    n,
                    framework::publish_concurrent(&publisher, events.clone(), TASKS),
                )
                .await,
            );
            framework::del(&mut conn, &[&k]).await;
            hand_v2.push(
                sample(
                    n,
                    baseline::pipelined_xadd(&mut conn, &k, &v2_fields, n, PUBLISH_BATCH),
                )
                .await,
            );
            framework::del(&mut conn, &[&k]).await;
            hand_conc.push(
                sample(
                    n,
                    baseline::concurrent_xadd(&conn, &k, &one_field, n, TASKS),
                )
                .await,
            );
            framework::del(&mut conn, &[&k]).await;
            seq.push(
                sample(
                    seq_events.len(),
                    framework::publish_sequential(&publisher, &seq_events),
                )
                .await,
            );
            framework::del(&mut conn, &[peer_key]).await;
            peer.push(sample(n, peer::publish(&url, peer_key, n, SMALL)).await);
        }
        framework::del(&mut conn, &[k.as_str(), peer_key]).await;
        report.vs(
            "hand-written: pipelined XADD, 500 deep, the payload in one field (100 B) — the baseline",
            &bare,
            None,
            None,
        );
        report.vs(
            "publish_all, batches of 500 (100 B)",
            &batched,
            Some(&bare),
            Some(0.8),
        );
        report.vs(
            "publish from 64 concurrent tasks (100 B)",
            &conc,
            Some(&bare),
            Some(0.8),
        );
        report.vs(
            "publish one at a time, awaited (100 B)",
            &seq,
            Some(&bare),
            None,
        );
        report.vs(
            "context — hand-written: the same loop writing v2 entries (header + payload)",
            &hand_v2,
            Some(&bare),
            None,
        );
        report.vs(
            "context — hand-written: 64 tasks, one XADD each in turn, one connection",
            &hand_conc,
            Some(&bare),
            None,
        );
        report.vs(
            "ruststream 0.7 + fred: publish, best settings (100 B)",
            &peer,
            Some(&bare),
            None,
        );
        report.vs(
            "publish_all compared with ruststream's publish",
            &batched,
            Some(&peer),
            None,
        );
    }

    if cfg.runs("e2e") {
        println!("end to end, ~{SMALL} B payloads, backlog of {}:", cfg.e2e_n);
        end_to_end(
            cfg,
            &url,
            &mut conn,
            &publisher,
            &mut report,
            SMALL,
            cfg.e2e_n,
        )
        .await;
    }

    if cfg.runs("batch") {
        println!(
            "batch handlers, ~{SMALL} B payloads, backlog of {}:",
            cfg.e2e_n
        );
        batch_handlers(cfg, &url, &mut conn, &publisher, &mut report, cfg.e2e_n).await;
    }

    if cfg.runs("big") {
        println!("4 KB payloads:");
        let k = key("bench_pub");
        let fields = events::payload_fields(BIG);
        let events = Published::same(cfg.big_n, BIG);
        let (mut hand, mut batched) = (vec![], vec![]);
        for _ in 0..cfg.reps {
            framework::del(&mut conn, &[&k]).await;
            let n = cfg.big_n;
            hand.push(
                sample(
                    n,
                    baseline::pipelined_xadd(&mut conn, &k, &fields, n, PUBLISH_BATCH),
                )
                .await,
            );
            framework::del(&mut conn, &[&k]).await;
            batched.push(
                sample(
                    n,
                    framework::publish_batched(&publisher, &events, PUBLISH_BATCH),
                )
                .await,
            );
        }
        framework::del(&mut conn, &[&k]).await;
        report.vs(
            "hand-written: pipelined XADD, 500 deep, the payload in one field (4 KB)",
            &hand,
            None,
            None,
        );
        report.vs(
            "publish_all, batches of 500 (4 KB)",
            &batched,
            Some(&hand),
            Some(0.8),
        );
        end_to_end(
            cfg,
            &url,
            &mut conn,
            &publisher,
            &mut report,
            BIG,
            cfg.big_n,
        )
        .await;
    }

    if cfg.runs("layout") {
        println!("wire layouts in the hand-written loop, ~{SMALL} B payloads:");
        layouts(cfg, &mut conn, &mut report).await;
    }

    if cfg.runs("latency") {
        println!(
            "latency publish → handler start ({:.0} s per rate):",
            cfg.latency_secs
        );
        for rate in [1_000u64, 5_000] {
            let s = framework::latency(&url, rate, cfg.latency_secs, SMALL).await;
            let q = |x| framework::quantile(&s, x);
            let target = if rate == 5_000 && cfg.mode != Mode::Full {
                "(judged in a full run only)".to_owned()
            } else if rate == 5_000 {
                let ok = q(0.5) < 1_000_000 && q(0.99) < 5_000_000;
                format!(
                    "p50 < 1 ms, p99 < 5 ms — {}",
                    if ok { "met" } else { "MISSED" }
                )
            } else {
                String::new()
            };
            report.row(
                &format!(
                    "latency at {} msg/s: p50 / p99 / p999 / max ({} samples)",
                    rate,
                    s.len()
                ),
                format!(
                    "{} / {} / {} / {}",
                    ms(q(0.5)),
                    ms(q(0.99)),
                    ms(q(0.999)),
                    ms(q(1.0))
                ),
                &target,
            );
        }
        framework::del(&mut conn, &[key("bench_lat")]).await;
    }

    if cfg.runs("retry") {
        println!(
            "retry path ({} entries, each fails once, backoff none):",
            cfg.failure_n
        );
        let (k, schedule) = (
            key("bench_retry"),
            "opsconductor:{bench_retry}:retry:bench.fails_once",
        );
        let events = Flaky::batch(cfg.failure_n, SMALL);
        let mut xs = vec![];
        for _ in 0..cfg.reps {
            framework::del(&mut conn, &[k.as_str(), schedule]).await;
            framework::publish_batched(&publisher, &events, PUBLISH_BATCH).await;
            xs.push(
                sample(
                    cfg.failure_n,
                    framework::consume(
                        &url,
                        &mut conn,
                        "bench_retry",
                        "::retry",
                        "bench.fails_once",
                        &events::retry::SUCCEEDED,
                        cfg.failure_n,
                        Done::RetriesEmpty(schedule),
                    ),
                )
                .await,
            );
        }
        framework::del(&mut conn, &[k.as_str(), schedule]).await;
        report.vs(
            "retry path: fail once, then succeed (100 B)",
            &xs,
            None,
            None,
        );
    }

    if cfg.runs("dlq") {
        println!(
            "dead-letter path ({} entries, permanent error):",
            cfg.failure_n
        );
        let (k, letters) = (
            key("bench_dlq"),
            "opsconductor:{bench_dlq}:dead_letter".to_owned(),
        );
        let events = Doomed::batch(cfg.failure_n, SMALL);
        let mut xs = vec![];
        for _ in 0..cfg.reps {
            framework::del(&mut conn, &[&k, &letters]).await;
            framework::publish_batched(&publisher, &events, PUBLISH_BATCH).await;
            xs.push(
                sample(
                    cfg.failure_n,
                    framework::consume(
                        &url,
                        &mut conn,
                        "bench_dlq",
                        "::dlq",
                        "bench.always_fails",
                        &events::dlq::CALLS,
                        cfg.failure_n,
                        Done::DeadLetters(&letters),
                    ),
                )
                .await,
            );
        }
        framework::del(&mut conn, &[&k, &letters]).await;
        report.vs("dead-letter path: permanent error (100 B)", &xs, None, None);
    }

    if cfg.runs("rss") {
        let backlog = cfg.rss_per_stream * events::RSS_STREAMS.len();
        println!(
            "memory: 100 handlers, backlog of {backlog}, {:.0} s:",
            cfg.rss_secs
        );
        match rss::measure(&url, &mut conn, cfg.rss_per_stream, cfg.rss_secs).await {
            Ok(r) => {
                let mb = r.vmhwm_kb as f64 / 1024.0;
                report.row(
                    &format!(
                        "peak RSS, {} handlers, backlog {backlog} ({} handled in {:.0} s)",
                        r.handlers, r.handled, r.secs
                    ),
                    format!("{mb:.1} MB"),
                    &if cfg.mode != Mode::Full {
                        "(judged in a full run only)".to_owned()
                    } else {
                        format!("< 64 MB — {}", if mb < 64.0 { "met" } else { "MISSED" })
                    },
                );
            }
            Err(e) => report.row("peak RSS", "failed".into(), &e),
        }
    }
    if cfg.runs("scale") {
        let total = cfg.e2e_n;
        println!("cost growth: {total} handler calls in all, with 1, 100 and 1,000 handlers:");
        for handlers in [1usize, 100, 1000] {
            match scale::measure(&url, &mut conn, handlers, total).await {
                Ok(r) => report.row(
                    &format!(
                        "{} handler(s) in one process: CPU per handled message, peak RSS, idle CPU ({} handled in {:.1} s)",
                        r.handlers, r.handled, r.secs
                    ),
                    format!(
                        "{:.2} µs / {:.1} MB / {:.1} % of a core",
                        r.cpu_ns_per_msg / 1000.0,
                        r.vmhwm_kb as f64 / 1024.0,
                        r.idle_cpu_pct
                    ),
                    "recorded (SPEC §10)",
                ),
                Err(e) => report.row(&format!("{handlers} handlers"), "failed".into(), &e),
            }
        }
    }
    if cfg.runs("delayed") {
        let (n, large) = (cfg.trim_entries / 10, cfg.trim_entries);
        println!("delayed events: {n} scheduled and moved, ticks over {large} scheduled:");
        match delayed::measure(&url, &mut conn, n, large).await {
            Ok(d) => {
                report.row(
                    &format!("delayed: publish_after, {n} events of ~100 B, 64 in flight"),
                    format!("{:.0} msg/s", d.scheduled_per_s),
                    "recorded",
                );
                report.row(
                    &format!("delayed: due events moved into the stream ({n}, 500 per tick)"),
                    format!("{:.0} msg/s", d.moved_per_s),
                    "recorded",
                );
                report.row(
                    &format!(
                        "delayed: one mover tick with nothing due, {} vs {} scheduled (median round trip)",
                        d.small, d.large
                    ),
                    format!("{} µs vs {} µs", d.tick_small_us, d.tick_large_us),
                    "independent of the schedule's size",
                );
            }
            Err(e) => report.row("delayed events", "failed".into(), &e),
        }
    }
    if cfg.runs("priority") {
        priority_section(cfg, &url, &mut conn, &publisher, &mut report).await;
    }
    if cfg.runs("trim") {
        let (entries, scheduled) = (cfg.trim_entries, cfg.trim_entries / 10);
        println!("trimming: {entries} entries, {scheduled} scheduled retries:");
        match trim::measure(&url, &mut conn, entries, scheduled).await {
            Ok(t) => {
                report.row(
                    &format!(
                        "trimming a {entries}-entry stream with {scheduled} scheduled retries: longest step blocking Redis ({} steps, {} entries trimmed, {:.1} ms in all)",
                        t.steps,
                        t.trimmed,
                        t.total_us as f64 / 1000.0
                    ),
                    format!("{:.1} ms", t.longest_us as f64 / 1000.0),
                    "bounded (recorded)",
                );
                report.row(
                    "for context: reading that group's whole retry schedule once (ZRANGE 0 -1)",
                    format!("{:.1} ms", t.schedule_scan_us as f64 / 1000.0),
                    "not done by trimming any more",
                );
            }
            Err(e) => report.row("trimming", "failed".into(), &e),
        }
    }
    report
}

/// Fills three streams with `n` entries of about `bytes` — the framework's events, the same
/// payloads alone in one field, and ruststream's entries — then measures in every repetition,
/// back to back: the hand-written consume loop, ruststream, and the framework's handler at
/// `concurrency = 64` and `concurrency = 1`, each from a new group.
async fn end_to_end(
    cfg: &Config,
    url: &str,
    conn: &mut redis::aio::MultiplexedConnection,
    publisher: &opsc_events::prelude::Publisher,
    report: &mut Report,
    bytes: usize,
    n: usize,
) {
    let (k, base_k, peer_k) = (
        key("bench_e2e"),
        key("bench_e2e_base"),
        "peer:{bench_peer_e2e}:events".to_owned(),
    );
    framework::del(conn, &[&k, &base_k, &peer_k]).await;
    let events = Flowing::same(n, bytes);
    framework::publish_batched(publisher, &events, PUBLISH_BATCH).await;
    drop(events);
    baseline::pipelined_xadd(
        conn,
        &base_k,
        &events::payload_fields(bytes),
        n,
        PUBLISH_BATCH,
    )
    .await;
    peer::fill(url, &peer_k, n, bytes).await;
    let (mut hand, mut spec, mut peer, mut peer_each, mut fw64, mut fw1) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for rep in 0..cfg.reps {
        hand.push(
            sample(
                n,
                baseline::consume_loop(conn, &base_k, "baseline", n, READ_COUNT),
            )
            .await,
        );
        fw64.push(
            sample(
                n,
                framework::consume(
                    url,
                    conn,
                    "bench_e2e",
                    "::e2e64",
                    "bench.noop64",
                    &events::e2e64::CALLS,
                    n,
                    Done::Acked,
                ),
            )
            .await,
        );
        fw1.push(
            sample(
                n,
                framework::consume(
                    url,
                    conn,
                    "bench_e2e",
                    "::e2e1",
                    "bench.noop1",
                    &events::e2e1::CALLS,
                    n,
                    Done::Acked,
                ),
            )
            .await,
        );
        peer_each.push(
            sample(
                n,
                peer::consume(url, &peer_k, &format!("peer_each{rep}"), n, 0),
            )
            .await,
        );
        peer.push(
            sample(
                n,
                peer::consume(url, &peer_k, &format!("peer{rep}"), n, peer::BATCH),
            )
            .await,
        );
        spec.push(
            sample(
                n,
                baseline::consume_loop(conn, &base_k, "baseline", n, SPEC_READ_COUNT),
            )
            .await,
        );
    }
    framework::del(conn, &[&k, &base_k, &peer_k]).await;
    let size = if bytes >= 1024 { "4 KB" } else { "100 B" };
    report.vs(
        &format!(
            "hand-written: XREADGROUP COUNT {READ_COUNT} + one XACK per batch, the payload in one field ({size}) — the baseline"
        ),
        &hand,
        None,
        None,
    );
    report.vs(
        &format!("end to end, concurrency = 64: backlog → no-op handler → ack ({size})"),
        &fw64,
        Some(&hand),
        Some(0.8),
    );
    report.vs(
        &format!("end to end, concurrency = 1 (the default) ({size})"),
        &fw1,
        Some(&hand),
        Some(0.5),
    );
    report.vs(
        &format!(
            "ruststream 0.7 + fred: consume + ack, its best (batch handler, {} per read, 4 workers, pipelined) ({size})",
            peer::BATCH
        ),
        &peer,
        Some(&hand),
        None,
    );
    report.vs(
        &format!("ruststream 0.7 + fred: per-message handler, 16 workers, pipelined ({size})"),
        &peer_each,
        Some(&hand),
        None,
    );
    report.vs(
        &format!("end to end, concurrency = 64, compared with ruststream's best ({size})"),
        &fw64,
        Some(&peer),
        Some(1.2),
    );
    report.vs(
        &format!(
            "end to end, concurrency = 64, compared with ruststream's per-message handler ({size})"
        ),
        &fw64,
        Some(&peer_each),
        None,
    );
    report.vs(
        &format!("context — hand-written: COUNT {SPEC_READ_COUNT} ({size})"),
        &spec,
        Some(&hand),
        None,
    );
}

/// Priority lanes: a critical event's wait behind a backlog of 100,000 low ones (p50 / p99 of
/// probes), and the end-to-end figure with lanes unused and with lanes in use but empty, each
/// against the hand-written consume loop measured just before it in the same repetition.
async fn priority_section(
    cfg: &Config,
    url: &str,
    conn: &mut redis::aio::MultiplexedConnection,
    publisher: &opsc_events::prelude::Publisher,
    report: &mut Report,
) {
    let backlog = cfg.e2e_n / 2;
    let probes = match cfg.mode {
        Mode::Full => 300,
        Mode::Quick => 100,
        Mode::Smoke => 5,
    };
    println!("priority: {probes} critical events behind {backlog} low ones:");
    match priority::critical_latency(url, conn, backlog, probes).await {
        Ok(r) => {
            let at = |q: f64| r.probes[((r.probes.len() - 1) as f64 * q) as usize];
            report.row(
                &format!(
                    "priority: publish → handler start of a critical event behind a backlog of {} low ones (handler: 1 ms, concurrency 8; {} probes; {} backlog events handled meanwhile, {} left)",
                    r.backlog,
                    r.probes.len(),
                    r.backlog_handled,
                    r.backlog_left
                ),
                format!("p50 {} / p99 {}", ms(at(0.5)), ms(at(0.99))),
                &format!(
                    "recorded (a normal event at the end of that backlog would wait ~{:.0} s)",
                    r.fifo_wait_s
                ),
            );
        }
        Err(e) => report.row("priority: critical behind a backlog", "failed".into(), &e),
    }
    let n = cfg.e2e_n;
    println!("priority: end to end with lanes unused and with lanes in use but empty ({n}):");
    let (k, base_k) = (key("bench_e2e"), key("bench_e2e_base"));
    framework::del(conn, &[&k, &base_k]).await;
    let events = Flowing::same(n, SMALL);
    framework::publish_batched(publisher, &events, PUBLISH_BATCH).await;
    drop(events);
    baseline::pipelined_xadd(
        conn,
        &base_k,
        &events::payload_fields(SMALL),
        n,
        PUBLISH_BATCH,
    )
    .await;
    let (mut hand, mut unused, mut hand2, mut idle) = (vec![], vec![], vec![], vec![]);
    for _ in 0..cfg.reps {
        hand.push(
            sample(
                n,
                baseline::consume_loop(conn, &base_k, "baseline", n, READ_COUNT),
            )
            .await,
        );
        unused.push(
            sample(
                n,
                framework::consume(
                    url,
                    conn,
                    "bench_e2e",
                    "::e2e64",
                    "bench.noop64",
                    &events::e2e64::CALLS,
                    n,
                    Done::Acked,
                ),
            )
            .await,
        );
        hand2.push(
            sample(
                n,
                baseline::consume_loop(conn, &base_k, "baseline", n, READ_COUNT),
            )
            .await,
        );
        idle.push(priority::unused_lanes_e2e(url, conn, publisher, n).await);
    }
    framework::del(conn, &[&k, &base_k]).await;
    report.vs(
        "priority: hand-written consume loop (100 B), this section's baseline",
        &hand,
        None,
        None,
    );
    report.vs(
        "priority: end to end, concurrency = 64, no priority set anywhere (lanes built in, unused)",
        &unused,
        Some(&hand),
        Some(0.8),
    );
    report.vs(
        "priority: end to end, concurrency = 64, lanes in use but empty (two lanes read, every call through the priority gate)",
        &idle,
        Some(&hand2),
        None,
    );
}

/// The candidate layouts of wire format v2 in the hand-written loops: publish and consume
/// rates of the same payload in each (`docs/DESIGN.md`, "wire format v2").
async fn layouts(cfg: &Config, conn: &mut redis::aio::MultiplexedConnection, report: &mut Report) {
    let k = key("bench_layout");
    let candidates = events::layout_candidates(SMALL);
    let n = cfg.e2e_n;
    let mut rates: Vec<(Vec<report::Sample>, Vec<report::Sample>)> =
        vec![(vec![], vec![]); candidates.len()];
    for _ in 0..cfg.reps {
        for (i, (_, fields)) in candidates.iter().enumerate() {
            framework::del(conn, &[&k]).await;
            rates[i].0.push(
                sample(
                    n,
                    baseline::pipelined_xadd(conn, &k, fields, n, PUBLISH_BATCH),
                )
                .await,
            );
            rates[i]
                .1
                .push(sample(n, baseline::consume_loop(conn, &k, "layout", n, READ_COUNT)).await);
        }
    }
    framework::del(conn, &[&k]).await;
    for (i, (label, fields)) in candidates.iter().enumerate() {
        let bytes: usize = fields.iter().map(|(k, v)| k.len() + v.len()).sum();
        let base = (i > 0).then_some(&rates[0]);
        report.vs(
            &format!("layout {label} ({bytes} B): publish"),
            &rates[i].0,
            base.map(|b| b.0.as_slice()),
            None,
        );
        report.vs(
            &format!("layout {label}: consume + ack"),
            &rates[i].1,
            base.map(|b| b.1.as_slice()),
            None,
        );
    }
}

/// Batch handlers, ours against ruststream's, same payload, same run: fills the framework's
/// stream, the hand-written loop's and ruststream's with `n` entries of ~100 B, then measures
/// in every repetition, back to back: the hand-written loop (the baseline), our no-op batch
/// handler (`batch = 500`, `concurrency` 1 and 4) and ruststream's batch handler in its best
/// setup (`peer::BATCH` = 500 per read, 4 workers, pipelined), each from a new group.
async fn batch_handlers(
    cfg: &Config,
    url: &str,
    conn: &mut redis::aio::MultiplexedConnection,
    publisher: &opsc_events::prelude::Publisher,
    report: &mut Report,
    n: usize,
) {
    let bytes = SMALL;
    let (k, base_k, peer_k) = (
        key("bench_e2e"),
        key("bench_e2e_base"),
        "peer:{bench_peer_e2e}:events".to_owned(),
    );
    framework::del(conn, &[&k, &base_k, &peer_k]).await;
    let events = Flowing::same(n, bytes);
    framework::publish_batched(publisher, &events, PUBLISH_BATCH).await;
    drop(events);
    baseline::pipelined_xadd(
        conn,
        &base_k,
        &events::payload_fields(bytes),
        n,
        PUBLISH_BATCH,
    )
    .await;
    peer::fill(url, &peer_k, n, bytes).await;
    let (mut hand, mut ours1, mut ours4, mut peer) = (vec![], vec![], vec![], vec![]);
    for rep in 0..cfg.reps {
        hand.push(
            sample(
                n,
                baseline::consume_loop(conn, &base_k, "baseline", n, READ_COUNT),
            )
            .await,
        );
        ours1.push(
            sample(
                n,
                framework::consume(
                    url,
                    conn,
                    "bench_e2e",
                    "::e2e_batch",
                    "bench.noop_batch1",
                    &events::e2e_batch::EVENTS,
                    n,
                    Done::Acked,
                ),
            )
            .await,
        );
        ours4.push(
            sample(
                n,
                framework::consume(
                    url,
                    conn,
                    "bench_e2e",
                    "::e2e_batch4",
                    "bench.noop_batch4",
                    &events::e2e_batch::EVENTS,
                    n,
                    Done::Acked,
                ),
            )
            .await,
        );
        peer.push(
            sample(
                n,
                peer::consume(url, &peer_k, &format!("peer_batch{rep}"), n, peer::BATCH),
            )
            .await,
        );
    }
    framework::del(conn, &[&k, &base_k, &peer_k]).await;
    report.vs(
        &format!(
            "hand-written: XREADGROUP COUNT {READ_COUNT} + one XACK per batch, the payload in one field (100 B) — the baseline"
        ),
        &hand,
        None,
        None,
    );
    report.vs(
        "batch handler, batch = 500, concurrency = 1: backlog → no-op → ack (100 B)",
        &ours1,
        Some(&hand),
        None,
    );
    report.vs(
        "batch handler, batch = 500, concurrency = 4 (100 B)",
        &ours4,
        Some(&hand),
        None,
    );
    report.vs(
        &format!(
            "ruststream 0.7 + fred: batch handler, {} per read, 4 workers, pipelined (100 B)",
            peer::BATCH
        ),
        &peer,
        Some(&hand),
        None,
    );
    report.vs(
        "batch handler, concurrency = 1, compared with ruststream's batch handler",
        &ours1,
        Some(&peer),
        None,
    );
    report.vs(
        "batch handler, concurrency = 4, compared with ruststream's batch handler",
        &ours4,
        Some(&peer),
        None,
    );
}
