//! Benchmark: what one scrape of the node relay costs with 10, 50 and 200 collectors on the node.
//!
//! `cargo run --release -p e2e --bin bench-relay` (root). Not a timed test: it prints a table.
//!
//! The targets are light fake collectors, threads of this process, each serving on its own Unix
//! socket in a fake kubelet pods directory the text that the real `kube-metrics-collector -M`
//! printed inside one fake launcher pod (10 processes, about 100 threads); only the
//! pod_info identity differs per target. That keeps 200 PID namespaces out of the measurement.
//! The relay is a separate process; its CPU comes from its /proc/<pid>/stat.

use anyhow::{Context as _, Result, ensure};
use clap::Parser;
use e2e::bench::{self, Measurement};
use e2e::pod::{FakePod, PodInfo};
use e2e::{Guarded, collector, http, launcher, wait_for};
use std::ffi::OsString;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::SocketAddr;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

/// Measures the relay's scrape latency and CPU for several node sizes.
#[derive(Debug, Parser)]
#[command(name = "bench-relay")]
struct Args {
    /// Node sizes: collectors behind the relay.
    #[arg(long, value_delimiter = ',', default_value = "10,50,200")]
    targets: Vec<usize>,

    /// Sequential scrapes of the relay per node size.
    #[arg(long, default_value_t = 60)]
    scrapes: usize,

    /// A few scrapes only: shows the benchmark works, measures nothing meaningful.
    #[arg(long)]
    quick: bool,
}

const QUICK_SCRAPES: usize = 5;
const START_WAIT: Duration = Duration::from_secs(20);
/// docs/design.md: where the kubelet puts the collector's emptyDir.
const VOLUME: &str = "kube-metrics-collector-socket";

/// The relay's argv prefix.
fn relay_argv() -> Result<Vec<OsString>> {
    Ok(vec![e2e::binaries::collector()?.into(), "relay".into()])
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench-relay: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    e2e::preflight(&["unshare", "nsenter"])?;
    let scrapes = if args.quick {
        QUICK_SCRAPES
    } else {
        args.scrapes
    };
    let relay_argv = relay_argv()?;
    let template = captured_exposition()?;
    println!(
        "targets: in-process fake collectors serving `kube-metrics-collector -M` output captured in a \
         fake launcher pod ({} lines, {} bytes each); relay: {}",
        template.lines().count(),
        template.len(),
        relay_argv
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" "),
    );
    let mut rows = Vec::new();
    for &n in &args.targets {
        let started = Instant::now();
        let measurement = measure_node(&relay_argv, &template, n, scrapes)?;
        println!("{}", measurement.result_line());
        eprintln!("bench-relay: {n} targets took {:?}", started.elapsed());
        rows.push((n, measurement));
    }
    print_table(&rows);
    Ok(())
}

/// One collection by the real collector inside a fake launcher pod, as text 0.0.4.
fn captured_exposition() -> Result<String> {
    let mut pod = FakePod::start(&PodInfo::launcher("bench-vm", 0))?;
    for spec in launcher::bench_processes("bench", "bench-vm") {
        pod.spawn(spec)?;
    }
    let output = collector::run_once(&pod, None, &["-M"])?;
    let text = String::from_utf8(output.stdout).context("-M printed non-UTF-8")?;
    ensure!(
        text.contains(&identity(collector::POD_NAMESPACE, collector::POD_NAME)),
        "no pod_info in:\n{text}"
    );
    Ok(text)
}

fn identity(namespace: &str, pod: &str) -> String {
    format!("namespace=\"{namespace}\",pod=\"{pod}\"")
}

/// `n` fake collectors in a fresh kubelet tree, the relay in front, `scrapes` measured scrapes.
fn measure_node(
    relay_argv: &[OsString],
    template: &str,
    n: usize,
    scrapes: usize,
) -> Result<Measurement> {
    let root = tempfile::Builder::new()
        .prefix("bench-kubelet-")
        .tempdir()?;
    std::fs::create_dir(root.path().join("pods"))?;
    let original = identity(collector::POD_NAMESPACE, collector::POD_NAME);
    for i in 0..n {
        let body = template.replace(
            &original,
            &identity(&format!("ns-{i}"), &format!("pod-{i}")),
        );
        let listener = bind_in_kubelet(root.path(), &format!("5d5e2e1c-0000-4000-8000-{i:012}"))?;
        std::thread::spawn(move || serve(listener, body.as_bytes()));
    }
    let (relay, addr) = start_relay(relay_argv, root.path())?;
    let must_contain = format!("kube_metrics_collector_relay_targets{{state=\"ok\"}} {n}\n");
    bench::measure(
        &format!("relay-{n}"),
        relay.pid(),
        addr,
        scrapes,
        &must_contain,
    )
}

/// A listener at the pod's socket path. The full path is longer than sun_path allows, so bind
/// at a short path and move the socket into place (the kubelet's bind mount shows one inode).
fn bind_in_kubelet(root: &Path, uid: &str) -> Result<UnixListener> {
    let dir = root
        .join("pods")
        .join(uid)
        .join("volumes/kubernetes.io~empty-dir")
        .join(VOLUME);
    std::fs::create_dir_all(&dir)?;
    let short = root.join("bind.sock");
    let listener = UnixListener::bind(&short)?;
    std::fs::rename(&short, dir.join("metrics.sock"))?;
    Ok(listener)
}

/// Answers every request with `body`, one request per connection, until the process exits.
fn serve(listener: UnixListener, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    for stream in listener.incoming().flatten() {
        let _ = answer(stream, head.as_bytes(), body);
    }
}

fn answer(stream: UnixStream, head: &[u8], body: &[u8]) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream);
    // Read the request head first: closing with unread bytes would reset the connection.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let mut stream = reader.into_inner();
    stream.write_all(head)?;
    stream.write_all(body)
}

fn start_relay(argv: &[OsString], root: &Path) -> Result<(Guarded, SocketAddr)> {
    let addr: SocketAddr = ([127, 0, 0, 1], http::free_port()?).into();
    let (program, args) = argv.split_first().context("empty relay argv")?;
    let mut command = Command::new(program);
    command
        .args(args)
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--kubelet-root")
        .arg(root);
    let mut relay = Guarded::spawn("relay", command, root)?;
    wait_for("the relay's /healthz", START_WAIT, || {
        relay.check_running()?;
        Ok(http::get(addr, "/healthz", &[])
            .is_ok_and(|r| r.status == 200)
            .then_some(()))
    })?;
    Ok((relay, addr))
}

fn print_table(rows: &[(usize, Measurement)]) {
    println!();
    println!(
        "{:>7} {:>7} {:>9} {:>9} {:>9} {:>15} {:>12}",
        "targets", "scrapes", "body_KiB", "p50_ms", "p99_ms", "cpu_ms/scrape", "peak_rss_MiB"
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
