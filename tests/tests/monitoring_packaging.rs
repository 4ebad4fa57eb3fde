//! How the monitoring is packaged for each kind of cluster: every PodMonitor and PrometheusRule of
//! every variant passes its CRD's schema (tests/fixtures/crds/), kube-prometheus-stack's `release`
//! label and the runbook base can be changed from an overlay as the manifests document, the
//! Grafana dashboard uses only real units and Grafana's rate interval, and the OpenShift variant
//! ships a web-console dashboard with the same queries instead of Grafana's, in the administrator
//! and developer views, on user-workload monitoring. Needs `kubectl` (with kustomize), `openssl` and `python3` with `jsonschema`.

use anyhow::{Context as _, Result, ensure};
use e2e::manifests::{self, of_kind};
use e2e::{alerting, crd, overlay};
use serde_json::Value;
use std::collections::BTreeSet;

/// Units Grafana knows that the dashboard may use.
const GRAFANA_UNITS: &[&str] = &["bytes", "short", "none", "percentunit", "s", "cps"];
/// Panel types the OpenShift console renders.
const CONSOLE_PANELS: &[&str] = &["graph", "singlestat", "table", "row"];

fn monitoring_objects(docs: &[Value]) -> Vec<&Value> {
    let mut objects = of_kind(docs, "PodMonitor");
    objects.extend(of_kind(docs, "PrometheusRule"));
    objects
}

#[test]
fn monitoring_resources_pass_their_crd_schemas_in_every_variant() -> Result<()> {
    let mut all: Vec<Value> = Vec::new();
    for manifests::Rendered { variant, docs } in manifests::rendered()? {
        let objects = monitoring_objects(docs);
        // The node collector's component brings its own PodMonitor.
        let want = if *variant == "overlays/node-collector" {
            5
        } else {
            4
        };
        ensure!(
            objects.len() == want || manifests::WITHOUT_MONITORING.contains(variant),
            "{variant}: {} monitoring objects",
            objects.len()
        );
        all.extend(objects.into_iter().cloned());
    }
    let validated = crd::validate(&all)?;
    ensure!(
        validated == all.len() && validated >= 20,
        "{validated} of {} validated",
        all.len()
    );
    Ok(())
}

#[test]
fn kube_prometheus_stack_release_label_is_added_and_replaceable() -> Result<()> {
    let kps = &manifests::rendered()?
        .iter()
        .find(|r| r.variant == "overlays/kube-prometheus-stack")
        .context("no kube-prometheus-stack variant")?
        .docs;
    let releases = |docs: &[Value]| -> BTreeSet<String> {
        monitoring_objects(docs)
            .iter()
            .map(|d| {
                d["metadata"]["labels"]["release"]
                    .as_str()
                    .unwrap_or("none")
                    .to_owned()
            })
            .collect()
    };
    ensure!(monitoring_objects(kps).len() == 4);
    ensure!(
        releases(kps) == BTreeSet::from(["kube-prometheus-stack".to_owned()]),
        "{:?}",
        releases(kps)
    );
    // Only the monitoring objects get it: no workload selector may change.
    let others = kps
        .iter()
        .filter(|d| !d["metadata"]["labels"]["release"].is_null())
        .count();
    ensure!(others == 4, "{others} objects labelled");
    // The override the component documents.
    let mine = overlay::render(
        "overlays/kube-prometheus-stack",
        "patches:\n  - target:\n      group: monitoring.coreos.com\n      kind: PodMonitor|PrometheusRule\n    \
         patch: |-\n      - op: replace\n        path: /metadata/labels/release\n        value: my-release\n",
    )?;
    ensure!(
        releases(&mine) == BTreeSet::from(["my-release".to_owned()]),
        "{:?}",
        releases(&mine)
    );
    crd::validate(&mine)?;
    Ok(())
}

#[test]
fn runbook_base_is_replaceable_from_an_overlay() -> Result<()> {
    let base = "https://wiki.example.com/kvm/runbooks";
    // What README's "Runbook links" tells an admin to write: patch the annotation, then replace.
    let replacements = std::fs::read_to_string(
        e2e::workspace().join("manifests/components/monitoring/runbook-url.yaml"),
    )?;
    let replacements: String = replacements
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("  {l}\n"))
        .collect();
    let rest = format!(
        "patches:\n  - target:\n      kind: PrometheusRule\n      name: kube-metrics-collector\n    \
         patch: |-\n      - op: replace\n        path: /metadata/annotations/kube-metrics-collector.io~1runbook-base-url\n        \
         value: {base}\nreplacements:\n{replacements}"
    );
    let docs = overlay::render(".", &rest)?;
    ensure!(alerting::runbook_base(&docs)? == base);
    let (spec, _) = manifests::prometheus_rules(&docs)?;
    let mut count = 0;
    for alert in e2e::alerting::alerts(&spec) {
        let name = alert["alert"].as_str().unwrap_or("");
        let url = alert["annotations"]["runbook_url"].as_str().unwrap_or("");
        ensure!(url == format!("{base}/{name}.md"), "{name}: {url}");
        count += 1;
    }
    ensure!(count == 14, "{count} alerts");
    Ok(())
}

fn dashboard_file(path: &str) -> Result<Value> {
    let text = std::fs::read_to_string(e2e::workspace().join(path))?;
    Ok(serde_json::from_str(&text)?)
}

/// Panels of either format (Grafana's `panels`, the console's `rows[].panels`).
fn panels(dashboard: &Value) -> Vec<&Value> {
    let rows = dashboard["rows"].as_array().into_iter().flatten();
    dashboard["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(rows.flat_map(|r| r["panels"].as_array().into_iter().flatten()))
        .collect()
}

fn exprs(panel: &Value) -> Vec<String> {
    panel["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t["expr"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn grafana_dashboard_uses_real_units_rate_intervals_and_namespaces() -> Result<()> {
    let dashboard = dashboard_file("manifests/components/monitoring/dashboard.json")?;
    let panels = panels(&dashboard);
    ensure!(panels.len() >= 15, "{} panels", panels.len());
    for panel in &panels {
        let title = panel["title"].as_str().unwrap_or("?");
        let unit = panel["fieldConfig"]["defaults"]["unit"]
            .as_str()
            .unwrap_or("");
        ensure!(GRAFANA_UNITS.contains(&unit), "{title}: unit {unit:?}");
        // One unit per panel: errors/s and seconds never share an axis.
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or("");
            ensure!(
                !expr.contains("[5m]"),
                "{title}: {expr} does not use $__rate_interval"
            );
            let legend = target["legendFormat"].as_str().unwrap_or("");
            let per_vm = expr.contains("namespace=~\"$namespace\"");
            ensure!(
                !per_vm || legend.is_empty() || legend.contains("{{namespace}}"),
                "{title}: legend {legend:?} merges same-named VMs of two namespaces"
            );
        }
    }
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str())
        .collect();
    ensure!(
        variables == ["datasource", "cluster", "namespace", "node", "vm"],
        "{variables:?}"
    );
    let annotations = dashboard["annotations"]["list"]
        .as_array()
        .context("no annotations")?;
    ensure!(
        annotations
            .iter()
            .any(|a| a["expr"].as_str().unwrap_or("").contains("OOMKilled")),
        "no OOM annotation"
    );
    Ok(())
}

#[test]
fn openshift_ships_a_console_dashboard_on_user_workload_monitoring() -> Result<()> {
    let rendered = manifests::rendered()?;
    let openshift = rendered
        .iter()
        .find(|r| r.variant == "overlays/openshift")
        .context("no openshift variant")?;
    let maps = of_kind(&openshift.docs, "ConfigMap");
    ensure!(
        !maps
            .iter()
            .any(|m| m["metadata"]["labels"]["grafana_dashboard"] == "1"),
        "the OpenShift variant ships Grafana's dashboard"
    );
    let console: Vec<&&Value> = maps
        .iter()
        .filter(|m| m["metadata"]["labels"]["console.openshift.io/dashboard"] == "true")
        .collect();
    let [map] = console.as_slice() else {
        anyhow::bail!("{} console dashboards", console.len());
    };
    ensure!(map["metadata"]["namespace"] == "openshift-config-managed");
    // Without it the console lists the dashboard only in the administrator view.
    ensure!(
        map["metadata"]["labels"]["console.openshift.io/odc-dashboard"] == "true",
        "the console dashboard is missing from the developer view"
    );
    let json = map["data"]
        .as_object()
        .and_then(|d| d.values().next())
        .context("empty")?;
    let dashboard: Value = serde_json::from_str(json.as_str().unwrap_or(""))?;
    let grafana = dashboard_file("manifests/components/monitoring/dashboard.json")?;
    // The console's read relayed series as user-workload monitoring stores them too.
    let mut grafana_exprs = BTreeSet::new();
    for panel in panels(&grafana) {
        for expr in exprs(panel) {
            grafana_exprs.insert(e2e::user_workload::rewrite(
                &expr.replace("$__rate_interval", "5m"),
            )?);
        }
    }
    let mut console_exprs = BTreeSet::new();
    for panel in panels(&dashboard) {
        let kind = panel["type"].as_str().unwrap_or("");
        ensure!(CONSOLE_PANELS.contains(&kind), "console panel type {kind}");
        console_exprs.extend(exprs(panel));
    }
    ensure!(
        console_exprs == grafana_exprs,
        "the two dashboards query different things"
    );
    // Platform monitoring is for OpenShift's own namespaces.
    for doc in &openshift.docs {
        let labels = &doc["metadata"]["labels"];
        ensure!(
            labels["openshift.io/cluster-monitoring"].is_null(),
            "{}",
            doc["metadata"]["name"]
        );
        let subjects = doc["subjects"].as_array().into_iter().flatten();
        for subject in subjects {
            ensure!(
                subject["name"] != "prometheus-k8s",
                "prometheus-k8s is granted access"
            );
        }
    }
    Ok(())
}
