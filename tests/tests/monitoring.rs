//! The monitoring the default install ships: the PrometheusRule passes `promtool check rules` and
//! its own `promtool test rules`, every alert has a runbook and leaves KubeVirt's health alone,
//! every metric the rules and the Grafana dashboard use is one the collector or the webhook
//! documents, and (where a bare collector can show it) one the real collector prints; every series
//! the rules, the alerts, both dashboards and `kubectl kmc` read is in the collector's default
//! metrics profile. Needs `kubectl` (with kustomize) and `promtool`, and root for the last.

use anyhow::{Context as _, Result, ensure};
use e2e::exposition::Sample;
use e2e::manifests;
use e2e::process;
use e2e::prometheus::promtool_test_rules;
use e2e::promql::{Matcher, metric_names, selectors};
use kube_metrics_contract::metrics::{self, Keep, Profile};
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
    let tests = e2e::workspace().join("manifests/components/monitoring/rules.test.yaml");
    let test_text = std::fs::read_to_string(&tests)?;
    let tested = promtool_test_rules(&spec, &test_text)?;
    ensure!(
        tested
            .checked
            .contains(&format!("SUCCESS: {} rules found", rules.len())),
        "{}",
        tested.checked
    );
    ensure!(tested.passed, "{}", tested.output);
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
    let mut names = BTreeSet::new();
    for alert in e2e::alerting::alerts(spec) {
        let name = alert["alert"].as_str().unwrap_or("");
        let cases = e2e::alerting::test_cases(test_text, name);
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
        for alert in e2e::alerting::alerts(&spec) {
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

/// The recording rules are `contract::rules::RECORDINGS` (and `TRENDS`, in their group of their
/// interval), the definitions `kubectl kmc` inlines, in the same order and to the letter.
/// `UPDATE_GOLDEN=1` rewrites the groups in the file from them.
#[test]
fn recording_rules_are_the_contracts() -> Result<()> {
    use kube_metrics_contract::rules::{
        GROUP, RECORDINGS, Recording, TRENDS, TRENDS_GROUP, TRENDS_INTERVAL,
    };
    let groups: [(&str, &[Recording]); 2] = [(GROUP, &RECORDINGS), (TRENDS_GROUP, &TRENDS)];
    let path = e2e::workspace().join("manifests/components/monitoring/prometheusrule.yaml");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let mut text = std::fs::read_to_string(&path)?;
        for (group, recordings) in groups {
            text = manifests::with_recordings(&text, group, recordings)?;
        }
        std::fs::write(&path, text)?;
    }
    let docs = manifests::parse_documents(&std::fs::read_to_string(&path)?)?;
    let (spec, _) = manifests::prometheus_rules(&docs)?;
    let in_file = spec["groups"].as_array().context("no groups")?;
    for (group, recordings) in groups {
        let found = in_file
            .iter()
            .find(|g| g["name"] == group)
            .with_context(|| format!("no group {group}"))?;
        let recorded: Vec<(&str, &str)> = found["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| Some((r["record"].as_str()?, r["expr"].as_str()?.trim_end())))
            .collect();
        let wanted: Vec<(&str, &str)> = recordings.iter().map(|r| (r.record, r.expr)).collect();
        ensure!(
            recorded == wanted,
            "{group} in {} differs from contract/src/rules.rs; run UPDATE_GOLDEN=1 cargo test -p e2e --test monitoring recording_rules",
            path.display()
        );
    }
    let trends = in_file.iter().find(|g| g["name"] == TRENDS_GROUP);
    ensure!(
        trends.is_some_and(|g| g["interval"] == TRENDS_INTERVAL),
        "{TRENDS_GROUP} is not evaluated every {TRENDS_INTERVAL}"
    );
    Ok(())
}

/// Who reads what: `(reader, PromQL)` for every rule (its expression and the queries its
/// annotations run), every query of both dashboards (panels, variables, annotations), and every
/// query `kubectl kmc` sends (the contract's rules inlined, and its own selectors, read from its
/// source's string literals).
fn readers() -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let (spec, _) = manifests::prometheus_rules(manifests::default_install()?)?;
    let printf = regex::Regex::new(r#"printf "([^"]*)""#)?;
    for group in spec["groups"].as_array().into_iter().flatten() {
        for rule in group["rules"].as_array().into_iter().flatten() {
            let name = rule["record"]
                .as_str()
                .or(rule["alert"].as_str())
                .unwrap_or("");
            out.push((
                name.to_owned(),
                rule["expr"].as_str().unwrap_or("").to_owned(),
            ));
            for text in rule["annotations"]
                .as_object()
                .into_iter()
                .flat_map(|a| a.values())
            {
                for query in printf.captures_iter(text.as_str().unwrap_or("")) {
                    let query = query.get(1).map_or("", |q| q.as_str()).replace("%s", "x");
                    out.push((format!("{name} (annotation)"), query));
                }
            }
        }
    }
    for path in [
        "manifests/components/monitoring/dashboard.json",
        "manifests/components/openshift-console-dashboard/console-dashboard.json",
    ] {
        let dashboard = e2e::scale::measure::dashboard(&e2e::workspace().join(path))?;
        for query in dashboard.queries {
            out.push((format!("{path}: {}", query.panel), query.expr));
        }
    }
    let records = kube_metrics_contract::rules::RECORDINGS
        .iter()
        .chain(kube_metrics_contract::rules::TRENDS.iter());
    for rule in records {
        let expr = kube_metrics_contract::rules::expand(rule.record).context(rule.record)?;
        out.push((format!("kubectl kmc: {}", rule.record), expr));
    }
    out.extend(kmc_queries()?);
    Ok(out)
}

/// The string literals of `kubectl kmc`'s fleet, `top`, `recommend` and `check` that use a
/// collector family in PromQL: its name followed by a selector, a range, a parenthesis or the
/// literal's end (its messages name families too, followed by a space).
fn kmc_queries() -> Result<Vec<(String, String)>> {
    let src = e2e::workspace().join("kubectl-kmc/src");
    let mut files = vec![src.join("fleet.rs"), src.join("top.rs")];
    let mut dirs = vec![src.join("recommend"), src.join("check")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let literal = regex::Regex::new(r##"r#"((?s).*?)"#|"((?:[^"\\]|\\.)*)""##)?;
    let used = regex::Regex::new(r"(kubevirt_pod_infra|kube_metrics_collector)_[a-z_]+([{\[)]|$)")?;
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        for found in literal.captures_iter(&text) {
            let raw = found.get(1).map(|m| m.as_str().to_owned());
            let quoted = found.get(2).map(|m| m.as_str().replace("\\\"", "\""));
            let Some(query) = raw.or(quoted) else {
                continue;
            };
            if used.is_match(&query) {
                let query = query.replace("{{", "{").replace("}}", "}");
                out.push((format!("kubectl kmc: {}", file.display()), query));
            }
        }
    }
    ensure!(
        out.len() >= 3,
        "only {} kubectl kmc queries found",
        out.len()
    );
    Ok(out)
}

/// Whether `sample` is selected by `matchers`, judged on the labels its family carries (the
/// ones the relay and Prometheus add are the same in every profile).
fn selected(sample: &Sample, matchers: &[Matcher]) -> Result<bool> {
    let family = metrics::family(&sample.name).context("no family")?;
    for m in matchers
        .iter()
        .filter(|m| family.labels.contains(&m.label.as_str()))
    {
        let value = sample.label(&m.label);
        let matched = match m.op.as_str() {
            "=" => value == m.value,
            "!=" => value != m.value,
            "=~" | "!~" => {
                let re = regex::Regex::new(&format!("^(?:{})$", m.value))?;
                re.is_match(value) == (m.op == "=~")
            }
            other => anyhow::bail!("matcher {other}"),
        };
        if !matched {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The default profile carries every series that the rules, alerts, dashboards and `kubectl kmc`
/// select from a real launcher pod's full output (KubeVirt's five processes and virt-tail, the
/// collector serving as injected); a health gauge the profile writes only when not 0 is read only
/// as `> 0`, for which absent and 0 are one.
#[test]
fn every_series_the_rules_dashboards_and_kmc_read_is_in_the_default_profile() -> Result<()> {
    let full = e2e::scale::launcher_template(Profile::Full)?;
    let default = e2e::scale::launcher_template(Profile::Default)?;
    let key = |s: &Sample| format!("{}{:?}", s.name, s.labels);
    let in_default: BTreeSet<String> = default.iter().map(key).collect();
    let vm = full
        .iter()
        .find(|s| s.name == metrics::POD_INFO)
        .map(|s| s.label("name").to_owned())
        .context("no pod_info")?;
    let variables = [
        ("$__rate_interval", "5m".to_owned()),
        ("$cluster", ".*".to_owned()),
        ("$namespace", ".*".to_owned()),
        ("$node", ".*".to_owned()),
        ("$vm", vm),
    ];
    let (mut checked, mut families) = (0, BTreeSet::new());
    for (reader, expr) in readers()? {
        let expr = e2e::scale::measure::substitute(&expr, &variables);
        for selector in selectors(&expr) {
            if metrics::family(&selector.name).is_none() {
                continue;
            }
            let picked: Vec<&Sample> = full
                .iter()
                .filter(|s| s.name == selector.name)
                .filter(|s| selected(s, &selector.matchers).unwrap_or(true))
                .collect();
            for sample in &picked {
                if in_default.contains(&key(sample)) {
                    continue;
                }
                let keep = Profile::Default.keeps(&sample.name);
                // A gauge written only when not 0, read as `> 0`: absent is 0.
                let above_zero =
                    regex::Regex::new(&format!(r"{}(\{{[^}}]*\}})?\) > 0", sample.name))?;
                let non_zero = keep == Some(Keep::NonZero) && above_zero.is_match(&expr);
                // A role that never ran, read beside a role written whether or not it runs.
                let absent_role = matches!(keep, Some(Keep::RolesSeenAnd(always))
                    if picked.iter().any(|s| always.contains(&s.label("process"))));
                ensure!(
                    sample.value == 0.0 && (non_zero || absent_role),
                    "{reader} reads {} {:?}, which the default profile does not write:\n{expr}",
                    sample.name,
                    sample.labels
                );
            }
            ensure!(
                !picked.is_empty(),
                "{reader}: {} selects nothing of a launcher pod:\n{expr}",
                selector.name
            );
            families.insert(selector.name);
            checked += 1;
        }
    }
    ensure!(checked >= 60, "only {checked} selectors checked");
    // Everything the default profile writes is read by someone.
    let read: BTreeSet<&str> = families.iter().map(String::as_str).collect();
    let written: BTreeSet<&str> = metrics::DEFAULT_PROFILE.iter().map(|(f, _)| *f).collect();
    ensure!(
        read == written,
        "written but not read: {:?}; read but not written: {:?}",
        written.difference(&read),
        read.difference(&written)
    );
    Ok(())
}
