//! What the tests require of every alert of the PrometheusRule: the labels KubeVirt's own alerts
//! carry (KubeVirt's `pkg/monitoring/rules/alerts/alerts.go`), and its runbook base. No I/O.

use anyhow::{Context as _, Result, ensure};
use serde_json::Value;

/// The annotation of the PrometheusRule that holds the runbook base URL.
pub const RUNBOOK_BASE_ANNOTATION: &str = "kube-metrics-collector.io/runbook-base-url";
/// Values an alert's `operator_health_impact` may take (KubeVirt uses these three).
const HEALTH_IMPACTS: &[&str] = &["none", "warning", "critical"];

/// The runbook base of the (first) PrometheusRule in `docs`.
pub fn runbook_base(docs: &[Value]) -> Result<String> {
    let rule = docs
        .iter()
        .find(|d| d["kind"] == "PrometheusRule")
        .context("no PrometheusRule")?;
    let base = rule["metadata"]["annotations"][RUNBOOK_BASE_ANNOTATION]
        .as_str()
        .with_context(|| format!("no annotation {RUNBOOK_BASE_ANNOTATION}"))?;
    Ok(base.to_owned())
}

/// An alert rule carries `severity`, `operator_health_impact` and the two
/// `kubernetes_operator_*` labels, as KubeVirt's alerts do.
pub fn check_alert_labels(alert: &Value) -> Result<()> {
    let label = |name: &str| alert["labels"][name].as_str().unwrap_or("");
    ensure!(
        ["warning", "critical", "info"].contains(&label("severity")),
        "severity {:?}",
        label("severity")
    );
    ensure!(
        HEALTH_IMPACTS.contains(&label("operator_health_impact")),
        "operator_health_impact {:?}",
        label("operator_health_impact")
    );
    ensure!(label("kubernetes_operator_part_of") == "kubevirt");
    ensure!(label("kubernetes_operator_component") == "kube-metrics-collector");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_like_kubevirts_are_required() {
        let good = json!({"labels": {"severity": "warning", "operator_health_impact": "none",
            "kubernetes_operator_part_of": "kubevirt",
            "kubernetes_operator_component": "kube-metrics-collector"}});
        check_alert_labels(&good).unwrap();
        let mut bad = good.clone();
        bad["labels"]["operator_health_impact"] = json!("high");
        assert!(check_alert_labels(&bad).is_err());
        assert!(check_alert_labels(&json!({"labels": {"severity": "warning"}})).is_err());
    }

    #[test]
    fn runbook_base_is_read_from_the_rule() {
        let docs = [
            json!({"kind": "Service"}),
            json!({"kind": "PrometheusRule", "metadata": {"annotations": {RUNBOOK_BASE_ANNOTATION: "https://runbooks.example.test/kmc"}}}),
        ];
        assert_eq!(
            runbook_base(&docs).unwrap(),
            "https://runbooks.example.test/kmc"
        );
        assert!(runbook_base(&docs[..1]).is_err());
    }
}
