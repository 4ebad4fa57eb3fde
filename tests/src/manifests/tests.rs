//! The rendered manifests' readers on small objects: documents, kinds, images.

use super::*;
use serde_json::json;

fn deployment(image: &str, env: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": image, "env": env}]}}}})
}

#[test]
fn documents_are_split_on_bare_separators_and_empty_ones_dropped() {
    let docs = parse_documents("a: 1\n---\n---\nkind: Service\nb: '---'\n").unwrap();
    assert_eq!(
        docs,
        [json!({"a": 1}), json!({"kind": "Service", "b": "---"})]
    );
    assert!(parse_documents("a: [1\n").is_err());
}

#[test]
fn core_kinds_are_told_from_custom_resources() {
    assert!(is_core(&json!({"apiVersion": "v1", "kind": "Service"})));
    assert!(is_core(&json!({"apiVersion": "apps/v1"})));
    assert!(is_core(
        &json!({"apiVersion": "admissionregistration.k8s.io/v1"})
    ));
    assert!(!is_core(&json!({"apiVersion": "monitoring.coreos.com/v1"})));
    assert!(!is_core(&json!({"apiVersion": "cert-manager.io/v1"})));
}

#[test]
fn images_include_the_injected_sidecar() {
    let docs = [
        deployment(
            "a:1",
            json!([{"name": "KMW_IMAGE", "value": "b:2"}, {"name": "X", "value": "c:3"}]),
        ),
        deployment("a:1", json!(null)),
        json!({"kind": "Service", "spec": {}}),
    ];
    let want: BTreeSet<String> = ["a:1".to_owned(), "b:2".to_owned()].into();
    assert_eq!(container_images(&docs), want);
    assert_eq!(of_kind(&docs, "Deployment").len(), 2);
    assert_eq!(kind(&docs[2]), "Service");
}

#[test]
fn rules_are_listed_by_record_or_alert_name() {
    let docs = [json!({"kind": "PrometheusRule", "spec": {"groups": [
        {"name": "g", "rules": [{"record": "a:b", "expr": "sum(x)"}, {"alert": "Hot", "expr": "y > 1"}]}
    ]}})];
    let (spec, rules) = prometheus_rules(&docs).unwrap();
    assert_eq!(spec["groups"][0]["name"], "g");
    let want = [("a:b", "sum(x)"), ("Hot", "y > 1")].map(|(n, e)| (n.to_owned(), e.to_owned()));
    assert_eq!(rules, want);
    assert!(prometheus_rules(&[]).is_err());
}

#[test]
fn dashboard_queries_take_panel_targets_and_variable_metrics() {
    let dashboard = json!({
        "panels": [{"targets": [{"expr": "rate(a[5m])"}]}],
        "templating": {"list": [{"query": {"query": "label_values(b{x=\"1\"}, pod)"}}]}
    });
    let docs = [
        json!({"kind": "ConfigMap", "metadata": {"labels": {"grafana_dashboard": "1"}},
        "data": {"d.json": dashboard.to_string()}}),
    ];
    assert_eq!(
        dashboard_queries(&docs).unwrap(),
        ["rate(a[5m])", "b{x=\"1\"}"]
    );
    assert!(dashboard_queries(&[json!({"kind": "ConfigMap"})]).is_err());
}

#[test]
fn documented_metrics_are_backticked_prefixed_names() {
    let md = "| `kubevirt_a_total` | `kube_metrics_collector_b` | `kubevirt_{x}` | `process` | `Kubevirt_c`";
    let want: BTreeSet<String> = [
        "kubevirt_a_total".to_owned(),
        "kube_metrics_collector_b".to_owned(),
    ]
    .into();
    assert_eq!(documented_metrics(md), want);
}
