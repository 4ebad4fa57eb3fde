//! Benchmark: what a scrape costs `kube-metrics-collector` and Debian's
//! `prometheus-process-exporter`, both watching the same fake virt-launcher pod (10 processes,
//! about 100 threads) from inside its PID namespace.
//!
//! `cargo run --release -p e2e --bin bench-sidecar` (root). Not a timed test: it prints numbers.

use anyhow::{Context as _, Result};
use clap::Parser;
use e2e::bench::{self, Measurement};
use e2e::collector::Collector;
use e2e::launcher;
use e2e::pod::{FakePod, PodInfo};
use e2e::process_exporter::ProcessExporter;
use std::process::ExitCode;

/// Compares the per-scrape cost of the collector with prometheus-process-exporter.
#[derive(Debug, Parser)]
#[command(name = "bench-sidecar")]
struct Args {
    /// Sequential scrapes of each exporter.
    #[arg(long, default_value_t = 500)]
    scrapes: usize,

    /// A few scrapes only: shows the benchmark works, measures nothing meaningful.
    #[arg(long)]
    quick: bool,
}

/// Scrapes in `--quick` mode.
const QUICK_SCRAPES: usize = 20;

fn main() -> ExitCode {
    bench::exit_code("bench-sidecar", run(Args::parse()))
}

fn run(args: Args) -> Result<()> {
    e2e::preflight(&["unshare", "nsenter", "prometheus-process-exporter"])?;
    let scrapes = if args.quick {
        QUICK_SCRAPES
    } else {
        args.scrapes
    };
    let specs = launcher::bench_processes("bench", "bench-vm");
    let pod = FakePod::with_processes(&PodInfo::launcher("bench-vm", 0), specs)?;
    let processes = pod.specs().count();
    let threads: usize = pod.specs().map(|s| s.thread_count()).sum();
    let groups: Vec<(String, String)> = pod
        .specs()
        .map(|s| {
            (
                s.key.clone(),
                basename(s.argv.first().map_or("", String::as_str)),
            )
        })
        .collect();

    // Both run with their defaults, except that the collector reads /proc on every scrape
    // instead of answering from its 1 s cache, so both do the same work per scrape.
    let collector = Collector::start(&pod, &["--min-interval-ms", "0"])?;
    let exporter = ProcessExporter::start(&pod, &groups)?;
    println!(
        "bench-sidecar: {processes} processes, {threads} threads in the fake pod; \
         {scrapes} sequential scrapes of each exporter over one keep-alive connection"
    );

    let ours = bench::measure(
        "kube-metrics-collector",
        collector.pid,
        collector.addr,
        scrapes,
        "kubevirt_pod_infra_processes",
    )
    .with_context(|| format!("collector log:\n{}", collector.log()))?;
    let theirs = bench::measure(
        "process-exporter",
        exporter.pid,
        exporter.addr,
        scrapes,
        "namedprocess_namegroup_num_procs",
    )?;
    for m in [&ours, &theirs] {
        println!("{}", m.result_line());
    }
    print_summary(&ours, &theirs);
    Ok(())
}

fn print_summary(ours: &Measurement, theirs: &Measurement) {
    println!();
    println!(
        "{:<24} {:>14} {:>12} {:>12} {:>12} {:>10}  content type",
        "exporter", "CPU/scrape", "p50", "p99", "peak RSS", "body"
    );
    for m in [ours, theirs] {
        println!(
            "{:<24} {:>11.3} ms {:>9.3} ms {:>9.3} ms {:>8.2} MiB {:>8} B  {}",
            m.name,
            m.cpu_seconds_per_scrape() * 1e3,
            m.p50().as_secs_f64() * 1e3,
            m.p99().as_secs_f64() * 1e3,
            m.peak_rss_bytes as f64 / f64::from(1 << 20),
            m.body_bytes,
            m.content_type,
        );
    }
    println!(
        "{:<24} {:>13.1}x {:>11.1}x {:>11.1}x {:>11.1}x",
        "process-exporter / ours",
        ratio(
            theirs.cpu_seconds_per_scrape(),
            ours.cpu_seconds_per_scrape()
        ),
        ratio(theirs.p50().as_secs_f64(), ours.p50().as_secs_f64()),
        ratio(theirs.p99().as_secs_f64(), ours.p99().as_secs_f64()),
        ratio(theirs.peak_rss_bytes as f64, ours.peak_rss_bytes as f64),
    );
    let hz = rustix::param::clock_ticks_per_second();
    println!(
        "CPU is utime+stime from /proc/<pid>/stat in {hz} Hz ticks: resolution {:.4} ms per scrape",
        1e3 / hz as f64 / ours.scrapes.max(1) as f64,
    );
}

fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        numerator / denominator
    } else {
        f64::INFINITY
    }
}

fn basename(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_owned()
}
