//! Samples (throughput and the client's CPU time per message) and the result table.

use std::future::Future;
use std::time::Duration;

/// One measurement: messages per second, and CPU time the benchmark process (not Redis) spent
/// per message meanwhile, in all its threads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub rate: f64,
    pub cpu_ns: f64,
}

/// CPU time used so far by every thread of this process (`/proc/self/task/*/schedstat`, in ns).
pub fn cpu_time() -> Duration {
    let mut ns = 0u64;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
                ns += s
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    Duration::from_nanos(ns)
}

/// Runs `f`, which handles `n` messages and returns its rate, and samples the CPU time it took.
pub async fn sample(n: usize, f: impl Future<Output = f64>) -> Sample {
    let before = cpu_time();
    let rate = f.await;
    let cpu = cpu_time().saturating_sub(before);
    Sample {
        rate,
        cpu_ns: cpu.as_nanos() as f64 / n as f64,
    }
}

/// The median of `xs` (the mean of the middle two for an even count); NaN when empty.
pub fn median(xs: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = xs.into_iter().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// The median rate and the median CPU time per message of several samples.
pub fn middle(xs: &[Sample]) -> Sample {
    Sample {
        rate: median(xs.iter().map(|s| s.rate)),
        cpu_ns: median(xs.iter().map(|s| s.cpu_ns)),
    }
}

/// The median of the per-repetition ratios `xs[i] / base[i]` (samples of one repetition are
/// measured back to back, so a slow spell of the machine hits both).
pub fn ratio(xs: &[Sample], base: &[Sample]) -> f64 {
    if xs.len() == base.len() {
        median(xs.iter().zip(base).map(|(x, b)| x.rate / b.rate))
    } else {
        middle(xs).rate / middle(base).rate
    }
}

/// One line of the result table.
struct Row {
    scenario: String,
    result: String,
    cpu: String,
    baseline: String,
    ratio: String,
    target: String,
}

#[derive(Default)]
pub struct Report {
    rows: Vec<Row>,
    /// A smoke or quick run: targets are not judged (one repetition of small sizes is noise).
    pub smoke: bool,
}

pub fn rate(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0} k/s", v / 1000.0)
    } else {
        format!("{v:.0} /s")
    }
}

pub fn ms(ns: u64) -> String {
    format!("{:.2} ms", ns as f64 / 1e6)
}

fn cpu(s: &Sample) -> String {
    if s.cpu_ns.is_finite() && s.cpu_ns > 0.0 {
        format!("{:.2} µs", s.cpu_ns / 1000.0)
    } else {
        String::new()
    }
}

impl Report {
    /// A free-form row.
    pub fn row(&mut self, scenario: &str, result: String, target: &str) {
        println!("  {scenario}: {result}");
        self.rows.push(Row {
            scenario: scenario.to_owned(),
            result,
            cpu: String::new(),
            baseline: String::new(),
            ratio: String::new(),
            target: target.to_owned(),
        });
    }

    /// A throughput (the median of its repetitions), compared with a baseline (with its target
    /// ratio) when one is given.
    pub fn vs(
        &mut self,
        scenario: &str,
        xs: &[Sample],
        base: Option<&[Sample]>,
        target: Option<f64>,
    ) {
        let s = middle(xs);
        let (b, r, t) = match base {
            Some(base) => {
                let r = ratio(xs, base);
                let b = middle(base);
                let t = match target {
                    Some(_) if self.smoke => "(judged in a full run only)".to_owned(),
                    Some(t) if r >= t => format!("≥ {:.0} % — met", t * 100.0),
                    Some(t) => format!("≥ {:.0} % — MISSED", t * 100.0),
                    None => String::new(),
                };
                (rate(b.rate), format!("{:.0} %", r * 100.0), t)
            }
            None => (String::new(), String::new(), String::new()),
        };
        println!("  {scenario}: {} ({} CPU/msg)", rate(s.rate), cpu(&s));
        self.rows.push(Row {
            scenario: scenario.to_owned(),
            result: rate(s.rate),
            cpu: cpu(&s),
            baseline: b,
            ratio: r,
            target: t,
        });
    }

    pub fn print(&self) {
        println!();
        println!("| scenario | result | client CPU / msg | compared with | ratio | target |");
        println!("|---|---:|---:|---:|---:|---|");
        for r in &self.rows {
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                r.scenario, r.result, r.cpu, r.baseline, r.ratio, r.target
            );
        }
    }
}
