//! A collector the relay leaves out for going over a cap is seen by an alert: the expression of
//! `KubeMetricsCollectorRelayTargetsDropped`, taken from the rendered PrometheusRule, selects the
//! relay's cap reasons (it names the reasons it leaves to `KubeMetricsCollectorRelayTargetsFailing`
//! rather than those it takes). Evaluated by `promtool test rules`. Needs `kubectl` and `promtool`.

use anyhow::{Context as _, Result, ensure};
use e2e::manifests;

/// The reasons the relay counts a collector under when it goes over a cap.
const CAP_REASONS: [&str; 3] = ["too_many_series", "output_too_large", "answer_full"];
/// A fetch failure, which the other alert reports through the `failed` state.
const FETCH_REASON: &str = "too_large";
const ALERT: &str = "KubeMetricsCollectorRelayTargetsDropped";

#[test]
fn the_dropped_targets_alert_selects_the_relays_cap_reasons() -> Result<()> {
    e2e::preflight(&["kubectl", "promtool"])?;
    let (spec, rules) = manifests::prometheus_rules(manifests::default_install()?)?;
    let (_, expr) = rules
        .iter()
        .find(|(name, _)| name == ALERT)
        .with_context(|| format!("no {ALERT}"))?;
    let tested = e2e::prometheus::promtool_test_rules(&spec, &unit_test(expr))?;
    ensure!(tested.passed, "{}", tested.output);
    Ok(())
}

/// One relay pod per reason, each counting a target a minute; the alert's expression must give
/// one series for each cap reason and none for the fetch failure.
fn unit_test(expr: &str) -> String {
    let mut series = String::new();
    let mut samples = String::new();
    for (i, reason) in CAP_REASONS.iter().chain([&FETCH_REASON]).enumerate() {
        series.push_str(&format!(
            "      - series: 'kube_metrics_collector_relay_target_failures_total{{namespace=\"kube-metrics-collector\",pod=\"relay-{i}\",reason=\"{reason}\"}}'\n        values: '0+1x40'\n"
        ));
    }
    for reason in CAP_REASONS {
        samples.push_str(&format!(
            "          - labels: '{{reason=\"{reason}\"}}'\n            value: 1\n"
        ));
    }
    let expr = format!("count by (reason) ({})", expr.trim()).replace('\n', " ");
    format!(
        "rule_files:\n  - rules.yaml\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n{series}    promql_expr_test:\n      - expr: '{}'\n        eval_time: 30m\n        exp_samples:\n{samples}",
        expr.replace('\'', "''")
    )
}
