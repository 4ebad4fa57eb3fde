//! What the tests require of every alert of the PrometheusRule: the routing labels of an add-on
//! that KubeVirt's health leaves out, its runbook base, and the shape of its runbook. No I/O.

use anyhow::{Context as _, Result, ensure};
use serde_json::Value;

/// The annotation of the PrometheusRule that holds the runbook base URL.
pub const RUNBOOK_BASE_ANNOTATION: &str = "kube-metrics-collector.io/runbook-base-url";
/// `kubernetes_operator_part_of` and `kubernetes_operator_component` of every alert: the names
/// KubeVirt's own alerts use for routing, with our name, since HCO counts alerts part of `kubevirt`
/// into KubeVirt's health.
pub const OPERATOR: &str = "kube-metrics-collector";
/// The sections of a runbook, in order, as in KubeVirt's (kubevirt/monitoring, `docs/runbooks/`).
pub const RUNBOOK_SECTIONS: &[&str] = &["Meaning", "Impact", "Diagnosis", "Mitigation"];
/// Labels an alert of ours never carries: HCO folds `operator_health_impact` into KubeVirt's health.
const HEALTH_LABELS: &[&str] = &["operator_health_impact"];

/// The alert rules of a PrometheusRule's `spec`, group by group.
pub fn alerts(spec: &Value) -> impl Iterator<Item = &Value> {
    spec["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .filter(|r| r["alert"].is_string())
}

/// How many of a promtool test file's expected alerts name `alert`: a test of it firing and one of
/// it silent (`exp_alerts: []`) each name it once.
pub fn test_cases(test_text: &str, alert: &str) -> usize {
    test_text.matches(&format!("alertname: {alert}\n")).count()
}

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

/// An alert rule carries `severity` and the two `kubernetes_operator_*` labels naming this add-on,
/// and no health impact.
pub fn check_alert_labels(alert: &Value) -> Result<()> {
    let label = |name: &str| alert["labels"][name].as_str().unwrap_or("");
    ensure!(
        ["warning", "critical", "info"].contains(&label("severity")),
        "severity {:?}",
        label("severity")
    );
    ensure!(label("kubernetes_operator_part_of") == OPERATOR);
    ensure!(label("kubernetes_operator_component") == OPERATOR);
    for name in HEALTH_LABELS {
        ensure!(alert["labels"][name].is_null(), "label {name}");
    }
    Ok(())
}

/// A runbook is titled with its alert's name and has each of [`RUNBOOK_SECTIONS`], in order, each
/// with some text.
pub fn check_runbook(alert: &str, text: &str) -> Result<()> {
    ensure!(
        text.starts_with(&format!("# {alert}\n")),
        "not titled # {alert}"
    );
    let headings: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("## ")).collect();
    ensure!(headings == RUNBOOK_SECTIONS, "sections {headings:?}");
    for section in text.split("\n## ").skip(1) {
        let (heading, body) = section.split_once('\n').unwrap_or((section, ""));
        ensure!(!body.trim().is_empty(), "empty section {heading}");
    }
    Ok(())
}

/// Whether a series selector of equality matchers (`ALERTS{a="x", b="y"}`, as written in a rule)
/// selects the firing alert `alert`: every matcher but `alertstate` must equal one of its labels
/// (Prometheus adds `alertstate`, and `alertname` is the rule's name).
pub fn selects(selector: &str, alert: &Value) -> Result<bool> {
    let matchers = selector
        .strip_prefix("ALERTS{")
        .and_then(|s| s.strip_suffix('}'))
        .with_context(|| format!("not an ALERTS selector: {selector}"))?;
    for matcher in matchers.split(',').map(str::trim) {
        let (name, value) = matcher
            .split_once("=\"")
            .filter(|(n, _)| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .and_then(|(n, v)| Some((n, v.strip_suffix('"')?)))
            .with_context(|| format!("not an equality matcher: {matcher}"))?;
        let actual = match name {
            "alertstate" => Some("firing"),
            "alertname" => alert["alert"].as_str(),
            _ => alert["labels"][name].as_str(),
        };
        if actual != Some(value) {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mk_alert(labels: Value) -> Value {
        json!({"alert": "Alert0", "labels": labels})
    }

    #[test]
    fn routing_labels_without_health_impact_are_required() {
        let good = mk_alert(json!({"severity": "warning",
            "kubernetes_operator_part_of": OPERATOR, "kubernetes_operator_component": OPERATOR}));
        check_alert_labels(&good).unwrap();
        let mut impact = good.clone();
        impact["labels"]["operator_health_impact"] = json!("none");
        assert!(check_alert_labels(&impact).is_err());
        let mut kubevirt = good.clone();
        kubevirt["labels"]["kubernetes_operator_part_of"] = json!("kubevirt");
        assert!(check_alert_labels(&kubevirt).is_err());
        assert!(check_alert_labels(&mk_alert(json!({"severity": "warning"}))).is_err());
    }

    #[test]
    fn selector_matches_only_when_every_matcher_does() {
        let selector = r#"ALERTS{kubernetes_operator_part_of="kubevirt", alertstate="firing", operator_health_impact="warning"}"#;
        let kubevirts = mk_alert(json!({"kubernetes_operator_part_of": "kubevirt",
            "operator_health_impact": "warning"}));
        assert!(selects(selector, &kubevirts).unwrap());
        let mut none = kubevirts.clone();
        none["labels"]["operator_health_impact"] = json!("none");
        assert!(!selects(selector, &none).unwrap());
        assert!(!selects(selector, &mk_alert(json!({}))).unwrap());
        assert!(selects("ALERTS{a=~\"x\"}", &kubevirts).is_err());
        assert!(selects("ALERTS{a!=\"x\"}", &kubevirts).is_err());
    }

    #[test]
    fn runbook_needs_the_title_and_the_four_sections_in_order() {
        let good = "# Alert0\n\n## Meaning\n\nm\n\n## Impact\n\ni\n\n## Diagnosis\n\nd\n\n## Mitigation\n\nx\n";
        check_runbook("Alert0", good).unwrap();
        assert!(check_runbook("Alert1", good).is_err());
        let swapped = good.replace("## Impact", "## Other");
        assert!(check_runbook("Alert0", &swapped).is_err());
        let empty = good.replace("\n\nx\n", "\n");
        assert!(check_runbook("Alert0", &empty).is_err());
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
