//! Benchmark: what one scrape of the node collector costs with 100 skipped VMs on the node.
//!
//! `cargo build --release -p kube-metrics-collector -p e2e && ./target/release/bench-node` (root,
//! a writable cgroup2 mount). Not a timed test: it prints a table.
//!
//! Each VM is the five core launcher processes (about 25 threads in all, nothing burning, no
//! memory touched), started straight from the fake-process binary with the real argv[0], in its
//! own kubepods-named cgroup (systemd driver, cgroup v2) under a test-owned subtree, with a pod
//! log directory naming it; no PID namespace is needed, since the node collector reads the host's
//! /proc. Every other process of the machine is on the node too, outside kubepods. The node
//! collector is a separate process; its CPU comes from its /proc/<pid>/stat. Where no cgroup can be
//! created, the node collector reads a fixture proc root copied from /proc instead (it says so).

use anyhow::{Context as _, Result};
use clap::Parser;
use e2e::bench;
use e2e::cgroups::CgroupTree;
use e2e::http::{self, Endpoint};
use e2e::relay::{self, Kubelet};
use e2e::{Guarded, binaries, hostproc, launcher, node, wait_for};
use kube_metrics_contract::relay::PODS_DIR;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

/// Measures the node collector's scrape latency and CPU.
#[derive(Debug, Parser)]
#[command(name = "bench-node")]
struct Args {
    /// Skipped VMs (launcher pods without a collector) on the node.
    #[arg(long, default_value_t = 100)]
    vms: usize,

    /// Sequential scrapes of the node collector.
    #[arg(long, default_value_t = 60)]
    scrapes: usize,

    /// A few VMs and scrapes only: shows the benchmark works, measures nothing meaningful.
    #[arg(long)]
    quick: bool,
}

const QUICK_VMS: usize = 3;
const QUICK_SCRAPES: usize = 5;
/// Starting a process takes milliseconds; generous for a loaded machine.
const START_TIMEOUT: Duration = Duration::from_secs(20);

fn main() -> ExitCode {
    bench::exit_code("bench-node", run(Args::parse()))
}

fn run(args: Args) -> Result<()> {
    let (vms, scrapes) = if args.quick {
        (QUICK_VMS, QUICK_SCRAPES)
    } else {
        (args.vms, args.scrapes)
    };
    // Real cgroups where the machine allows them; otherwise a fixture proc root copied from /proc.
    let mut tree = match CgroupTree::new() {
        Ok(tree) => Some(tree),
        Err(error) => {
            println!("no writable cgroup2 ({error:#}): fixture proc root copied from /proc");
            None
        }
    };
    let kubelet = Kubelet::new("bench-kubelet-node-")?;
    let started = Instant::now();
    let (processes, by_pod) = start_vms(tree.as_mut(), &kubelet, vms)?;
    let fixture = match tree {
        Some(_) => None,
        None => Some(node::fixture_proc_of(&by_pod)?),
    };
    let proc_root = fixture.as_ref().map_or(Path::new("/proc"), |f| f.path());
    eprintln!(
        "bench-node: {} processes of {vms} VMs started in {:?}",
        processes.len(),
        started.elapsed()
    );
    let host_processes = std::fs::read_dir("/proc")?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .count();
    println!(
        "node: {vms} skipped VMs, {} of their processes, {host_processes} processes on the machine; \
         node collector: {}",
        processes.len(),
        binaries::collector()?.display()
    );
    let (addr, collector) = start_collector(proc_root, &kubelet)?;
    let must_contain = format!("kube_metrics_collector_node_pods{{state=\"collected\"}} {vms}\n");
    let measurement = bench::measure("node", collector.pid(), addr, scrapes, &must_contain)?;
    println!("{}", measurement.result_line());
    bench::print_table("vms", &[(vms, &measurement)]);
    drop(collector);
    drop(processes);
    drop(tree);
    Ok(())
}

/// The core launcher processes of `vms` VMs, each VM in its own pod cgroup (with a tree) and with a
/// log directory; and each pod's uid and pids.
fn start_vms(
    mut tree: Option<&mut CgroupTree>,
    kubelet: &Kubelet,
    vms: usize,
) -> Result<(Vec<Guarded>, node::PodPids)> {
    let fake = binaries::fake_process()?;
    let mut running = Vec::new();
    let mut by_pod = Vec::new();
    for i in 0..vms {
        let (uid, namespace, vm) = (relay::pod_uid(i), format!("ns-{i}"), format!("vm-{i}"));
        let logs = format!("{namespace}_virt-launcher-{vm}-abcde_{uid}");
        std::fs::create_dir_all(kubelet.pod_logs().join(logs))?;
        let scope = match tree.as_deref_mut() {
            Some(tree) => Some(tree.pod_scope(&uid, "compute")?),
            None => None,
        };
        let mut pids = Vec::new();
        for spec in launcher::core_processes(&namespace, &vm, None) {
            let (argv0, rest) = spec.argv.split_first().context("empty argv")?;
            let mut command = Command::new(&fake);
            command
                .arg0(argv0)
                .args(rest)
                .env("FAKE_THREADS", spec.threads.join(","));
            let guard = Guarded::spawn(&format!("{i}-{}", spec.key), command, kubelet.root())?;
            let pid = guard.pid();
            if let Some(scope) = &scope {
                CgroupTree::enter(scope, pid)?;
            }
            pids.push(pid);
            let threads = spec.thread_count();
            wait_for(&format!("{} of VM {i}", spec.key), START_TIMEOUT, || {
                Ok((hostproc::threads(pid)? == threads).then_some(()))
            })?;
            running.push(guard);
        }
        by_pod.push((uid, pids));
    }
    Ok((running, by_pod))
}

/// `kube-metrics-collector --proc-root <proc_root> node` on a free loopback port.
fn start_collector(proc_root: &Path, kubelet: &Kubelet) -> Result<(SocketAddr, Guarded)> {
    let addr: SocketAddr = ([127, 0, 0, 1], http::free_port()?).into();
    let mut command = Command::new(binaries::collector()?);
    command
        .arg("--proc-root")
        .arg(proc_root)
        .args(["node", "--listen"])
        .arg(addr.to_string())
        .arg("--kubelet-pods-dir")
        .arg(kubelet.root().join(PODS_DIR))
        .arg("--pod-logs-dir")
        .arg(kubelet.pod_logs());
    let mut guard = Guarded::spawn("node-collector", command, kubelet.root())?;
    guard.wait_until_ok(&Endpoint::Tcp(addr), "/healthz", START_TIMEOUT)?;
    Ok((addr, guard))
}
