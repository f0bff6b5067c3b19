//! The runtime's metrics reach Prometheus: `metrics-exporter-prometheus` installed with its HTTP
//! listener (as `examples/metrics.rs` does), a runtime publishing and handling events (handled,
//! retried, dead-lettered), and a scrape of `/metrics` over HTTP that finds every metric of
//! DESIGN.md § Metrics that this traffic produces, with its labels. The Grafana dashboard in
//! `docs/grafana-dashboard.json` is valid JSON and uses only metrics the runtime records.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use common::wait_until;
use metrics_exporter_prometheus::PrometheusBuilder;
use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "prom_orders")]
pub struct Order {
    pub n: u64,
}

/// n % 10 == 0 fails for good; n % 10 == 1 fails once; the others succeed.
#[handler(
    stream = "prom_orders",
    group = "prom.ship",
    retries = 2,
    backoff = "none"
)]
async fn ship(event: Order, ctx: Context) -> Result<(), HandlerError> {
    match event.n % 10 {
        0 => Err(HandlerError::permanent("never")),
        1 if ctx.attempt() == 1 => Err("once".into()),
        _ => Ok(()),
    }
}

fn scrape(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).expect("connect to the exporter");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut page = String::new();
    s.read_to_string(&mut page).expect("response");
    page
}

/// Every metric the traffic below must produce, with the labels each must carry.
const EXPECTED: &[(&str, &[&str])] = &[
    ("opsc_events_published_total", &["stream=\"prom_orders\""]),
    (
        "opsc_events_handled_total",
        &["stream=\"prom_orders\"", "group=\"prom.ship\""],
    ),
    (
        "opsc_events_failed_total",
        &[
            "stream=\"prom_orders\"",
            "group=\"prom.ship\"",
            "reason=\"handler_error\"",
        ],
    ),
    (
        "opsc_events_failed_total",
        &[
            "stream=\"prom_orders\"",
            "group=\"prom.ship\"",
            "reason=\"permanent\"",
        ],
    ),
    (
        "opsc_events_retried_total",
        &["stream=\"prom_orders\"", "group=\"prom.ship\""],
    ),
    (
        "opsc_events_dead_lettered_total",
        &[
            "stream=\"prom_orders\"",
            "group=\"prom.ship\"",
            "reason=\"permanent\"",
        ],
    ),
    (
        "opsc_events_handler_duration_seconds",
        &["stream=\"prom_orders\"", "group=\"prom.ship\""],
    ),
    (
        "opsc_events_lag",
        &["stream=\"prom_orders\"", "group=\"prom.ship\""],
    ),
    (
        "opsc_events_pending",
        &["stream=\"prom_orders\"", "group=\"prom.ship\""],
    ),
    (
        "opsc_events_scheduled",
        &["stream=\"prom_orders\"", "group=\"prom.ship\""],
    ),
    ("opsc_events_dead_letters", &["stream=\"prom_orders\""]),
];

fn has(page: &str, name: &str, labels: &[&str]) -> bool {
    page.lines().any(|l| {
        l.starts_with(name)
            && l[name.len()..].starts_with(['{', '_', ' '])
            && labels.iter().all(|label| l.contains(label))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_scrape_shows_the_documented_metrics_with_their_labels() {
    let addr = {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .expect("the exporter installs");
    let rt = Runtime::builder()
        .service("prom")
        .memory()
        .trim_interval(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    let publisher = rt.publisher();
    let running = common::spawn(rt);
    let orders: Vec<Order> = (0..30).map(|n| Order { n }).collect();
    publisher.publish_all(&orders).await.unwrap();
    let page = std::sync::Mutex::new(String::new());
    wait_until("every metric scraped", Duration::from_secs(20), || async {
        let p = tokio::task::spawn_blocking(move || scrape(addr))
            .await
            .unwrap();
        let ok = EXPECTED.iter().all(|(name, labels)| has(&p, name, labels))
            // 3 permanent failures dead-lettered; the gauge saw them.
            && p.lines().any(|l| l.starts_with("opsc_events_dead_letters{") && l.ends_with(" 3"));
        *page.lock().unwrap() = p;
        ok
    })
    .await;
    common::stop(running).await;
    let page = page.into_inner().unwrap();
    for (name, labels) in EXPECTED {
        assert!(
            has(&page, name, labels),
            "{name} {labels:?} missing:\n{page}"
        );
    }
}

/// The metric names DESIGN.md documents (§ Metrics and health).
fn documented() -> Vec<String> {
    let design = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/DESIGN.md"))
        .expect("DESIGN.md");
    let mut names: Vec<String> = design
        .split('`')
        .filter_map(|t| t.strip_prefix("opsc_events_"))
        .map(|t| format!("opsc_events_{}", t.split('{').next().unwrap_or(t)))
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn the_grafana_dashboard_is_valid_and_uses_documented_metrics_only() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/grafana-dashboard.json"
    ))
    .expect("the dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let documented = documented();
    let mut used = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        assert!(panel["title"].is_string(), "{panel}");
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            for token in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if let Some(name) = token.strip_prefix("opsc_events_").map(|_| token) {
                    let base = ["_bucket", "_sum", "_count"]
                        .iter()
                        .find_map(|s| name.strip_suffix(s))
                        .unwrap_or(name);
                    assert!(
                        documented.iter().any(|d| d == base),
                        "the dashboard uses `{name}`, which DESIGN.md does not document"
                    );
                    used.push(base.to_owned());
                }
            }
        }
    }
    for wanted in [
        "opsc_events_lag",
        "opsc_events_handled_total",
        "opsc_events_handler_duration_seconds",
        "opsc_events_retried_total",
        "opsc_events_dead_lettered_total",
    ] {
        assert!(used.iter().any(|u| u == wanted), "no panel shows {wanted}");
    }
}
