//! Both scrape paths at once, as the two PodMonitors set them up: Prometheus scrapes the `direct`
//! pod's collector on its TCP port (target labels `namespace`/`pod`, as pod discovery gives them)
//! and the node relay with `honor_labels: true`. On the node: a direct pod (whose socket the relay
//! also finds), a relay pod, a pod whose tenant labelled it `scrape: direct` but that the webhook
//! sent to the relay (its attested labels file is what the webhook wrote: `relay`), a pod injected
//! before the upgrade (no uid, namespace or name files: named by its log directory), a pod whose
//! collector claims to be the relay pod, and a pod whose own spec projects the relay pod's
//! namespace and name into its downward-API files. Checked through the Prometheus API: exactly one
//! series per pod that should be scraped, none for the others, and the relay's counters say why.

use anyhow::{Result, ensure};
use e2e::pod::{FakePod, PodInfo};
use e2e::prometheus::{Prometheus, SCRAPE_INTERVAL};
use e2e::relay::{self, Kubelet, Podinfo, Relay};
use e2e::{Guarded, collector, http, launcher, wait_for};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// Long enough for a few 1 s scrapes on a loaded machine.
const SCRAPE_WAIT: Duration = Duration::from_secs(40);
/// Where the relay DaemonSet runs, as its target labels say.
const RELAY_NAMESPACE: &str = "kube-metrics-collector";

/// The node's pods, kept alive for the test; each collector stops before its pod.
struct Node {
    _direct: (collector::Collector, FakePod),
    _pods: Vec<(Guarded, FakePod)>,
    direct_addr: SocketAddr,
}

#[test]
fn every_pod_is_scraped_exactly_once_across_both_paths() {
    e2e::preflight(&["unshare", "nsenter", "prometheus"]).unwrap();
    let kubelet = Kubelet::new("e2e-kubelet-once-").unwrap();
    let node = start_pods(&kubelet).unwrap();
    let relay = Relay::start(&kubelet, &[]).unwrap();
    let prometheus = start_prometheus(node.direct_addr, relay.addr).unwrap();
    if let Err(error) = check(&prometheus) {
        let own: String = http::get(relay.addr, "/metrics", &[])
            .map(|r| r.text())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("kube_metrics_collector_relay_"))
            .map(|l| format!("{l}\n"))
            .collect();
        let tree = std::process::Command::new("find")
            .arg(kubelet.root())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        panic!(
            "{error:#}\n--- kubelet tree:\n{tree}--- relay's own metrics:\n{own}--- relay log:\n{}\n--- prometheus log:\n{}",
            relay.log(),
            prometheus.log()
        );
    }
    drop(node);
}

fn start_pods(kubelet: &Kubelet) -> Result<Node> {
    let mut running = Vec::new();
    // Direct: serves on TCP and, like every injected collector, on its socket too.
    let fake = fake_pod(collector::POD_NAMESPACE, "vm-direct")?;
    let direct = collector::Collector::start(&fake, &[])?;
    let addr = direct.addr;
    let uid = relay::pod_uid(1);
    let info = Podinfo::direct(&uid, collector::POD_NAMESPACE, collector::POD_NAME);
    kubelet.project(&uid, &info)?;
    kubelet.move_socket(&direct.socket, &uid)?;
    // Relay, and the pod whose own `scrape: direct` label the webhook overwrote with `relay`.
    for (i, namespace, name) in [(2, "ns-relay", "relay-pod"), (3, "ns-tenant", "tenant-pod")] {
        let uid = relay::pod_uid(i);
        running.push(socket_pod(
            kubelet,
            &uid,
            (namespace, name),
            (namespace, name),
        )?);
    }
    // Injected by the previous version: labelled, but no identity files.
    let uid = relay::pod_uid(4);
    let old = Podinfo::relay(&uid, "ns-old", "old-pod").before_upgrade();
    running.push(socket_pod_with(kubelet, &uid, &old, ("ns-old", "old-pod"))?);
    // A tenant's pod whose collector says it is the relay pod.
    let uid = relay::pod_uid(5);
    running.push(socket_pod(
        kubelet,
        &uid,
        ("ns-evil", "evil-pod"),
        ("ns-relay", "relay-pod"),
    )?);
    // A tenant's pod whose spec also projects the relay pod's names as `namespace` and `name`.
    let uid = relay::pod_uid(6);
    let forged = Podinfo::relay(&uid, "ns-evil", "evil-pod-2").claiming("ns-relay", "relay-pod");
    running.push(socket_pod_with(
        kubelet,
        &uid,
        &forged,
        ("ns-relay", "relay-pod"),
    )?);
    Ok(Node {
        _direct: (direct, fake),
        _pods: running,
        direct_addr: addr,
    })
}

fn fake_pod(namespace: &str, vm: &str) -> Result<FakePod> {
    let specs = launcher::core_processes(namespace, vm, None)
        .into_iter()
        .filter(|spec| spec.key == "virt-launcher-monitor" || spec.key == "qemu");
    FakePod::with_processes(&PodInfo::launcher(vm, 1 << 28), specs)
}

/// A relay pod attested as `attested`, whose collector states `claims`.
fn socket_pod(
    kubelet: &Kubelet,
    uid: &str,
    attested: (&str, &str),
    claims: (&str, &str),
) -> Result<(Guarded, FakePod)> {
    let info = Podinfo::relay(uid, attested.0, attested.1);
    socket_pod_with(kubelet, uid, &info, claims)
}

fn socket_pod_with(
    kubelet: &Kubelet,
    uid: &str,
    info: &Podinfo,
    (namespace, name): (&str, &str),
) -> Result<(Guarded, FakePod)> {
    let fake = fake_pod(namespace, &format!("vm-{name}"))?;
    let (collector, socket) = collector::start_on_socket(&fake, namespace, name)?;
    kubelet.project(uid, info)?;
    kubelet.move_socket(&socket, uid)?;
    Ok((collector, fake))
}

/// Prometheus with the two jobs the PodMonitors make.
fn start_prometheus(direct: SocketAddr, relay: SocketAddr) -> Result<Prometheus> {
    let dir = tempfile::Builder::new()
        .prefix("e2e-prometheus-once-")
        .tempdir()?;
    let interval = SCRAPE_INTERVAL.as_secs();
    let config = format!(
        "global:\n  scrape_interval: {interval}s\n  scrape_timeout: {interval}s\n\
         scrape_configs:\n\
         \x20 - job_name: kube-metrics-collector-direct\n\
         \x20   static_configs:\n\
         \x20     - targets: ['{direct}']\n\
         \x20       labels: {{namespace: '{ns}', pod: '{pod}'}}\n\
         \x20 - job_name: kube-metrics-collector-relay\n\
         \x20   honor_labels: true\n\
         \x20   static_configs:\n\
         \x20     - targets: ['{relay}']\n\
         \x20       labels: {{namespace: '{RELAY_NAMESPACE}', pod: 'kube-metrics-collector-relay-x1'}}\n",
        ns = collector::POD_NAMESPACE,
        pod = collector::POD_NAME,
    );
    std::fs::write(dir.path().join("prometheus.yml"), config)?;
    Prometheus::start_in(dir)
}

fn check(prometheus: &Prometheus) -> Result<()> {
    let want: BTreeMap<(String, String), f64> = [
        (collector::POD_NAMESPACE, collector::POD_NAME),
        ("ns-relay", "relay-pod"),
        ("ns-tenant", "tenant-pod"),
        ("ns-old", "old-pod"),
    ]
    .into_iter()
    .map(|(ns, pod)| ((ns.to_owned(), pod.to_owned()), 1.0))
    .collect();
    let counts = || -> Result<BTreeMap<(String, String), f64>> {
        let expr = "count by (namespace, pod) (kubevirt_pod_infra_processes{process=\"qemu\"})";
        Ok(prometheus
            .query(expr)?
            .iter()
            .map(|s| {
                (
                    (s.label("namespace").to_owned(), s.label("pod").to_owned()),
                    s.value,
                )
            })
            .collect())
    };
    // Wait until both jobs have scraped with the relay's counters in place, then hold.
    wait_for("both paths scraped", SCRAPE_WAIT, || {
        let skipped = prometheus
            .query("kube_metrics_collector_relay_targets{state=\"skipped_direct\"}")?
            .first()
            .map(|s| s.value);
        Ok((counts()? == want && skipped == Some(1.0)).then_some(()))
    })?;
    std::thread::sleep(SCRAPE_INTERVAL * 3);
    let counts = counts()?;
    ensure!(counts == want, "series per pod: {counts:?}");
    let once = prometheus
        .query("count by (namespace, pod) (kubevirt_pod_infra_processes{process=\"qemu\"}) == 1")?;
    ensure!(once.len() == want.len(), "exactly once: {once:?}");
    for absent in [
        "{namespace=\"ns-evil\"}",
        "{__name__=~\"kubevirt_.*\",job=\"kube-metrics-collector-relay\",pod=\"virt-launcher-e2e-abcde\"}",
        "{__name__=~\"kubevirt_.*\",namespace=\"kube-metrics-collector\"}",
    ] {
        let found = prometheus.query(absent)?;
        ensure!(found.is_empty(), "{absent}: {found:?}");
    }
    for (expr, want) in [
        ("kube_metrics_collector_relay_targets{state=\"ok\"}", 3.0),
        (
            "kube_metrics_collector_relay_targets{state=\"skipped_direct\"}",
            1.0,
        ),
        (
            "kube_metrics_collector_relay_targets{state=\"failed\"}",
            2.0,
        ),
    ] {
        let value = prometheus.value(expr)?;
        ensure!(value == want, "{expr} = {value}, want {want}");
    }
    for reason in ["attestation_mismatch", "identity_mismatch"] {
        let expr =
            format!("kube_metrics_collector_relay_target_failures_total{{reason=\"{reason}\"}}");
        ensure!(prometheus.value(&expr)? >= 1.0, "{expr} did not count");
    }
    Ok(())
}
