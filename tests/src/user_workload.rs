//! The OpenShift variant's monitoring, derived from the default install's by
//! `kube_metrics_contract::user_workload::rewrite`: its PrometheusRule, the console dashboard's
//! queries, and promtool test input with the series shaped as user-workload monitoring stores
//! them (docs/openshift.md). Text in, text out; the tests write the files with `UPDATE_GOLDEN=1`.

pub mod series;

use crate::manifests::NAMESPACE;
use anyhow::{Context as _, Result, anyhow, ensure};
use kube_metrics_contract::{metrics, rules, user_workload};
use serde_json::Value;

/// The default install's PrometheusRule, the source of the OpenShift one.
pub const DEFAULT_RULE: &str = "manifests/components/monitoring/prometheusrule.yaml";
/// The OpenShift variant's PrometheusRule: a patch that replaces the default one's groups.
pub const OPENSHIFT_RULE: &str = "manifests/components/openshift-monitoring/prometheusrule.yaml";
/// The web console's dashboard, whose queries are rewritten in place.
pub const CONSOLE_DASHBOARD: &str =
    "manifests/components/openshift-console-dashboard/console-dashboard.json";

/// `expr` reading relayed series as user-workload monitoring stores them, from the install
/// namespace.
pub fn rewrite(expr: &str) -> Result<String> {
    user_workload::rewrite(expr, NAMESPACE).map_err(|e| anyhow!("{e}: {expr}"))
}

const HEADER: &str = "\
# Generated from ../monitoring/prometheusrule.yaml: every selector of a collector family there reads
# the series the relay forwards as OpenShift's user-workload monitoring stores them (the VM's
# namespace and pod in exported_namespace/exported_pod, promoted only from this install's namespace;
# kube_metrics_contract::user_workload says how). Do not edit; after changing the default rules run
#   UPDATE_GOLDEN=1 cargo test -p e2e --test monitoring_openshift
# A strategic-merge patch of the default PrometheusRule: its groups replace the default ones, its
# name and annotations (the runbook base) stay. It must be evaluated by Thanos Ruler, with this
# namespace in namespacesWithoutLabelEnforcement (docs/openshift.md, \"Where the rules run\").
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: kube-metrics-collector
";

/// The OpenShift PrometheusRule from the default one's text: its `spec`, comments kept, with each
/// `expr: |` block and each query a template `printf`s rewritten.
pub fn openshift_rule(default_text: &str) -> Result<String> {
    let spec = default_text
        .find("\nspec:\n")
        .context("no spec: in the default PrometheusRule")?;
    let mut out = String::from(HEADER);
    let mut lines = default_text[spec + 1..].lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim_end().ends_with("expr: |") {
            out.push_str(line);
            out.push('\n');
            let indent = " ".repeat(line.len() - line.trim_start().len() + 2);
            let mut block = Vec::new();
            while let Some(next) = lines.next_if(|l| l.starts_with(&indent) || l.trim().is_empty())
            {
                block.push(next.strip_prefix(&indent).unwrap_or(""));
            }
            let blank = block
                .iter()
                .rev()
                .take_while(|l| l.trim().is_empty())
                .count();
            block.truncate(block.len() - blank);
            for l in rewrite(&block.join("\n"))?.lines() {
                if !l.is_empty() {
                    out.push_str(&indent);
                    out.push_str(l);
                }
                out.push('\n');
            }
            out.push_str(&"\n".repeat(blank));
        } else {
            out.push_str(&template_queries(line)?);
            out.push('\n');
        }
    }
    Ok(out)
}

/// `line` with the PromQL of each `printf "…"` (an alert template's query) rewritten. The
/// query sits in a Go string, so it writes PromQL's strings with single quotes; a query already
/// rewritten (it reads `exported_pod`) is left as it is.
fn template_queries(line: &str) -> Result<String> {
    const PRINTF: &str = "printf \"";
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find(PRINTF) {
        let start = at + PRINTF.len();
        let len = rest[start..].find('"').context("unterminated printf")?;
        let query = &rest[start..start + len];
        ensure!(
            !query.contains('\\'),
            "an escape in a template query: {query}"
        );
        if query.contains("exported_pod") {
            out.push_str(&rest[..start + len]);
            rest = &rest[start + len..];
            continue;
        }
        out.push_str(&rest[..start]);
        // The rewrite repeats each selector: `%[n]s` names printf's argument for each copy.
        let indexed = query
            .split("%s")
            .enumerate()
            .map(|(n, piece)| {
                if n == 0 {
                    piece.to_owned()
                } else {
                    format!("%[{n}]s{piece}")
                }
            })
            .collect::<String>();
        let rewritten = rewrite(&indexed)?;
        if rewritten == indexed {
            out.push_str(query);
        } else {
            out.push_str(&rewritten.replace('"', "'"));
        }
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The console dashboard's JSON text with each panel query rewritten and each variable that lists
/// `kubevirt_pod_infra_pod_info`'s labels reading its record instead (which carries the VM's
/// namespace and pod under either route), changed in place so that the rest of the file stays
/// as it is. Fails on a variable over another family: no record carries its labels.
pub fn console_dashboard(text: &str) -> Result<String> {
    let dashboard: Value = serde_json::from_str(text)?;
    let mut out = text.to_owned();
    let mut swap = |key: &str, old: &str, new: String| -> Result<()> {
        if old == new {
            return Ok(());
        }
        let from = format!("\"{key}\": {}", serde_json::to_string(old)?);
        ensure!(
            out.contains(&from),
            "{from} is not written as serde_json writes it"
        );
        out = out.replace(
            &from,
            &format!("\"{key}\": {}", serde_json::to_string(&new)?),
        );
        Ok(())
    };
    for expr in panel_queries(&dashboard) {
        swap("expr", &expr, rewrite(&expr)?)?;
    }
    let variables = dashboard["templating"]["list"].as_array();
    for variable in variables.into_iter().flatten() {
        for key in ["query", "definition"] {
            if let Some(query) = variable[key].as_str() {
                swap(key, query, variable_query(query)?)?;
            }
        }
    }
    Ok(out)
}

/// Every panel target's `expr`, rows' panels included.
pub fn panel_queries(dashboard: &Value) -> Vec<String> {
    fn walk(panels: Option<&Vec<Value>>, out: &mut Vec<String>) {
        for panel in panels.into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push(expr.to_owned());
                }
            }
            walk(panel["panels"].as_array(), out);
        }
    }
    let mut out = Vec::new();
    walk(dashboard["rows"].as_array(), &mut out);
    walk(dashboard["panels"].as_array(), &mut out);
    out
}

/// `label_values(kubevirt_pod_infra_pod_info{…}, label)` over the pod info's record.
fn variable_query(query: &str) -> Result<String> {
    let selector = query
        .strip_prefix("label_values(")
        .and_then(|q| q.rsplit_once(','))
        .map_or("", |(s, _)| s.trim());
    let metric = selector.split('{').next().unwrap_or("");
    if metrics::family(metric).is_none() {
        return Ok(query.to_owned());
    }
    ensure!(
        metric == metrics::POD_INFO,
        "variable `{query}` lists labels of {metric}, which no record carries"
    );
    Ok(query.replacen(metric, rules::POD_INFO, 1))
}
