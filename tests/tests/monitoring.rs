//! The monitoring the default install ships: the PrometheusRule passes `promtool check rules` and
//! its own `promtool test rules`, every alert has a runbook and leaves KubeVirt's health alone, and
//! every metric the rules and the Grafana dashboard use is one the collector or the webhook
//! documents, and (where a bare collector can show it) one the real collector prints. Needs `kubectl` (with kustomize) and `promtool`.

use anyhow::{Context as _, Result, ensure};
use e2e::manifests;
use e2e::process;
use e2e::promql::metric_names;
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

/// The webhook's metrics, from its flags' contract (the webhook crate owns them).
const WEBHOOK_METRICS: &[&str] = &[
    "kube_metrics_webhook_requests_total",
    "kube_metrics_webhook_skips_total",
    "kube_metrics_webhook_request_duration_seconds_bucket",
    "kube_metrics_webhook_request_duration_seconds_sum",
    "kube_metrics_webhook_request_duration_seconds_count",
    "kube_metrics_webhook_certificate_expiry_timestamp_seconds",
    "kube_metrics_webhook_connections_total",
    "kube_metrics_webhook_oversized_vmis_total",
];

/// Metrics of other exporters the rules read: cAdvisor, kube-state-metrics, Prometheus itself and
/// KubeVirt's virt-controller. docs/metrics.md names each in its "Read from elsewhere" table.
const EXTERNAL_METRICS: &[&str] = &[
    "container_memory_working_set_bytes",
    "kube_pod_container_status_last_terminated_reason",
    "kube_pod_container_status_terminated_reason",
    "up",
    "kubevirt_vmi_launcher_memory_overhead_bytes",
];

/// Every metric name docs/metrics.md lists, plus the webhook's and the external ones it names.
fn documented_metrics() -> Result<BTreeSet<String>> {
    let doc = std::fs::read_to_string(e2e::workspace().join("docs/metrics.md"))?;
    let mut names = manifests::documented_metrics(&doc);
    ensure!(
        names.len() >= 15,
        "only {} metrics found in docs/metrics.md",
        names.len()
    );
    names.extend(WEBHOOK_METRICS.iter().map(|s| s.to_string()));
    for external in EXTERNAL_METRICS {
        ensure!(
            doc.contains(&format!("| `{external}` |")),
            "docs/metrics.md does not name {external}"
        );
        names.insert((*external).to_owned());
    }
    Ok(names)
}

/// The expressions of every rule of the default install, then every dashboard query.
fn rule_and_dashboard_exprs(docs: &[Value]) -> Result<Vec<String>> {
    let (_, rules) = manifests::prometheus_rules(docs)?;
    let queries = manifests::dashboard_queries(docs)?;
    ensure!(
        queries.len() >= 10,
        "dashboard has {} queries",
        queries.len()
    );
    Ok(rules.into_iter().map(|(_, e)| e).chain(queries).collect())
}

#[test]
fn rules_and_dashboard_use_only_documented_metrics() -> Result<()> {
    let docs = manifests::default_install()?;
    let (_, rules) = manifests::prometheus_rules(docs)?;
    let recorded: BTreeSet<&str> = rules
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| n.contains(':'))
        .collect();
    let known = documented_metrics()?;
    let mut used = BTreeSet::new();
    for expr in rule_and_dashboard_exprs(docs)? {
        for name in metric_names(&expr) {
            ensure!(
                known.contains(&name) || recorded.contains(name.as_str()),
                "{name} (in `{expr}`) is neither documented nor recorded"
            );
            used.insert(name);
        }
    }
    for needed in [
        "vmi:kubevirt_pod_infra_memory_overhead_headroom_bytes:max",
        "vmi_process:kubevirt_pod_infra_memory_resident_bytes:max",
        "vmi_process:kubevirt_pod_infra_cpu_seconds:rate5m",
        "vmi:kubevirt_pod_infra_memory_resident_bytes:sum",
        "vmi:kubevirt_pod_infra_cpu_seconds:rate5m",
        "vmi_component:kubevirt_pod_infra_memory_over_budget_bytes:max",
        "kubevirt_pod_infra_memory_overhead_estimate_bytes",
        "kubevirt_vmi_launcher_memory_overhead_bytes",
        "kubevirt_pod_infra_qemu_own_memory_bytes",
        "kube_metrics_webhook_certificate_expiry_timestamp_seconds",
        "kube_metrics_collector_relay_targets",
        "container_memory_working_set_bytes",
    ] {
        ensure!(used.contains(needed), "nothing uses {needed}");
    }
    Ok(())
}

#[test]
fn rules_pass_promtool_check_and_unit_tests() -> Result<()> {
    let (spec, rules) = manifests::prometheus_rules(manifests::default_install()?)?;
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("rules.yaml"),
        serde_norway::to_string(&spec)?,
    )?;
    let tests = e2e::workspace().join("manifests/components/monitoring/rules.test.yaml");
    let test_text = std::fs::read_to_string(&tests)?;
    std::fs::write(dir.path().join("rules.test.yaml"), &test_text)?;
    let checked = process::stdout(
        Command::new("promtool")
            .args(["check", "rules", "rules.yaml"])
            .current_dir(dir.path()),
    )?;
    ensure!(
        checked.contains(&format!("SUCCESS: {} rules found", rules.len())),
        "{checked}"
    );
    let tested = process::stdout(
        Command::new("promtool")
            .args(["test", "rules", "rules.test.yaml"])
            .current_dir(dir.path()),
    )?;
    ensure!(tested.contains("SUCCESS"), "{tested}");
    every_alert_is_tested_and_has_a_runbook(&spec, &test_text)
}

/// Where a release's runbooks are read: its tag on the project's GitHub, so that the links of an
/// installed release keep matching its alerts.
fn release_runbook_base() -> String {
    format!(
        "https://github.com/kube-metrics-collector/kube-metrics-collector/blob/v{}/docs/runbooks",
        env!("CARGO_PKG_VERSION")
    )
}

/// Every alert is tested firing (with its labels) and not firing (`exp_alerts: []`), carries the
/// add-on's routing labels, and links its own runbook, docs/runbooks/<alert>.md, under the one
/// configurable base (the PrometheusRule's annotation), which the index docs/runbooks.md lists.
fn every_alert_is_tested_and_has_a_runbook(spec: &Value, test_text: &str) -> Result<()> {
    let docs = e2e::workspace().join("docs");
    let index = std::fs::read_to_string(docs.join("runbooks.md"))?;
    let base = e2e::alerting::runbook_base(manifests::default_install()?)?;
    ensure!(base == release_runbook_base(), "runbook base {base}");
    // runbook-url.yaml splits each link on "/Kube" to swap the base.
    ensure!(!base.contains("/Kube"), "runbook base {base}");
    let alerts = spec["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten());
    let mut names = BTreeSet::new();
    for alert in alerts.filter(|r| r["alert"].is_string()) {
        let name = alert["alert"].as_str().unwrap_or("");
        let cases = test_text.matches(&format!("alertname: {name}\n")).count();
        ensure!(cases >= 2, "{name}: {cases} test cases");
        let url = alert["annotations"]["runbook_url"].as_str().unwrap_or("");
        ensure!(
            url == format!("{base}/{name}.md"),
            "{name}: runbook_url {url}"
        );
        e2e::alerting::check_alert_labels(alert).with_context(|| name.to_owned())?;
        let path = docs.join(format!("runbooks/{name}.md"));
        let runbook = std::fs::read_to_string(&path)
            .with_context(|| format!("{name}: no runbook {}", path.display()))?;
        e2e::alerting::check_runbook(name, &runbook).with_context(|| name.to_owned())?;
        ensure!(
            index.contains(&format!("(runbooks/{name}.md)")),
            "{name}: not in docs/runbooks.md"
        );
        names.insert(format!("{name}.md"));
    }
    ensure!(names.len() == 14, "{} alerts", names.len());
    let mut files = BTreeSet::new();
    for entry in std::fs::read_dir(docs.join("runbooks"))? {
        files.insert(entry?.file_name().to_string_lossy().into_owned());
    }
    ensure!(
        files == names,
        "runbooks without an alert: {:?}",
        files.difference(&names)
    );
    Ok(())
}

/// The alerts HyperConverged operator counts into KubeVirt's health: its recording rule
/// `kubevirt_hyperconverged_operator_health_status` (2 with a critical one firing, 1 with a
/// warning one), read from hyperconverged-cluster-operator's
/// `pkg/monitoring/hyperconverged/rules/recordingrules/operator.go` (`buildOperatorHealthStatusExpr`,
/// commit 03da3cff7).
const HCO_HEALTH_SELECTORS: &[&str] = &[
    r#"ALERTS{kubernetes_operator_part_of="kubevirt", alertstate="firing", operator_health_impact="critical"}"#,
    r#"ALERTS{kubernetes_operator_part_of="kubevirt", alertstate="firing", operator_health_impact="warning"}"#,
];

/// An add-on's alert must not turn KubeVirt's health (and the HyperConverged CR's) to warning or
/// critical: in no variant is one of ours selected by HCO's health rule, even while firing.
#[test]
fn no_alert_counts_towards_kubevirts_health() -> Result<()> {
    let mut count = 0;
    for manifests::Rendered { variant, docs } in manifests::rendered()? {
        if manifests::of_kind(docs, "PrometheusRule").is_empty() {
            continue;
        }
        let (spec, _) = manifests::prometheus_rules(docs)?;
        let alerts = spec["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .filter(|r| r["alert"].is_string());
        for alert in alerts {
            for selector in HCO_HEALTH_SELECTORS {
                ensure!(
                    !e2e::alerting::selects(selector, alert)?,
                    "{variant}: {} is selected by {selector}",
                    alert["alert"]
                );
            }
            count += 1;
        }
    }
    ensure!(count >= 14, "{count} alerts");
    Ok(())
}

/// Every collector metric the rules and dashboard use that a collector prints without a
/// KubeVirt pod around it (no QEMU, no downward API files) is in its real `-M` output.
#[test]
fn real_collector_output_has_the_metrics_the_rules_use() -> Result<()> {
    let binary = e2e::binaries::collector()?;
    let output = process::stdout(Command::new(binary).arg("-M"))?;
    let exprs = rule_and_dashboard_exprs(manifests::default_install()?)?;
    // Present only with QEMU, the downward API or KubeVirt v1.9 annotations.
    // The guest-memory metrics and pod_info need QEMU or the downward API as well.
    let conditional = [
        "kubevirt_pod_infra_qemu_thread_cpu_seconds_total",
        "kubevirt_pod_infra_memory_overhead_estimate_bytes",
        "kubevirt_pod_infra_compute_memory_bytes",
        "kubevirt_pod_infra_qemu_own_memory_bytes",
        "kubevirt_pod_infra_guest_memory_bytes",
        "kubevirt_pod_infra_pod_info",
        "kubevirt_pod_infra_memory_overhead_budget_bytes",
        "kube_metrics_collector_guest_memory_unexplained_bytes",
        "kube_metrics_collector_guest_memory_unmatched_backends",
        "kube_metrics_collector_guest_memory_unparsed_arguments",
        // Counts of the listeners, which `-M` does not open.
        "kube_metrics_collector_connections_total",
    ];
    let mut checked = 0;
    for name in exprs.iter().flat_map(|e| metric_names(e)) {
        if name.contains(':')
            || !name.starts_with("kube")
            || name.starts_with("kube_metrics_webhook_")
            || name.starts_with("kube_metrics_collector_relay_")
        {
            continue;
        }
        if conditional.contains(&name.as_str()) || EXTERNAL_METRICS.contains(&name.as_str()) {
            continue;
        }
        let printed = |suffix: char| output.contains(&format!("\n{name}{suffix}"));
        ensure!(printed('{') || printed(' '), "`-M` printed no {name}");
        checked += 1;
    }
    ensure!(checked >= 4, "only {checked} metrics checked");
    Ok(())
}

/// The recording rules are `contract::rules::RECORDINGS`, the definitions `kubectl kmc` inlines, in
/// the same order and to the letter. `UPDATE_GOLDEN=1` rewrites the group in the file from them.
#[test]
fn recording_rules_are_the_contracts() -> Result<()> {
    use kube_metrics_contract::rules::RECORDINGS;
    let path = e2e::workspace().join("manifests/components/monitoring/prometheusrule.yaml");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let text = std::fs::read_to_string(&path)?;
        std::fs::write(&path, manifests::with_recordings(&text, &RECORDINGS)?)?;
    }
    let docs = manifests::parse_documents(&std::fs::read_to_string(&path)?)?;
    let (_, rules) = manifests::prometheus_rules(&docs)?;
    let recorded: Vec<(&str, &str)> = rules
        .iter()
        .filter(|(name, _)| name.contains(':'))
        .map(|(name, expr)| (name.as_str(), expr.trim_end()))
        .collect();
    let wanted: Vec<(&str, &str)> = RECORDINGS.iter().map(|r| (r.record, r.expr)).collect();
    ensure!(
        recorded == wanted,
        "{} differs from contract/src/rules.rs; run UPDATE_GOLDEN=1 cargo test -p e2e --test monitoring recording_rules",
        path.display()
    );
    Ok(())
}
