//! The node relay in front of several real collectors, each in its own PID namespace with fake
//! launcher processes, their sockets in a fake kubelet pods directory, and a real Prometheus
//! scraping the relay; the last collector writes the default metrics profile, the others the full
//! one, and the relay forwards each as it is. Checked through the Prometheus HTTP API: the expected
//! series per pod, then
//! (after one collector is killed and a socket that never answers appears) that the rest are still
//! scraped within the timeout and that the relay's failure metrics say so.

use anyhow::{Context as _, Result, ensure};
use e2e::pod::{FakePod, PodInfo};
use e2e::prometheus::{self, Prometheus};
use e2e::relay::{self, Kubelet, Relay};
use e2e::{Guarded, collector, http, launcher, wait_for};
use kube_metrics_contract::metrics::POD_INFO;
use std::collections::BTreeSet;
use std::time::Duration;

const PODS: usize = 3;
/// The relay's per-target timeout; well under Prometheus' 1 s scrape timeout.
const TARGET_TIMEOUT_MS: u64 = 400;
/// Long enough for a few 1 s scrapes on a loaded machine.
const SCRAPE_WAIT: Duration = Duration::from_secs(40);

/// One fake launcher pod with its collector, socket moved into the kubelet tree.
struct Pod {
    namespace: String,
    name: String,
    vm: String,
    /// Its collector writes the default metrics profile.
    lean: bool,
    collector: Option<Guarded>,
    _fake: FakePod,
}

// === impl Pod ===

impl Pod {
    /// `(namespace, pod)`, as the relay labels this pod's series.
    fn identity(&self) -> (String, String) {
        (self.namespace.clone(), self.name.clone())
    }
}

#[test]
fn prometheus_scrapes_collectors_through_the_relay() {
    e2e::preflight(&["unshare", "nsenter", "prometheus", "promtool"]).unwrap();
    let kubelet = Kubelet::new("e2e-kubelet-").unwrap();
    let mut pods: Vec<Pod> = (1..=PODS)
        .map(|i| start_pod(&kubelet, i).unwrap())
        .collect();
    let timeout = TARGET_TIMEOUT_MS.to_string();
    let relay = Relay::start(&kubelet, &["--timeout-ms", &timeout]).unwrap();
    let prometheus = Prometheus::start(&[relay.addr]).unwrap();

    let result = series_per_pod(&prometheus, &pods)
        .and_then(|()| failures_are_contained(&prometheus, &kubelet, &mut pods))
        .and_then(|()| promtool_accepts(&relay));
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
    let want: BTreeSet<(String, String)> = pods.iter().map(Pod::identity).collect();
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
        // Threads are in the full profile only.
        let threads = prometheus.query(&format!("kubevirt_pod_infra_threads{{{selector}}}"))?;
        ensure!(
            threads.is_empty() == pod.lean,
            "{selector}: {} thread series, default profile {}",
            threads.len(),
            pod.lean
        );
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
fn failures_are_contained(
    prometheus: &Prometheus,
    kubelet: &Kubelet,
    pods: &mut [Pod],
) -> Result<()> {
    let killed = pods.get_mut(1).context("pod 2")?;
    drop(killed.collector.take());
    let killed = killed.identity();
    let silent_uid = "0000dead-0000-4000-8000-00000000511e";
    kubelet.project(
        silent_uid,
        &relay::Podinfo::relay(silent_uid, "ns-silent", "silent"),
    )?;
    let silent = kubelet.bind(silent_uid)?;

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
    // A couple more scrapes in this state, so what follows sees it hold, not a single scrape.
    let scrapes = || prometheus.value("count_over_time(up{job=\"kmc\"}[1h])");
    let seen = scrapes()?;
    wait_for("two more scrapes of the relay", SCRAPE_WAIT, || {
        Ok((scrapes()? >= seen + 2.0).then_some(()))
    })?;
    let want: BTreeSet<_> = pods
        .iter()
        .map(Pod::identity)
        .filter(|id| *id != killed)
        .collect();
    ensure!(
        identities(prometheus)? == want,
        "after the kill: {:?}",
        identities(prometheus)?
    );
    let age = prometheus.query(&format!("time() - timestamp({POD_INFO})"))?;
    ensure!(
        age.len() == 2 && age.iter().all(|s| s.value < 3.0),
        "stale survivors: {age:?}"
    );
    failures_are_counted_and_bounded(prometheus)?;
    drop(silent);
    Ok(())
}

/// The relay counted both failure reasons, and its scrape with a silent target took the per-target
/// timeout (not more), well inside Prometheus' own scrape timeout.
fn failures_are_counted_and_bounded(prometheus: &Prometheus) -> Result<()> {
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
    Ok(())
}

/// `promtool check metrics` on what the relay serves.
fn promtool_accepts(relay: &Relay) -> Result<()> {
    let body = http::get(relay.addr, "/metrics", &[])?.body;
    prometheus::promtool_check_metrics(&body)
}

fn identities(prometheus: &Prometheus) -> Result<BTreeSet<(String, String)>> {
    let samples = prometheus.query(POD_INFO)?;
    Ok(samples
        .iter()
        .map(|s| (s.label("namespace").to_owned(), s.label("pod").to_owned()))
        .collect())
}

/// Pod `i`: a PID namespace with virt-launcher-monitor and QEMU, and a collector serving only on
/// its Unix socket, which then moves to where the kubelet would show it.
fn start_pod(kubelet: &Kubelet, i: usize) -> Result<Pod> {
    let (namespace, vm) = (format!("ns-{i}"), format!("vm-{i}"));
    let name = format!("virt-launcher-{vm}-x{i}z");
    let specs = launcher::core_processes(&namespace, &vm, None)
        .into_iter()
        .filter(|spec| spec.key == "virt-launcher-monitor" || spec.key == "qemu");
    let fake = FakePod::with_processes(&PodInfo::launcher(&vm, 1 << 28), specs)?;
    let lean = i == PODS;
    let profile = if lean { "default" } else { "full" };
    let (collector, socket) =
        collector::start_on_socket_with(&fake, &namespace, &name, &["--metrics-profile", profile])?;
    let uid = relay::pod_uid(i);
    kubelet.project(&uid, &relay::Podinfo::relay(&uid, &namespace, &name))?;
    kubelet.move_socket(&socket, &uid)?;
    Ok(Pod {
        namespace,
        name,
        vm,
        lean,
        collector: Some(collector),
        _fake: fake,
    })
}
