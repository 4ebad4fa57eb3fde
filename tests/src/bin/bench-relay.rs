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
use e2e::relay::{self, Kubelet, Relay};
use e2e::{binaries, collector, launcher};
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::ExitCode;
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

fn main() -> ExitCode {
    bench::exit_code("bench-relay", run(Args::parse()))
}

fn run(args: Args) -> Result<()> {
    e2e::preflight(&["unshare", "nsenter"])?;
    let scrapes = if args.quick {
        QUICK_SCRAPES
    } else {
        args.scrapes
    };
    let template = captured_exposition()?;
    println!(
        "targets: in-process fake collectors serving `kube-metrics-collector -M` output captured in a \
         fake launcher pod ({} lines, {} bytes each); relay: {} relay",
        template.lines().count(),
        template.len(),
        binaries::collector()?.display(),
    );
    let mut rows = Vec::new();
    for &n in &args.targets {
        let started = Instant::now();
        let measurement = measure_node(&template, n, scrapes)?;
        println!("{}", measurement.result_line());
        eprintln!("bench-relay: {n} targets took {:?}", started.elapsed());
        rows.push((n, measurement));
    }
    let rows: Vec<(usize, &Measurement)> = rows.iter().map(|(n, m)| (*n, m)).collect();
    bench::print_table("targets", &rows);
    Ok(())
}

/// One collection by the real collector inside a fake launcher pod, as text 0.0.4.
fn captured_exposition() -> Result<String> {
    let specs = launcher::bench_processes("bench", "bench-vm");
    let pod = FakePod::with_processes(&PodInfo::launcher("bench-vm", 0), specs)?;
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
fn measure_node(template: &str, n: usize, scrapes: usize) -> Result<Measurement> {
    let kubelet = Kubelet::new("bench-kubelet-")?;
    let original = identity(collector::POD_NAMESPACE, collector::POD_NAME);
    for i in 0..n {
        let (namespace, pod) = (format!("ns-{i}"), format!("pod-{i}"));
        let body = template.replace(&original, &identity(&namespace, &pod));
        let uid = relay::pod_uid(i);
        kubelet.project(&uid, &relay::Podinfo::relay(&uid, &namespace, &pod))?;
        let listener = kubelet.bind(&uid)?;
        std::thread::spawn(move || serve(listener, body.as_bytes()));
    }
    let relay = Relay::start(&kubelet, &[])?;
    let must_contain = format!("kube_metrics_collector_relay_targets{{state=\"ok\"}} {n}\n");
    bench::measure(
        &format!("relay-{n}"),
        relay.pid(),
        relay.addr,
        scrapes,
        &must_contain,
    )
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
