//! The rules and dashboards of the default install against a real Prometheus holding two days of a
//! generated fleet (`e2e::fleet`): the history is written as OpenMetrics, turned into TSDB blocks with
//! `promtool tsdb create-blocks-from openmetrics`, and Prometheus starts on those blocks with the
//! PrometheusRule's groups, evaluating every second. Since the history ends "now", Prometheus'
//! own evaluations give the recording rules' values and the alerts' states; expressions that read
//! raw history (pod identity a day ago, the OOM state before the kill) are evaluated at past times
//! through the query API. Every dashboard query, of the Grafana and of the OpenShift console
//! dashboard, must return the fleet's series with distinct legends. The OpenShift variant's rules
//! and console dashboard run on the same fleet as user-workload monitoring stores it.
//! Needs `prometheus`, `promtool` and `kubectl` (with kustomize).

use anyhow::{Context as _, Result, bail, ensure};
use e2e::exposition::Sample;
use e2e::fleet::{self, Fleet, MIB, Vm};
use e2e::manifests;
use e2e::process;
use e2e::prometheus::{self, Prometheus};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Rule evaluation needs a few cycles of one second each once Prometheus is up.
const EVALUATION_TIMEOUT: Duration = Duration::from_secs(40);
/// Grafana variables as the dashboards are opened with "All" selected, and VM "web" chosen (it
/// runs in two namespaces): the fleet panels show the top VMs, the per-process panels that VM.
const VARIABLES: &[(&str, &str)] = &[
    ("$__rate_interval", "5m"),
    ("$cluster", ".*"),
    ("$namespace", ".*"),
    ("$node", ".*"),
    ("$vm", "web"),
];
/// What the fleet panels show at most.
const TOP: usize = 10;

#[test]
fn rules_and_dashboards_on_a_generated_fleet() -> Result<()> {
    process::preflight(&["prometheus", "promtool", "kubectl"])?;
    let end = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let fleet = fleet::fleet(i64::try_from(end)?);
    let (rules_spec, rules) = manifests::prometheus_rules(manifests::default_install()?)?;
    let prometheus = start(&fleet.openmetrics(), &fleet, &rules_spec, None)?;
    let result = (|| -> Result<()> {
        wait_for_rules(&prometheus, &fleet)?;
        recording_rules_give_the_fleets_values(&prometheus, &fleet, &rules)?;
        history_is_read_from_the_blocks(&prometheus, &fleet, &rules)?;
        alerts_are_in_the_expected_states(&prometheus, &fleet)?;
        for dashboard in DASHBOARDS {
            dashboard_queries_return_the_fleet(&prometheus, &fleet, dashboard)
                .with_context(|| (*dashboard).to_owned())?;
        }
        Ok(())
    })();
    result.with_context(|| format!("prometheus log:\n{}", prometheus.log()))
}

/// The OpenShift variant's rules and console dashboard on the same fleet as user-workload
/// monitoring stores it (`e2e::user_workload::series`): half of the launcher pods relayed, their
/// series under the relay's namespace and pod with the VM's in `exported_*`, half scraped
/// directly. Every VM must have the same values and alerts as under the default install.
#[test]
fn openshift_rules_and_console_dashboard_on_a_user_workload_fleet() -> Result<()> {
    process::preflight(&["prometheus", "promtool", "kubectl"])?;
    let end = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let fleet = fleet::fleet(i64::try_from(end)?);
    let openshift = manifests::rendered()?
        .iter()
        .find(|r| r.variant == "overlays/openshift")
        .context("no openshift variant")?;
    let (rules_spec, rules) = manifests::prometheus_rules(&openshift.docs)?;
    let (history, relayed) = e2e::user_workload::series::reshape_openmetrics(&fleet.openmetrics())?;
    ensure!(relayed > 1000, "only {relayed} samples relayed");
    let prometheus = start(
        &history,
        &fleet,
        &rules_spec,
        Some(OPENSHIFT_INSTALL_NAMESPACE),
    )?;
    let result = (|| -> Result<()> {
        wait_for_rules(&prometheus, &fleet)?;
        recording_rules_give_the_fleets_values(&prometheus, &fleet, &rules)?;
        history_is_read_from_the_blocks(&prometheus, &fleet, &rules)?;
        alerts_are_in_the_expected_states(&prometheus, &fleet)?;
        dashboard_queries_return_the_fleet(&prometheus, &fleet, DASHBOARDS[1])
    })();
    result.with_context(|| format!("prometheus log:\n{}", prometheus.log()))
}

/// The namespace the OpenShift variant's rules promote relayed series from.
const OPENSHIFT_INSTALL_NAMESPACE: &str = "kube-metrics-collector";

/// Writes the history (OpenMetrics), makes blocks of it and of the trend records over it, and
/// starts Prometheus on them with the rules, every group evaluated every second. `relayed_from`:
/// the series are shaped as user-workload monitoring stores them, relayed ones promoted from that
/// namespace, so the trends' expressions are rewritten as the OpenShift rules are.
fn start(
    openmetrics: &str,
    fleet: &Fleet,
    rules_spec: &Value,
    relayed_from: Option<&str>,
) -> Result<Prometheus> {
    let dir = tempfile::Builder::new().prefix("e2e-fleet-").tempdir()?;
    let history = dir.path().join("fleet.om");
    std::fs::write(&history, openmetrics)?;
    prometheus::create_blocks(&history, &dir.path().join("data"))?;
    std::fs::remove_file(&history)?;
    backfill_trends(dir.path(), fleet, relayed_from)?;
    let mut spec = rules_spec.clone();
    for group in spec["groups"].as_array_mut().into_iter().flatten() {
        if let Some(group) = group.as_object_mut() {
            group.remove("interval");
        }
    }
    std::fs::write(
        dir.path().join("rules.yaml"),
        serde_norway::to_string(&spec)?,
    )?;
    std::fs::write(
        dir.path().join("prometheus.yml"),
        "global:\n  evaluation_interval: 1s\nrule_files:\n  - rules.yaml\n",
    )?;
    Prometheus::start_in(dir)
}

/// The trend records over the whole history, as an installation backfills them after an upgrade
/// (docs/metrics.md, "What the rules cost"): `promtool tsdb create-blocks-from rules` against a
/// Prometheus on the raw blocks, each record inlined down to raw series
/// (`contract::rules::expand`), at the trend group's interval, into the TSDB under `dir/data`.
fn backfill_trends(dir: &std::path::Path, fleet: &Fleet, relayed_from: Option<&str>) -> Result<()> {
    use kube_metrics_contract::rules::{TRENDS, TRENDS_INTERVAL, expand};
    use kube_metrics_contract::user_workload::rewrite;
    let rules = TRENDS
        .iter()
        .map(|r| {
            let expr = expand(r.record).unwrap_or_default();
            let expr = match relayed_from {
                Some(namespace) => rewrite(&expr, namespace)?,
                None => expr,
            };
            Ok(serde_json::json!({"record": r.record, "expr": expr}))
        })
        .collect::<Result<Vec<Value>>>()?;
    let file = serde_json::json!({"groups": [{"name": "trends", "rules": rules}]});
    std::fs::write(dir.join("trends.yaml"), serde_norway::to_string(&file)?)?;
    std::fs::write(dir.join("prometheus.yml"), "global: {}\n")?;
    let mut raw = e2e::scale::measure::Server::new(dir)?;
    raw.start()?;
    let output = dir.join("trends");
    process::output(
        Command::new("promtool")
            .args(["tsdb", "create-blocks-from", "rules"])
            .arg(format!("--start={}", fleet.end - fleet::HISTORY))
            .arg(format!("--end={}", fleet.end))
            .arg(format!("--url=http://{}", raw.addr))
            .arg(format!("--eval-interval={TRENDS_INTERVAL}"))
            .arg(format!("--output-dir={}", output.display()))
            .arg(dir.join("trends.yaml")),
    )?;
    raw.stop()?;
    for block in std::fs::read_dir(&output)? {
        let block = block?;
        std::fs::rename(block.path(), dir.join("data").join(block.file_name()))?;
    }
    Ok(())
}

/// Until the last recording rule has a series for every running VM, and the trend group, which
/// Prometheus evaluates on its own schedule, has recorded.
fn wait_for_rules(prometheus: &Prometheus, fleet: &Fleet) -> Result<()> {
    let running = fleet.running().count();
    process::wait_for("the recording rules", EVALUATION_TIMEOUT, || {
        let got = prometheus.query("vmi:kubevirt_pod_infra_memory_overhead:ratio")?;
        let trends = kube_metrics_contract::rules::TRENDS
            .iter()
            .map(|t| Ok(!prometheus.query(t.record)?.is_empty()))
            .collect::<Result<Vec<bool>>>()?;
        Ok((got.len() == running && trends.iter().all(|&t| t)).then_some(()))
    })
}

fn selector(vm: &Vm) -> String {
    format!("{{namespace=\"{}\",name=\"{}\"}}", vm.namespace, vm.name)
}

fn close(got: f64, want: f64, tolerance: f64) -> bool {
    (got - want).abs() <= tolerance * want.abs().max(1.0)
}

fn recording_rules_give_the_fleets_values(
    prometheus: &Prometheus,
    fleet: &Fleet,
    rules: &[(String, String)],
) -> Result<()> {
    // Every recording rule records something on this fleet.
    for (record, _) in rules.iter().filter(|(name, _)| name.contains(':')) {
        ensure!(
            !prometheus.query(record)?.is_empty(),
            "{record} recorded nothing"
        );
    }
    for vm in fleet.running() {
        vm_recordings_match(prometheus, vm)?;
    }
    // Every per-VM series has the same labels, so `:sum` and `:max` series divide and subtract.
    let per_vm = prometheus.query("{__name__=~\"vmi:.+\"}")?;
    for sample in &per_vm {
        let keys: Vec<&str> = sample.labels.keys().map(String::as_str).collect();
        ensure!(
            keys == ["name", "namespace", "node", "pod"],
            "{} has labels {keys:?}",
            sample.name
        );
    }
    Ok(())
}

/// The per-VM and per-component recordings of one running VM.
fn vm_recordings_match(prometheus: &Prometheus, vm: &Vm) -> Result<()> {
    let sel = selector(vm);
    let value = |record: &str| {
        prometheus
            .value(&format!("{record}{sel}"))
            .with_context(|| format!("{}/{}", vm.namespace, vm.name))
    };
    let vm_name = format!("{}/{}", vm.namespace, vm.name);
    let exact = [
        (
            "vmi:kubevirt_pod_infra_memory_overhead_bytes:sum",
            vm.overhead(),
        ),
        (
            "vmi:kubevirt_pod_infra_memory_overhead_estimate_bytes:max",
            vm.estimate,
        ),
        (
            "vmi:kubevirt_pod_infra_memory_overhead_headroom_bytes:max",
            vm.estimate - vm.overhead(),
        ),
        (
            "vmi:kubevirt_pod_infra_memory_resident_bytes:sum",
            vm.infra_resident(),
        ),
    ];
    for (record, want) in exact {
        let got = value(record)?;
        // The leaking virt-launcher grew a little since the last sample was written.
        ensure!(
            close(got, want, 1e-3),
            "{vm_name} {record}: {got}, want {want}"
        );
    }
    let cpu = value("vmi:kubevirt_pod_infra_cpu_seconds:rate5m")?;
    let want = fleet::LAUNCHER_CORES + fleet::QEMU_OTHER_CORES;
    ensure!(
        close(cpu, want, 0.02),
        "{vm_name} infra CPU {cpu}, want {want}"
    );
    let over = by_component(&prometheus.query(&format!(
        "vmi_component:kubevirt_pod_infra_memory_over_budget_bytes:max{sel}"
    ))?);
    let want: Vec<(String, f64)> = vm
        .over_budget()
        .into_iter()
        .map(|(c, v)| (c.to_owned(), v))
        .collect();
    ensure!(
        over == want,
        "{vm_name} over budget: {over:?}, want {want:?}"
    );
    // Scraped twice or not, each role counts once.
    let roles = prometheus.query(&format!(
        "vmi_process:kubevirt_pod_infra_memory_resident_bytes:max{sel}"
    ))?;
    ensure!(
        roles.len() == vm.roles().len(),
        "{vm_name}: {} roles",
        roles.len()
    );
    for (record, want) in [
        (
            "vmi_component:kubevirt_pod_infra_memory_overhead_bytes:max",
            vm.components(),
        ),
        (
            "vmi_component:kubevirt_pod_infra_memory_overhead_budget_bytes:max",
            vm.budgets(),
        ),
    ] {
        let got = by_component(&prometheus.query(&format!("{record}{sel}"))?);
        let mut want: Vec<(String, f64)> =
            want.into_iter().map(|(c, v)| (c.to_owned(), v)).collect();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        let same = got.len() == want.len()
            && got
                .iter()
                .zip(&want)
                .all(|(g, w)| g.0 == w.0 && close(g.1, w.1, 1e-3));
        ensure!(same, "{vm_name} {record}: {got:?}, want {want:?}");
    }
    let ratios = by_component(&prometheus.query(&format!(
        "vmi_component:kubevirt_pod_infra_memory_overhead_budget:ratio{sel}"
    ))?);
    let budgets = vm.budgets();
    let mut want: Vec<(String, f64)> = vm
        .components()
        .into_iter()
        .filter_map(|(c, v)| {
            let (_, budget) = budgets.iter().find(|(b, _)| *b == c)?;
            Some((c.to_owned(), v / budget))
        })
        .collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    let same = ratios.len() == want.len()
        && ratios
            .iter()
            .zip(&want)
            .all(|(g, w)| g.0 == w.0 && close(g.1, w.1, 1e-3));
    ensure!(same, "{vm_name} budget ratios: {ratios:?}, want {want:?}");
    let allowance = [
        (
            "vmi:kubevirt_pod_infra_compute_memory_allowance_bytes:max",
            vm.allowance(),
        ),
        (
            "vmi:kubevirt_pod_infra_compute_memory_allowance_used_bytes:max",
            vm.allowance_used(),
        ),
    ];
    for (record, want) in allowance {
        let got = value(record)?;
        ensure!(
            close(got, want, 1e-3),
            "{vm_name} {record}: {got}, want {want}"
        );
    }
    Ok(())
}

/// `(component, value)` of each sample, sorted by component.
fn by_component(samples: &[Sample]) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = samples
        .iter()
        .map(|s| (s.label("component").to_owned(), s.value))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn expr_of<'a>(rules: &'a [(String, String)], name: &str) -> Result<&'a str> {
    rules
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, e)| e.as_str())
        .with_context(|| format!("no rule {name}"))
}

fn history_is_read_from_the_blocks(
    prometheus: &Prometheus,
    fleet: &Fleet,
    rules: &[(String, String)],
) -> Result<()> {
    let end = fleet.end as f64;
    // A day ago every VM ran, the crashed one included.
    let info = prometheus.query_at(
        expr_of(rules, "vmi:kubevirt_pod_infra_pod_info:max")?,
        end - 86_400.0,
    )?;
    ensure!(info.len() == fleet.vms.len(), "a day ago: {info:?}");
    let leaky = fleet.vm("shop", "leaky").context("no leaky VM")?;
    let launcher = format!(
        "max(kubevirt_pod_infra_memory_amount_bytes{{pod=\"{}\",process=\"virt-launcher\",type=\"resident\"}})",
        leaky.pod()
    );
    let then = prometheus.query_at(&launcher, end - 86_400.0)?;
    let want = leaky.infra[1] - leaky.leak_per_day;
    ensure!(
        matches!(then.as_slice(), [s] if close(s.value, want, 1e-6)),
        "leaky a day ago: {then:?}, want {want}"
    );
    // The migrated VM: its first pod, on node-1, a day ago; only the current one, on node-2, now.
    let mover = fleet.vm("shop", "mover").context("no migrated VM")?;
    let info_expr = expr_of(rules, "vmi:kubevirt_pod_infra_pod_info:max")?;
    let pods_of = |at: f64| -> Result<Vec<(String, String)>> {
        let info = prometheus.query_at(info_expr, at)?;
        Ok(info
            .iter()
            .filter(|s| s.label("namespace") == mover.namespace && s.label("name") == mover.name)
            .map(|s| (s.label("pod").to_owned(), s.label("node").to_owned()))
            .collect())
    };
    let source = mover.source_pod().context("mover did not migrate")?;
    ensure!(
        pods_of(end - 86_400.0)? == [(source, "node-1".to_owned())]
            && pods_of(end)? == [(mover.pod(), "node-2".to_owned())],
        "migrated VM's pods: {:?} then {:?}",
        pods_of(end - 86_400.0)?,
        pods_of(end)?
    );
    let oom = expr_of(rules, "KubevirtLauncherPodOOMKilled")?;
    let before = prometheus.query_at(oom, end - 3_600.0)?;
    ensure!(before.is_empty(), "OOM alert before the kill: {before:?}");
    Ok(())
}

/// `(alertname, state, labels that identify it)`
type Expected = (&'static str, &'static str, Vec<(&'static str, String)>);

fn expected_alerts(fleet: &Fleet) -> Result<Vec<Expected>> {
    let vm = |namespace, name| {
        fleet
            .vm(namespace, name)
            .with_context(|| format!("no VM {name}"))
    };
    let id = |vm: &Vm| {
        vec![
            ("namespace", vm.namespace.to_owned()),
            ("pod", vm.pod()),
            ("name", vm.name.to_owned()),
        ]
    };
    let mut growing = id(vm("shop", "leaky")?);
    growing.push(("component", "virt-launcher".to_owned()));
    Ok(vec![
        (
            "KubevirtLauncherPodOOMKilled",
            "firing",
            id(vm("shop", "crashed")?),
        ),
        (
            "KubevirtInfraMemoryOverheadAboveEstimate",
            "pending",
            id(vm("shop", "db")?),
        ),
        ("KubevirtInfraProcessMemoryGrowing", "pending", growing),
        (
            "KubevirtComputeContainerNearMemoryLimit",
            "pending",
            id(vm("staging", "big")?),
        ),
        (
            "KubeMetricsCollectorRelayTargetsFailing",
            "pending",
            vec![
                ("pod", "relay-node-2".to_owned()),
                ("state", "timeout".to_owned()),
            ],
        ),
    ])
}

fn alerts_are_in_the_expected_states(prometheus: &Prometheus, fleet: &Fleet) -> Result<()> {
    let expected = expected_alerts(fleet)?;
    let matches = |alert: &Sample, (name, state, labels): &Expected| {
        alert.name == *name
            && alert.label("alertstate") == *state
            && labels.iter().all(|(k, v)| alert.label(k) == v)
    };
    // Both groups must have run: the recorded budgets feed the alerts.
    let alerts = process::wait_for("the expected alerts", EVALUATION_TIMEOUT, || {
        let alerts = prometheus.alerts()?;
        let all_there = expected
            .iter()
            .all(|e| alerts.iter().any(|a| matches(a, e)));
        Ok(all_there.then_some(alerts))
    })?;
    for alert in &alerts {
        ensure!(
            expected.iter().any(|e| matches(alert, e)),
            "unexpected alert {:?}",
            alert.labels
        );
    }
    let value = |name: &str| {
        alerts
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.value)
            .with_context(|| name.to_owned())
    };
    let leaky = fleet.vm("shop", "leaky").context("no leaky VM")?;
    let predicted = leaky.infra[1] + 7.0 * leaky.leak_per_day;
    let got = value("KubevirtInfraProcessMemoryGrowing")?;
    ensure!(
        close(got, predicted, 0.01),
        "predicted {} MiB, want {} MiB",
        got / MIB,
        predicted / MIB
    );
    // Judged on the allowance: of the running VMs only "big" is near, though the working set of
    // three healthy guests that touched their RAM is above 90% of their limit.
    let near: Vec<&str> = fleet
        .running()
        .filter(|vm| vm.near_limit())
        .map(|vm| vm.name)
        .collect();
    ensure!(near == ["big"], "near their limit: {near:?}");
    let big = fleet.vm("staging", "big").context("no big VM")?;
    let got = value("KubevirtComputeContainerNearMemoryLimit")?;
    ensure!(
        close(got, big.allowance_used(), 1e-6),
        "near limit: {got}, want {}",
        big.allowance_used()
    );
    Ok(())
}

const DASHBOARDS: &[&str] = &[
    "manifests/components/monitoring/dashboard.json",
    "manifests/components/openshift-console-dashboard/console-dashboard.json",
];

/// `(expr, legendFormat)` of every panel target, in either dashboard format (Grafana's panels, the
/// console's rows of panels), and of the annotations.
fn dashboard_targets(dashboard: &Value) -> Vec<(String, String)> {
    let rows = dashboard["rows"].as_array().into_iter().flatten();
    let panels = dashboard["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(rows.flat_map(|r| r["panels"].as_array().into_iter().flatten()));
    let mut targets: Vec<(String, String)> = panels
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .map(|t| (text(&t["expr"]), text(&t["legendFormat"])))
        .collect();
    let annotations = dashboard["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten();
    targets.extend(annotations.map(|a| (text(&a["expr"]), text(&a["textFormat"]))));
    targets
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or("").to_owned()
}

/// `{{label}}` replaced by the sample's label values.
fn legend(format: &str, sample: &Sample) -> String {
    let mut out = format.to_owned();
    for (key, value) in &sample.labels {
        out = out.replace(&format!("{{{{{key}}}}}"), value);
    }
    out
}

fn dashboard_queries_return_the_fleet(
    prometheus: &Prometheus,
    fleet: &Fleet,
    path: &str,
) -> Result<()> {
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(e2e::workspace().join(path))?)?;
    let targets = dashboard_targets(&dashboard);
    ensure!(targets.len() >= 15, "{} queries", targets.len());
    let mut legends_seen = 0;
    for (expr, format) in &targets {
        let query = VARIABLES
            .iter()
            .fold(expr.clone(), |q, (var, value)| q.replace(var, value));
        // label_replace's "$1" is a capture group, which dashboards leave alone.
        ensure!(
            !query.replace("\"$1\"", "").contains('$'),
            "unknown variable in {expr}"
        );
        let samples = prometheus.query(&query)?;
        // A panel of what is above 0 (read errors) is empty on a healthy fleet.
        ensure!(
            !samples.is_empty() || query.trim_end().ends_with("> 0)"),
            "{query} returned nothing"
        );
        if format.contains("{{") {
            let legends: BTreeSet<String> = samples.iter().map(|s| legend(format, s)).collect();
            ensure!(
                legends.len() == samples.len(),
                "{query}: legends {legends:?} merge series"
            );
            legends_seen += 1;
        }
    }
    ensure!(legends_seen >= 10, "only {legends_seen} legends checked");
    // The overhead panel: the measured overhead of the ten VMs closest to their estimate,
    // same-named VMs apart.
    let (measured, format) = targets
        .iter()
        .find(|(e, _)| e.starts_with("vmi:kubevirt_pod_infra_memory_overhead_bytes:sum"))
        .context("no measured-overhead query")?;
    let query = VARIABLES
        .iter()
        .fold(measured.clone(), |q, (var, value)| q.replace(var, value));
    let got: BTreeMap<String, f64> = prometheus
        .query(&query)?
        .iter()
        .map(|s| (legend(format, s), s.value))
        .collect();
    let mut closest: Vec<&Vm> = fleet.running().collect();
    closest.sort_by(|a, b| (b.overhead() / b.estimate).total_cmp(&(a.overhead() / a.estimate)));
    closest.truncate(TOP);
    ensure!(got.len() == closest.len(), "{} lines: {got:?}", got.len());
    for vm in closest {
        let key = format!("measured {}/{}", vm.namespace, vm.name);
        match got.get(&key) {
            Some(v) if close(*v, vm.overhead(), 1e-3) => {}
            other => bail!("{key}: {other:?}, want {}", vm.overhead()),
        }
    }
    variables_list_the_fleet(prometheus, fleet, &dashboard)
}

/// `label_values(metric{...}, label)` of the namespace and VM variables.
fn variables_list_the_fleet(
    prometheus: &Prometheus,
    fleet: &Fleet,
    dashboard: &Value,
) -> Result<()> {
    let variables = dashboard["templating"]["list"]
        .as_array()
        .context("no variables")?;
    for (variable, want) in [
        (
            "namespace",
            fleet
                .vms
                .iter()
                .map(|vm| vm.namespace)
                .collect::<BTreeSet<_>>(),
        ),
        ("vm", fleet.running().map(|vm| vm.name).collect()),
    ] {
        let var = variables
            .iter()
            .find(|v| v["name"] == variable)
            .with_context(|| variable.to_owned())?;
        let query = var["definition"].as_str().context("no definition")?;
        let inner = query
            .trim_start_matches("label_values(")
            .trim_end_matches(')');
        let (metric, label) = inner.rsplit_once(',').context("not label_values(m, l)")?;
        let metric = VARIABLES
            .iter()
            .fold(metric.to_owned(), |q, (var, value)| q.replace(var, value));
        let samples = prometheus.query(&format!("group by ({}) ({metric})", label.trim()))?;
        let got: BTreeSet<&str> = samples.iter().map(|s| s.label(label.trim())).collect();
        ensure!(got == want, "{variable}: {got:?}, want {want:?}");
    }
    Ok(())
}
