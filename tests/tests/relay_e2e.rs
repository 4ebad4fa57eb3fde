//! The node relay in front of several real collectors, each in its own PID namespace with fake
//! launcher processes, their sockets in a fake kubelet pods directory, and a real Prometheus
//! scraping the relay. Checked through the Prometheus HTTP API: the expected series per pod, then
//! (after one collector is killed and a socket that never answers appears) that the rest are still
//! scraped within the timeout and that the relay's failure metrics say so.

use anyhow::{Context as _, Result, bail, ensure};
use e2e::pod::{FakePod, PodInfo};
use e2e::prometheus::Prometheus;
use e2e::{Guarded, binaries, http, launcher, wait_for};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const PODS: usize = 3;
/// The relay's per-target timeout; well under Prometheus' 1 s scrape timeout.
const TARGET_TIMEOUT_MS: u64 = 400;
/// Long enough for a few 1 s scrapes on a loaded machine.
const SCRAPE_WAIT: Duration = Duration::from_secs(40);
const START_WAIT: Duration = Duration::from_secs(20);
/// docs/design.md: where the kubelet puts the collector's emptyDir.
const VOLUME: &str = "kube-metrics-collector-socket";

/// The relay's argv prefix.
fn relay_argv() -> Result<Vec<OsString>> {
    Ok(vec![binaries::collector()?.into(), "relay".into()])
}

/// One fake launcher pod with its collector, socket moved into the kubelet tree.
struct Pod {
    namespace: String,
    name: String,
    vm: String,
    collector: Option<Guarded>,
    _fake: FakePod,
}

#[test]
fn prometheus_scrapes_collectors_through_the_relay() {
    e2e::preflight(&["unshare", "nsenter", "prometheus"]).unwrap();
    let kubelet = tempfile::Builder::new()
        .prefix("e2e-kubelet-")
        .tempdir()
        .unwrap();
    std::fs::create_dir(kubelet.path().join("pods")).unwrap();
    let mut pods: Vec<Pod> = (1..=PODS)
        .map(|i| start_pod(kubelet.path(), i).unwrap())
        .collect();
    let (relay, relay_addr) = start_relay(kubelet.path()).unwrap();
    let prometheus = Prometheus::start(&[relay_addr]).unwrap();

    let result = series_per_pod(&prometheus, &pods)
        .and_then(|()| failures_are_contained(&prometheus, kubelet.path(), &mut pods))
        .and_then(|()| promtool_accepts(relay_addr));
    if let Err(error) = result {
        let logs: String = pods
            .iter()
            .filter_map(|p| {
                p.collector
                    .as_ref()
                    .map(|c| format!("--- {} collector:\n{}\n", p.name, c.log()))
            })
            .collect();
        panic!(
            "{error:#}\n--- relay log:\n{}\n--- prometheus log:\n{}\n{logs}",
            relay.log(),
            prometheus.log()
        );
    }
}

/// Every pod's series arrive with its own namespace and pod, and no collector series lacks them.
fn series_per_pod(prometheus: &Prometheus, pods: &[Pod]) -> Result<()> {
    let want: BTreeSet<(String, String)> = pods
        .iter()
        .map(|p| (p.namespace.clone(), p.name.clone()))
        .collect();
    wait_for(
        "every pod's pod_info through the relay",
        SCRAPE_WAIT,
        || Ok((identities(prometheus)? == want).then_some(())),
    )?;
    for pod in pods {
        let selector = format!("namespace=\"{}\",pod=\"{}\"", pod.namespace, pod.name);
        for (process, expected) in [
            ("qemu", 1.0),
            ("virt-launcher-monitor", 1.0),
            ("virtqemud", 0.0),
        ] {
            let expr = format!("kubevirt_pod_infra_processes{{{selector},process=\"{process}\"}}");
            let value = prometheus.value(&expr)?;
            ensure!(value == expected, "{expr} = {value}, want {expected}");
        }
        // The series really come from that pod's collector: its domain is that pod's VM.
        let processes = prometheus.query(&format!("kubevirt_pod_infra_processes{{{selector}}}"))?;
        ensure!(!processes.is_empty(), "no processes series for {selector}");
        for sample in &processes {
            ensure!(
                sample.label("domain") == pod.vm,
                "{selector} carries {sample:?}"
            );
        }
        let cpu =
            format!("sum(kubevirt_pod_infra_cpu_seconds_total{{{selector},process=\"qemu\"}})");
        ensure!(prometheus.value(&cpu)? > 0.0, "{cpu} is not positive");
    }
    let unlabelled = prometheus.query("{job=\"kmc\",__name__=~\"kubevirt_.*\",namespace=\"\"}")?;
    ensure!(
        unlabelled.is_empty(),
        "series without namespace: {unlabelled:?}"
    );
    let unlabelled = prometheus.query("{job=\"kmc\",__name__=~\"kubevirt_.*\",pod=\"\"}")?;
    ensure!(unlabelled.is_empty(), "series without pod: {unlabelled:?}");
    ensure!(prometheus.value("kube_metrics_collector_relay_targets{state=\"ok\"}")? == PODS as f64);
    Ok(())
}

/// Kills pod 2's collector and adds a socket that accepts but never answers: pods 1 and 3 are
/// still scraped, the relay's scrape stays within the timeout, and its metrics name the failures.
fn failures_are_contained(prometheus: &Prometheus, root: &Path, pods: &mut [Pod]) -> Result<()> {
    let killed = pods.get_mut(1).context("pod 2")?;
    drop(killed.collector.take());
    let killed = (killed.namespace.clone(), killed.name.clone());
    let silent = UnixListener::bind(root.join("silent.sock"))?;
    move_into_kubelet(
        &root.join("silent.sock"),
        root,
        "0000dead-0000-4000-8000-00000000511e",
    )?;

    let targets = |state: &str| {
        prometheus.value(&format!(
            "kube_metrics_collector_relay_targets{{state=\"{state}\"}}"
        ))
    };
    wait_for(
        "the relay to report one dead and one silent target",
        SCRAPE_WAIT,
        || {
            Ok(
                (targets("ok")? == 2.0 && targets("failed")? == 1.0 && targets("timeout")? == 1.0)
                    .then_some(()),
            )
        },
    )?;
    // Let a couple more scrapes happen in this state.
    std::thread::sleep(Duration::from_secs(3));
    let want: BTreeSet<_> = pods
        .iter()
        .map(|p| (p.namespace.clone(), p.name.clone()))
        .filter(|id| *id != killed)
        .collect();
    ensure!(
        identities(prometheus)? == want,
        "after the kill: {:?}",
        identities(prometheus)?
    );
    let age = prometheus.query("time() - timestamp(kubevirt_pod_infra_pod_info)")?;
    ensure!(
        age.len() == 2 && age.iter().all(|s| s.value < 3.0),
        "stale survivors: {age:?}"
    );

    for reason in ["connect", "timeout"] {
        let expr =
            format!("kube_metrics_collector_relay_target_failures_total{{reason=\"{reason}\"}}");
        ensure!(prometheus.value(&expr)? >= 1.0, "{expr} did not count");
    }
    ensure!(
        prometheus.value("up{job=\"kmc\"}")? == 1.0,
        "the relay's scrape failed"
    );
    let took = prometheus
        .value("max_over_time(kube_metrics_collector_relay_scrape_duration_seconds[3s])")?;
    let timeout = TARGET_TIMEOUT_MS as f64 / 1000.0;
    ensure!(
        took >= timeout && took < timeout + 0.5,
        "relay scrape took {took}s with a {timeout}s timeout"
    );
    let prom_took = prometheus.value("max_over_time(scrape_duration_seconds{job=\"kmc\"}[3s])")?;
    ensure!(prom_took < 1.0, "Prometheus saw a {prom_took}s scrape");
    drop(silent);
    Ok(())
}

/// `promtool check metrics` on what the relay serves.
fn promtool_accepts(relay: SocketAddr) -> Result<()> {
    if e2e::process::which("promtool").is_none() {
        bail!("promtool is missing: run scripts/setup");
    }
    let body = http::get(relay, "/metrics", &[])?.body;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    std::io::Write::write_all(&mut child.stdin.take().context("stdin")?, &body)?;
    let output = child.wait_with_output()?;
    ensure!(
        output.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

fn identities(prometheus: &Prometheus) -> Result<BTreeSet<(String, String)>> {
    let samples = prometheus.query("kubevirt_pod_infra_pod_info")?;
    Ok(samples
        .iter()
        .map(|s| (s.label("namespace").to_owned(), s.label("pod").to_owned()))
        .collect())
}

/// Pod `i`: a PID namespace with virt-launcher-monitor and QEMU, and a collector serving only on
/// its Unix socket, which then moves to where the kubelet would show it.
fn start_pod(root: &Path, i: usize) -> Result<Pod> {
    let (namespace, vm) = (format!("ns-{i}"), format!("vm-{i}"));
    let name = format!("virt-launcher-{vm}-x{i}z");
    let mut fake = FakePod::start(&PodInfo::launcher(&vm, 1 << 28))?;
    for spec in launcher::core_processes(&namespace, &vm, None) {
        if spec.key == "virt-launcher-monitor" || spec.key == "qemu" {
            fake.spawn(spec)?;
        }
    }
    let binary = binaries::collector()?;
    let socket = fake.dir().join("metrics.sock");
    let mut command = fake.command(None);
    command
        .arg(&binary)
        .arg("--socket")
        .arg(&socket)
        .arg("--podinfo")
        .arg(fake.podinfo_dir())
        .env("POD_NAME", &name)
        .env("POD_NAMESPACE", &namespace)
        .env("NODE_NAME", "e2e-node");
    let (collector, _pid) = fake.spawn_command("collector", command, &binary.to_string_lossy())?;
    wait_for("the collector's socket", START_WAIT, || {
        Ok(http::Connection::unix(&socket)
            .and_then(|mut c| c.get("/readyz", &[]))
            .is_ok_and(|r| r.status == 200)
            .then_some(()))
    })?;
    move_into_kubelet(&socket, root, &format!("5d5e2e1c-0000-4000-8000-{i:012}"))?;
    Ok(Pod {
        namespace,
        name,
        vm,
        collector: Some(collector),
        _fake: fake,
    })
}

/// Moves a bound socket to `<root>/pods/<uid>/volumes/kubernetes.io~empty-dir/<volume>/metrics.sock`.
/// That path is longer than sun_path allows, so nothing can bind there directly; the kubelet's
/// bind mount shows the same inode there, which a rename reproduces.
fn move_into_kubelet(socket: &Path, root: &Path, uid: &str) -> Result<PathBuf> {
    let dir = root
        .join("pods")
        .join(uid)
        .join("volumes/kubernetes.io~empty-dir")
        .join(VOLUME);
    std::fs::create_dir_all(&dir)?;
    let target = dir.join("metrics.sock");
    std::fs::rename(socket, &target)
        .with_context(|| format!("cannot move {}", socket.display()))?;
    Ok(target)
}

fn start_relay(root: &Path) -> Result<(Guarded, SocketAddr)> {
    let addr: SocketAddr = ([127, 0, 0, 1], http::free_port()?).into();
    let argv = relay_argv()?;
    let (program, args) = argv.split_first().context("empty relay argv")?;
    let mut command = Command::new(program);
    command
        .args(args)
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--kubelet-root")
        .arg(root)
        .arg("--timeout-ms")
        .arg(TARGET_TIMEOUT_MS.to_string())
        .env("RUST_LOG", "debug");
    let mut relay = Guarded::spawn("relay", command, root)?;
    wait_for("the relay's /healthz", START_WAIT, || {
        relay.check_running()?;
        Ok(http::get(addr, "/healthz", &[])
            .is_ok_and(|r| r.status == 200)
            .then_some(()))
    })?;
    Ok((relay, addr))
}
