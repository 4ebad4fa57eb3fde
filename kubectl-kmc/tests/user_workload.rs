//! `top` and `recommend` with `--user-workload-monitoring` against a real Prometheus holding a
//! generated fleet as OpenShift's user-workload monitoring stores it: half of the launcher pods
//! relayed (the relay's `namespace` and `pod`, the VM's in `exported_namespace`/`exported_pod`),
//! half scraped directly, and a tenant's pod whose series claim another namespace. With the flag
//! the answers equal those of the same fleet stored as the relay labels it (the 3-VM golden);
//! without it every query that joins a pod's info fails, as two relayed VMs look like one pod.

mod fleet;

use std::collections::BTreeMap;
use std::process::{Command, Output};

use fleet::{DAY, END, HOUR, Prometheus, Series, golden};
use kube_metrics_contract::metrics;
use serde_json::Value;

const INSTALL_NAMESPACE: &str = "kube-metrics-collector";
const RELAY_POD: &str = "kube-metrics-collector-relay-x7k2q";
const GOLDEN_END: i64 = END + 10 * DAY;
const GOLDEN_HISTORY: i64 = DAY + 6 * HOUR;

/// The collector's series of every other launcher pod (first, third, …) as the relay's target
/// delivers them under user-workload monitoring; the others' `kubevirt_pod_infra_pod_info` with
/// `exported_*` equal to its own labels (a target's labels win even when equal).
fn as_user_workload_monitoring_stores_them(series: &mut [Series]) -> usize {
    let mut pods: Vec<String> = Vec::new();
    let mut relayed = 0;
    for s in series.iter_mut() {
        if metrics::family(&s.name).is_none() || s.label("pod").is_empty() {
            continue;
        }
        let pod = s.label("pod").to_owned();
        let index = pods.iter().position(|p| *p == pod).unwrap_or_else(|| {
            pods.push(pod.clone());
            pods.len() - 1
        });
        let relay = index % 2 == 0;
        if relay || s.name == metrics::POD_INFO {
            for label in ["namespace", "pod"] {
                let value = s.label(label).to_owned();
                s.labels.insert(format!("exported_{label}"), value);
            }
        }
        if relay {
            s.labels
                .insert("namespace".into(), INSTALL_NAMESPACE.into());
            s.labels.insert("pod".into(), RELAY_POD.into());
            relayed += 1;
        }
    }
    relayed
}

/// A tenant's pod in namespace `tenant`, scraped by that namespace's direct PodMonitor, writing
/// the first relayed VM's namespace and pod on copies of that VM's series, ten times larger.
fn forged(series: &[Series]) -> Vec<Series> {
    let relayed = |s: &&Series| s.label("namespace") == INSTALL_NAMESPACE;
    let first = series
        .iter()
        .find(relayed)
        .map(|s| s.label("exported_pod").to_owned())
        .unwrap_or_default();
    series
        .iter()
        .filter(relayed)
        .filter(|s| s.label("exported_pod") == first && metrics::family(&s.name).is_some())
        .map(|s| {
            let mut copy = s.clone();
            copy.labels.insert("namespace".into(), "tenant".into());
            copy.labels
                .insert("pod".into(), "virt-launcher-evil".into());
            for point in &mut copy.points {
                point.1 *= 10.0;
            }
            copy
        })
        .collect()
}

fn kmc(prometheus: &Prometheus, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kubectl-kmc"));
    command
        .args(args)
        .args(["--prometheus", &prometheus.url()])
        .args(["--time", &GOLDEN_END.to_string()])
        .args(["--kubeconfig", "/nonexistent/kubeconfig"]);
    for (var, _) in
        std::env::vars().filter(|(k, _)| k.starts_with("KUBECTL_KMC_") || k == "KUBECONFIG")
    {
        command.env_remove(var);
    }
    command.output().expect("run kubectl-kmc")
}

fn stdout(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `top -o json`'s rows by (namespace, vm), with their memory.
fn top(prometheus: &Prometheus, extra: &[&str]) -> BTreeMap<(String, String), f64> {
    let args = [&["top", "-o", "json", "-n", "three"][..], extra].concat();
    let json: Value = serde_json::from_str(&stdout(&kmc(prometheus, &args))).expect("json");
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    json.as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            let memory = v["resident_bytes"].as_f64().unwrap_or(f64::NAN);
            ((text(v, "namespace"), text(v, "vm")), memory)
        })
        .collect()
}

#[test]
fn top_and_recommend_read_relayed_series_with_the_flag() {
    let vms = golden::fleet(3, "three", GOLDEN_HISTORY);
    let labelled = fleet::generate(&vms, GOLDEN_END);
    let mut series = labelled.clone();
    let relayed = as_user_workload_monitoring_stores_them(&mut series);
    assert!(relayed > 10, "{relayed} series relayed");
    let tenant = forged(&series);
    assert!(!tenant.is_empty());
    series.extend(tenant);
    let dir = tempfile::tempdir().expect("tempdir");
    let prometheus = Prometheus::load(&series, dir.path());
    let labelled_dir = tempfile::tempdir().expect("tempdir");
    let reference = Prometheus::load(&labelled, labelled_dir.path());

    // The same VMs and values as the relay labels them; the tenant's copies nowhere.
    let want = top(&reference, &[]);
    assert_eq!(want.len(), 3, "{want:?}");
    assert_eq!(top(&prometheus, &["--user-workload-monitoring"]), want);
    // Without the flag, two relayed VMs on one node are one pod of the relay's, with two names:
    // every join on the pod's info fails.
    let without = kmc(&prometheus, &["top", "-n", "three"]);
    let stderr = String::from_utf8_lossy(&without.stderr);
    assert_eq!(without.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("many-to-many matching not allowed"),
        "{stderr}"
    );

    let recommend = ["recommend", "-n", "three", "--resolution", "2m"];
    let table = stdout(&kmc(
        &prometheus,
        &[
            &recommend[..],
            &["--user-workload-monitoring=kube-metrics-collector"],
        ]
        .concat(),
    ));
    assert_eq!(table, stdout(&kmc(&reference, &recommend)));
    let golden = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/recommend-3.txt"),
    )
    .expect("golden");
    assert_eq!(table, golden);
}
