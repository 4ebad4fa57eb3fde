//! Benchmark: what the collector holds and burns in a launcher pod at Prometheus' pace, for its
//! requests and limits. Two fake launcher pods run side by side, each with its collector started as
//! the webhook injects it (TCP and Unix socket, default metrics profile, guest memory read every
//! 300 s): one of KubeVirt's size (its five processes and virt-tail) and one whose QEMU has 100
//! threads (64 vCPUs, I/O threads, workers). Each collector is scraped once per `--interval` for
//! `--duration`; the benchmark prints its peak RSS (`VmHWM`) and its CPU (utime + stime over the
//! run, in millicores), and the requests they give with a margin of 1.5, and how far the webhook's
//! default limits are above them (README, "Measured").
//!
//! `cargo build --release -p kube-metrics-collector -p e2e && ./target/release/bench-footprint`
//! (root; 10 minutes). Not a timed test: it prints numbers.

use anyhow::{Context as _, Result};
use clap::Parser;
use e2e::collector::Collector;
use e2e::http::{self, Connection};
use e2e::pod::{FakePod, PodInfo, ProcessSpec};
use e2e::{bench, hostproc, launcher};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const MIB: f64 = 1024.0 * 1024.0;
/// The requests are the measured peak (memory) and average (CPU) times this.
const REQUEST_MARGIN: f64 = 1.5;
/// The webhook's default limits (`--memory-limit`, `--cpu-limit`), in MiB and millicores: room for
/// a flood of connections up to the cap (8.5 MiB: `cargo test --release -p kube-metrics-collector
/// --test listeners -- --nocapture`) and a large guest's `smaps` read.
const LIMITS: (f64, f64) = (32.0, 50.0);

/// The collector's footprint at Prometheus' pace.
#[derive(Debug, Parser)]
#[command(name = "bench-footprint")]
struct Args {
    /// Seconds between scrapes: the PodMonitors' interval.
    #[arg(long, default_value_t = 30)]
    interval: u64,

    /// Seconds to run; more than the guest memory reader's 300 s, so that its read is in.
    #[arg(long, default_value_t = 600)]
    duration: u64,

    /// A few seconds only: shows the benchmark works, measures nothing meaningful.
    #[arg(long)]
    quick: bool,
}

/// What one collector cost over the run.
#[derive(Debug)]
struct Footprint {
    pod: &'static str,
    threads: usize,
    scrapes: usize,
    cpu_seconds: f64,
    seconds: f64,
    peak_rss: u64,
    rss: u64,
    body_bytes: usize,
}

fn main() -> ExitCode {
    bench::exit_code("bench-footprint", run(Args::parse()))
}

fn run(mut args: Args) -> Result<()> {
    e2e::preflight(&["unshare", "nsenter"])?;
    if args.quick {
        (args.interval, args.duration) = (1, 4);
    }
    println!(
        "bench-footprint: one scrape every {} s for {} s of each collector, as injected (TCP and \
         socket, default metrics profile, guest memory every 300 s)",
        args.interval, args.duration
    );
    let pods: [(&'static str, Vec<ProcessSpec>); 2] = [
        (
            "KubeVirt's five processes and virt-tail",
            launcher_pod(false),
        ),
        ("the same, QEMU with 100 threads", launcher_pod(true)),
    ];
    let args = &args;
    let results: Vec<Result<Footprint>> = std::thread::scope(|scope| {
        let handles: Vec<_> = pods
            .into_iter()
            .map(|(name, specs)| scope.spawn(move || measure(name, specs, args)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("measuring thread panicked")))
            })
            .collect()
    });
    let results = results.into_iter().collect::<Result<Vec<_>>>()?;
    println!();
    println!(
        "{:<42} {:>7} {:>7} {:>11} {:>12} {:>13} {:>10} {:>9}",
        "pod", "threads", "scrapes", "CPU/scrape", "millicores", "peak RSS", "RSS", "body"
    );
    for f in &results {
        println!(
            "{:<42} {:>7} {:>7} {:>8.3} ms {:>12.3} {:>9.2} MiB {:>6.2} MiB {:>7} B",
            f.pod,
            f.threads,
            f.scrapes,
            f.cpu_seconds / f.scrapes.max(1) as f64 * 1e3,
            f.cpu_seconds / f.seconds * 1e3,
            f.peak_rss as f64 / MIB,
            f.rss as f64 / MIB,
            f.body_bytes
        );
        println!(
            "result pod=\"{}\" threads={} scrapes={} cpu_seconds={:.6} millicores={:.4} \
             peak_rss_bytes={} rss_bytes={}",
            f.pod,
            f.threads,
            f.scrapes,
            f.cpu_seconds,
            f.cpu_seconds / f.seconds * 1e3,
            f.peak_rss,
            f.rss
        );
    }
    let peak = results.iter().map(|f| f.peak_rss).max().unwrap_or(0) as f64 / MIB;
    let millicores = results
        .iter()
        .map(|f| f.cpu_seconds / f.seconds * 1e3)
        .fold(0.0, f64::max);
    println!();
    println!(
        "memory request: {peak:.2} MiB peak x {REQUEST_MARGIN} = {:.2} MiB -> {}Mi",
        peak * REQUEST_MARGIN,
        (peak * REQUEST_MARGIN).ceil()
    );
    println!(
        "memory limit: {}Mi, {:.1} x this peak",
        LIMITS.0,
        LIMITS.0 / peak.max(f64::EPSILON)
    );
    println!(
        "CPU request: {millicores:.3} millicores x {REQUEST_MARGIN} = {:.3} -> {}m (Kubernetes' smallest is 1m)",
        millicores * REQUEST_MARGIN,
        (millicores * REQUEST_MARGIN).ceil().max(1.0)
    );
    println!(
        "CPU limit: {}m, {:.0} x this average",
        LIMITS.1,
        LIMITS.1 / millicores.max(f64::EPSILON)
    );
    Ok(())
}

/// KubeVirt's five processes and virt-tail; with `big_qemu`, QEMU has 100 threads.
fn launcher_pod(big_qemu: bool) -> Vec<ProcessSpec> {
    let vm = if big_qemu { "big-vm" } else { "bench-vm" };
    let mut specs = launcher::core_processes("bench", vm, None);
    for spec in &mut specs {
        // Nothing burns: the collector's own CPU is what is measured.
        spec.burn.clear();
        if big_qemu && spec.key == "qemu" {
            let mut threads: Vec<String> = (0..64).map(|i| format!("CPU {i}/KVM")).collect();
            threads.extend((0..4).map(|i| format!("IO iothread{i}")));
            threads.extend(["vnc_worker".to_owned(), "SPICE Worker".to_owned()]);
            while threads.len() < 99 {
                threads.push("worker".to_owned());
            }
            spec.threads = threads;
        }
    }
    specs.push(launcher::virt_tail());
    specs
}

/// Starts `specs` in a pod with its collector and scrapes it for the run.
fn measure(pod_name: &'static str, specs: Vec<ProcessSpec>, args: &Args) -> Result<Footprint> {
    let vm = specs
        .iter()
        .find(|s| s.key == "virt-launcher")
        .and_then(|s| s.argv.last().cloned())
        .unwrap_or_default();
    let pod = FakePod::with_processes(&PodInfo::launcher(&vm, 300 << 20), specs)?;
    let threads = pod.specs().map(ProcessSpec::thread_count).sum();
    let collector = Collector::start(&pod, &["--metrics-profile", "default"])?;
    let headers = [("Accept", http::PROMETHEUS_ACCEPT)];
    let started = Instant::now();
    let cpu_before = hostproc::cpu_seconds(collector.pid)?;
    let (mut scrapes, mut body_bytes) = (0, 0);
    let interval = Duration::from_secs(args.interval);
    let end = started + Duration::from_secs(args.duration);
    while Instant::now() < end {
        // A connection per scrape: the collector closes idle keep-alive connections long before
        // the next one, as Prometheus finds.
        let response = Connection::tcp(collector.addr)
            .and_then(|mut c| c.get("/metrics", &headers))
            .with_context(|| format!("collector log:\n{}", collector.log()))?;
        body_bytes = response.body.len();
        scrapes += 1;
        let next = started + interval * scrapes as u32;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait.min(end.saturating_duration_since(Instant::now())));
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(Footprint {
        pod: pod_name,
        threads,
        scrapes,
        cpu_seconds: hostproc::cpu_seconds(collector.pid)? - cpu_before,
        seconds,
        peak_rss: hostproc::status_bytes(collector.pid, "VmHWM")?,
        rss: hostproc::status_bytes(collector.pid, "VmRSS")?,
        body_bytes,
    })
}
