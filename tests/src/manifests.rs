//! The manifests under `manifests/`, rendered with `kubectl kustomize`, and the questions the
//! tests ask of the rendered objects (kinds, images, rules, dashboard queries).
//!
//! Rendering every variant takes a couple of seconds (a copy of the tree, a certificate, one
//! kustomize run per variant), so [`rendered`] and [`default_install`] do it once per test binary
//! and every test reads the same objects.

use crate::process;
use anyhow::{Context as _, Result, anyhow, ensure};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use tempfile::TempDir;

/// The namespace every namespaced object is installed into.
pub const NAMESPACE: &str = "kube-metrics-collector";
/// The default install (`.`) and every base and overlay, relative to `manifests/`.
pub const VARIANTS: &[&str] = &[
    ".",
    "base",
    "overlays/certgen",
    "overlays/bring-your-own",
    "overlays/openshift",
    "overlays/minimal",
    "overlays/certgen-minimal",
    "overlays/kube-prometheus-stack",
    "overlays/node-collector",
];
/// The variants without prometheus-operator's objects (PodMonitors, rules, dashboard).
pub const WITHOUT_MONITORING: &[&str] = &["base", "overlays/minimal", "overlays/certgen-minimal"];
/// Fewer objects than this means a kustomization lost its resources.
const MIN_OBJECTS: usize = 10;
/// API groups that `kubernetes-validate` knows (everything else is a custom resource).
const CORE_GROUPS: &[&str] = &[
    "",
    "apps",
    "batch",
    "policy",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
    "admissionregistration.k8s.io",
];

/// The objects one variant renders to.
#[derive(Debug)]
pub struct Rendered {
    /// The variant's directory relative to `manifests/` (`.` for the default install).
    pub variant: &'static str,
    pub docs: Vec<Value>,
}

/// Every variant in [`VARIANTS`], rendered once per process; each has at least ten objects.
pub fn rendered() -> Result<&'static [Rendered]> {
    static RENDERED: OnceLock<Result<Vec<Rendered>, String>> = OnceLock::new();
    cached(&RENDERED, render_all)
}

/// The objects of the default install (`kubectl apply -k manifests/`), rendered once per process.
/// It needs no certificate files, so it is rendered from the repository itself.
pub fn default_install() -> Result<&'static [Value]> {
    static DEFAULT: OnceLock<Result<Vec<Value>, String>> = OnceLock::new();
    cached(&DEFAULT, || {
        kustomize(&crate::workspace().join("manifests"))
    })
}

/// What `render` returned the first time any caller asked.
fn cached<T>(
    cell: &'static OnceLock<Result<Vec<T>, String>>,
    render: impl FnOnce() -> Result<Vec<T>>,
) -> Result<&'static [T]> {
    // anyhow::Error is not Clone: keep the message, so every caller sees why rendering failed.
    cell.get_or_init(|| render().map_err(|error| format!("{error:#}")))
        .as_deref()
        .map_err(|error| anyhow!("rendering the manifests failed: {error}"))
}

/// A copy of `manifests/` in a temporary directory with bring-your-own certificate files in place
/// (the repository ships none), so that every variant renders.
pub fn tree_with_certs() -> Result<TempDir> {
    let dir = tempfile::tempdir()?;
    process::output(
        Command::new("cp")
            .arg("-r")
            .arg(crate::workspace().join("manifests"))
            .arg(dir.path()),
    )?;
    let certs = dir.path().join("manifests/overlays/bring-your-own/certs");
    let subject = format!("/CN=kube-metrics-webhook.{NAMESPACE}.svc");
    process::output(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec"])
            .args(["-pkeyopt", "ec_paramgen_curve:P-256"])
            .args(["-nodes", "-days", "2", "-subj", &subject])
            .args(["-keyout", "tls.key", "-out", "tls.crt"])
            .current_dir(&certs),
    )?;
    std::fs::copy(certs.join("tls.crt"), certs.join("ca.crt"))?;
    Ok(dir)
}

/// `kubectl kustomize dir`, parsed.
pub fn kustomize(dir: &Path) -> Result<Vec<Value>> {
    let output = process::output(Command::new("kubectl").arg("kustomize").arg(dir))?;
    parse_documents(&String::from_utf8_lossy(&output.stdout))
}

/// The objects of a multi-document YAML stream, empty documents left out.
pub fn parse_documents(yaml: &str) -> Result<Vec<Value>> {
    // kustomize separates documents with a bare `---` line.
    let mut docs = Vec::new();
    for text in format!("\n{yaml}").split("\n---\n") {
        let value: Value = serde_norway::from_str(text).context("not YAML")?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// `kind` of an object; empty when missing.
pub fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or("")
}

pub fn of_kind<'a>(docs: &'a [Value], wanted: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| kind(d) == wanted).collect()
}

/// True for a kind of Kubernetes itself, false for a custom resource.
pub fn is_core(doc: &Value) -> bool {
    let api = doc["apiVersion"].as_str().unwrap_or("");
    let group = api.rsplit_once('/').map_or("", |(group, _)| group);
    CORE_GROUPS.contains(&group)
}

/// The image of every container of every pod template, and the sidecar image the webhook injects
/// (its `KMW_IMAGE`).
pub fn container_images(docs: &[Value]) -> BTreeSet<String> {
    let mut images = BTreeSet::new();
    for doc in docs {
        let containers = doc["spec"]["template"]["spec"]["containers"].as_array();
        for container in containers.into_iter().flatten() {
            images.insert(container["image"].as_str().unwrap_or("").to_owned());
            for env in container["env"].as_array().into_iter().flatten() {
                if env["name"] == "KMW_IMAGE" {
                    images.insert(env["value"].as_str().unwrap_or("").to_owned());
                }
            }
        }
    }
    images
}

/// The spec of the (first) PrometheusRule, and the (record or alert name, expression) of each of
/// its rules.
pub fn prometheus_rules(docs: &[Value]) -> Result<(Value, Vec<(String, String)>)> {
    let rule = of_kind(docs, "PrometheusRule");
    let spec = rule.first().context("no PrometheusRule")?["spec"].clone();
    let mut out = Vec::new();
    for group in spec["groups"].as_array().into_iter().flatten() {
        for rule in group["rules"].as_array().into_iter().flatten() {
            let name = rule["record"]
                .as_str()
                .or(rule["alert"].as_str())
                .unwrap_or("");
            let expr = rule["expr"].as_str().unwrap_or("");
            out.push((name.to_owned(), expr.to_owned()));
        }
    }
    Ok((spec, out))
}

/// Every PromQL expression of the Grafana dashboard: the panels' targets, and the metric selector
/// of each `label_values(metric{...}, label)` variable.
pub fn dashboard_queries(docs: &[Value]) -> Result<Vec<String>> {
    let maps = of_kind(docs, "ConfigMap");
    let map = maps
        .iter()
        .find(|m| m["metadata"]["labels"]["grafana_dashboard"] == "1")
        .context("no ConfigMap labelled grafana_dashboard: \"1\"")?;
    let json = map["data"]
        .as_object()
        .and_then(|d| d.values().next())
        .context("empty")?;
    let dashboard: Value = serde_json::from_str(json.as_str().unwrap_or(""))?;
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            queries.push(target["expr"].as_str().unwrap_or("").to_owned());
        }
    }
    let variables = dashboard["templating"]["list"].as_array();
    for var in variables.into_iter().flatten() {
        // label_values(metric{...}, label): the second argument is a label, not a metric.
        if let Some(query) = var["query"]["query"].as_str() {
            let metric = query.trim_start_matches("label_values(");
            queries.push(
                metric
                    .rsplit_once(',')
                    .map_or(metric, |(m, _)| m)
                    .to_owned(),
            );
        }
    }
    Ok(queries)
}

/// Every metric name a markdown document lists in backticks (`kubevirt_*`,
/// `kube_metrics_collector_*`).
pub fn documented_metrics(markdown: &str) -> BTreeSet<String> {
    markdown
        .split('`')
        .filter(|w| w.starts_with("kubevirt_") || w.starts_with("kube_metrics_collector_"))
        .filter(|w| {
            w.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .map(String::from)
        .collect()
}

fn render_all() -> Result<Vec<Rendered>> {
    let tree = tree_with_certs()?;
    let mut rendered = Vec::new();
    for variant in VARIANTS {
        let docs = kustomize(&tree.path().join("manifests").join(variant))
            .with_context(|| (*variant).to_owned())?;
        ensure!(
            docs.len() >= MIN_OBJECTS,
            "{variant}: only {} objects",
            docs.len()
        );
        rendered.push(Rendered { variant, docs });
    }
    Ok(rendered)
}

/// Kubernetes releases the core objects are validated against (`kubernetes-validate --strict`).
pub const KUBERNETES_VERSIONS: &[&str] = &["1.33.0", "1.37.0"];

/// `kubernetes-validate --strict` over `docs`, each written to `<name>.json` so that a failure
/// names the object, for every release in [`KUBERNETES_VERSIONS`].
pub fn kubernetes_validate(docs: &[(String, &Value)]) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut files = Vec::new();
    for (name, doc) in docs {
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, serde_json::to_vec(doc)?)?;
        files.push(path);
    }
    for version in KUBERNETES_VERSIONS {
        crate::process::stdout(
            std::process::Command::new("kubernetes-validate")
                .args(["--strict", "--quiet", "-k", version])
                .args(&files),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;

/// `prometheusrule.yaml`'s text with the recording rules of its group `group` replaced by
/// `recordings`, each as `record` and a literal block `expr`: how the file is kept equal to the
/// contract. The records are the group's first rules; its alerts, if any, follow them and stay.
pub fn with_recordings(
    text: &str,
    group: &str,
    recordings: &[kube_metrics_contract::rules::Recording],
) -> Result<String> {
    const RULES: &str = "      rules:\n";
    let header = format!("\n    - name: {group}\n");
    let after_header = text
        .find(&header)
        .with_context(|| format!("no group {group}"))?
        + header.len();
    let start = after_header
        + text[after_header..]
            .find(RULES)
            .with_context(|| format!("no rules: in group {group}"))?
        + RULES.len();
    // From the newline that ends `rules:`, so that an alert right after it is found.
    let rest = &text[start - 1..];
    let end = [
        rest.find("\n        - alert: "),
        rest.find("\n    - name: "),
    ]
    .into_iter()
    .flatten()
    .min()
    .map_or(text.len(), |end| start + end);
    let mut block = String::from(
        "        # Generated from contract/src/rules.rs (UPDATE_GOLDEN=1 cargo test -p e2e --test monitoring\n        # recording_rules), which says why each one reads as it does.\n",
    );
    for r in recordings {
        block.push_str(&format!(
            "        - record: {}\n          expr: |\n",
            r.record
        ));
        for line in r.expr.lines() {
            block.push_str(&format!("            {line}\n").replace("            \n", "\n"));
        }
    }
    Ok(format!("{}{block}{}", &text[..start], &text[end..]))
}
