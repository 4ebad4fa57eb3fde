//! What the benchmarks share: what one scrape costs an exporter (CPU seconds, latency, peak RSS),
//! the directory a benchmark's Prometheus runs in, the table they print and their exit code.

use crate::hostproc;
use crate::http::{self, Connection};
use anyhow::{Context as _, Result, bail};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Scrapes before measuring: first-scrape caches, lazy statics and the TCP handshake.
const WARM_UP: usize = 5;

/// What `scrapes` sequential scrapes of one exporter cost.
#[derive(Clone, Debug)]
pub struct Measurement {
    pub name: String,
    pub scrapes: usize,
    /// utime + stime of the exporter process over all measured scrapes.
    pub cpu_seconds: f64,
    /// Per-scrape wall time, as the scraper saw it, sorted.
    pub latencies: Vec<Duration>,
    /// `VmHWM` at the end.
    pub peak_rss_bytes: u64,
    /// Size of the last body.
    pub body_bytes: usize,
    /// `Content-Type` of the last answer.
    pub content_type: String,
}

// === impl Measurement ===

impl Measurement {
    pub fn cpu_seconds_per_scrape(&self) -> f64 {
        self.cpu_seconds / self.scrapes.max(1) as f64
    }

    pub fn p50(&self) -> Duration {
        percentile(&self.latencies, 50.0)
    }

    pub fn p99(&self) -> Duration {
        percentile(&self.latencies, 99.0)
    }

    /// One line of `key=value` pairs that tests and scripts can parse.
    pub fn result_line(&self) -> String {
        format!(
            "result exporter={} scrapes={} cpu_seconds_per_scrape={:.9} p50_seconds={:.9} \
             p99_seconds={:.9} peak_rss_bytes={} body_bytes={}",
            self.name,
            self.scrapes,
            self.cpu_seconds_per_scrape(),
            self.p50().as_secs_f64(),
            self.p99().as_secs_f64(),
            self.peak_rss_bytes,
            self.body_bytes,
        )
    }
}

/// Scrapes `addr` `/metrics` `scrapes` times over one keep-alive connection, with Prometheus'
/// `Accept` header, and reads the cost from the host's /proc of `pid`. Every answer must be a 200
/// whose body contains `must_contain`.
pub fn measure(
    name: &str,
    pid: u32,
    addr: SocketAddr,
    scrapes: usize,
    must_contain: &str,
) -> Result<Measurement> {
    let mut connection = Connection::tcp(addr)?;
    let headers = [("Accept", http::PROMETHEUS_ACCEPT)];
    let mut scrape = || -> Result<http::Response> {
        let response = connection.get("/metrics", &headers)?;
        if response.status != 200 {
            bail!("{name} answered {}", response.status);
        }
        Ok(response)
    };
    for _ in 0..WARM_UP {
        scrape()?;
    }
    let mut latencies = Vec::with_capacity(scrapes);
    let cpu_before = hostproc::cpu_seconds(pid)?;
    let mut last = None;
    for _ in 0..scrapes {
        let start = Instant::now();
        let response = scrape()?;
        latencies.push(start.elapsed());
        last = Some(response);
    }
    let cpu_seconds = hostproc::cpu_seconds(pid)? - cpu_before;
    let last = last.context("no scrape was measured")?;
    let body = last.text();
    if !body.contains(must_contain) {
        bail!("{name} did not export {must_contain}:\n{body}");
    }
    latencies.sort();
    Ok(Measurement {
        name: name.to_owned(),
        scrapes,
        cpu_seconds,
        latencies,
        peak_rss_bytes: hostproc::status_bytes(pid, "VmHWM")?,
        body_bytes: last.body.len(),
        content_type: last.header("content-type").unwrap_or_default().to_owned(),
    })
}

/// Prints one row per `(count, measurement)` under a header whose first column is `what` (the
/// number of targets, VMs, ...): scrapes, body, p50, p99, CPU per scrape, peak RSS.
pub fn print_table(what: &str, rows: &[(usize, &Measurement)]) {
    println!();
    println!(
        "{what:>7} {:>7} {:>9} {:>9} {:>9} {:>15} {:>12}",
        "scrapes", "body_KiB", "p50_ms", "p99_ms", "cpu_ms/scrape", "peak_rss_MiB"
    );
    for (n, m) in rows {
        println!(
            "{:>7} {:>7} {:>9.0} {:>9.2} {:>9.2} {:>15.2} {:>12.1}",
            n,
            m.scrapes,
            m.body_bytes as f64 / 1024.0,
            m.p50().as_secs_f64() * 1e3,
            m.p99().as_secs_f64() * 1e3,
            m.cpu_seconds_per_scrape() * 1e3,
            m.peak_rss_bytes as f64 / (1024.0 * 1024.0),
        );
    }
}

/// Lays out `dir` for a Prometheus started there: `rules` (a PrometheusRule's spec) as
/// `rules.yaml`, and `config` as `prometheus.yml`, which names `rules.yaml`.
pub fn prometheus_dir(dir: &Path, rules: &Value, config: &str) -> Result<()> {
    std::fs::write(dir.join("rules.yaml"), serde_norway::to_string(rules)?)?;
    std::fs::write(dir.join("prometheus.yml"), config)?;
    Ok(())
}

/// A `prometheus.yml` that scrapes nothing and evaluates `rules.yaml` every `interval` seconds.
pub fn rules_only_config(interval: u64) -> String {
    format!("global:\n  evaluation_interval: {interval}s\nrule_files: [rules.yaml]\n")
}

/// The exit code of benchmark `name` that ran with `result`; prints the error chain on failure.
pub fn exit_code(name: &str, result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` prints the whole context chain on one line.
            eprintln!("{name}: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Nearest-rank percentile of sorted `values`; zero when empty.
pub fn percentile(sorted: &[Duration], pct: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (pct / 100.0 * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted.get(index).copied().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_millis(v)).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let hundred: Vec<u64> = (1..=100).collect();
        let values = ms(&hundred);
        assert_eq!(percentile(&values, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&values, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&values, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&ms(&[7]), 99.0), Duration::from_millis(7));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
        assert_eq!(percentile(&ms(&[1, 2]), 0.0), Duration::from_millis(1));
    }

    #[test]
    fn result_line_is_parseable() {
        let m = Measurement {
            name: "x".into(),
            scrapes: 2,
            cpu_seconds: 0.5,
            latencies: ms(&[1, 3]),
            peak_rss_bytes: 10,
            body_bytes: 4,
            content_type: String::new(),
        };
        let line = m.result_line();
        assert!(
            line.contains("exporter=x scrapes=2 cpu_seconds_per_scrape=0.250000000"),
            "{line}"
        );
        assert!(line.contains("p99_seconds=0.003000000"), "{line}");
    }
}
