//! The series start at zero, count what happens, and carry only label values from closed sets.
use super::*;

fn text(metrics: &Metrics) -> String {
    String::from_utf8(metrics.render().1).unwrap()
}

#[test]
fn every_series_starts_at_zero() {
    let out = text(&Metrics::new().unwrap());
    for result in RequestResult::ALL {
        let line = format!(
            "kube_metrics_webhook_requests_total{{result=\"{}\"}} 0",
            result.as_str()
        );
        assert!(out.contains(&line), "{line} missing in\n{out}");
    }
    for reason in SkipReason::ALL {
        let line = format!(
            "kube_metrics_webhook_skips_total{{reason=\"{}\"}} 0",
            reason.as_str()
        );
        assert!(out.contains(&line), "{line} missing in\n{out}");
    }
    for result in VMI_LOOKUP_RESULTS {
        let line = format!("kube_metrics_webhook_vmi_lookups_total{{result=\"{result}\"}} 0");
        assert!(out.contains(&line), "{line} missing in\n{out}");
    }
    assert!(out.contains("kube_metrics_webhook_certificate_reloads_total{result=\"failure\"} 0"));
    assert!(out.contains("kube_metrics_webhook_request_duration_seconds_count 0"));
    let build = format!(
        "kube_metrics_webhook_build_info{{revision=\"{}\",version=\"{}\"}} 1",
        kube_metrics_contract::build::REVISION,
        kube_metrics_contract::build::VERSION
    );
    assert!(out.lines().any(|l| l == build), "{build} missing in\n{out}");
    for annotation in IGNORABLE_ANNOTATIONS {
        let line = format!(
            "kube_metrics_webhook_ignored_annotations_total{{annotation=\"{annotation}\"}} 0"
        );
        assert!(out.contains(&line), "{line} missing in\n{out}");
    }
}

#[test]
fn counts_requests_and_certificate_loads() {
    let metrics = Metrics::new().unwrap();
    metrics.observe(RequestResult::Injected, Duration::from_millis(2));
    metrics.observe(RequestResult::BadRequest, Duration::from_millis(1));
    metrics.vmi_lookup("timeout");
    metrics.cert_loaded(Some(1_900_000_000));
    metrics.cert_loaded(None);
    let out = text(&metrics);
    assert!(
        out.contains("kube_metrics_webhook_requests_total{result=\"injected\"} 1"),
        "{out}"
    );
    assert!(
        out.contains("kube_metrics_webhook_requests_total{result=\"bad_request\"} 1"),
        "{out}"
    );
    assert!(
        out.contains("kube_metrics_webhook_vmi_lookups_total{result=\"timeout\"} 1"),
        "{out}"
    );
    assert!(
        out.contains("kube_metrics_webhook_request_duration_seconds_count 2"),
        "{out}"
    );
    assert!(
        out.contains("kube_metrics_webhook_certificate_expiry_timestamp_seconds 1900000000"),
        "{out}"
    );
    assert!(
        out.contains("kube_metrics_webhook_certificate_reloads_total{result=\"success\"} 1"),
        "{out}"
    );
    assert!(
        out.contains("kube_metrics_webhook_certificate_reloads_total{result=\"failure\"} 1"),
        "{out}"
    );
}

/// Where a label value may contain more than `[a-z0-9_-]`: annotation keys have a prefix
/// (`kube-metrics-collector.io/...`), the version has dots.
const WIDER: [&str; 3] = ["annotation", "version", "revision"];

#[test]
fn every_label_value_is_from_a_closed_set() {
    let metrics = Metrics::new().unwrap();
    // Every method that takes a label value, with every value it may count and with values
    // from outside, which must leave no series.
    let outside = ["", "x\"y\nz", "Found", "kube-metrics-collector.io/other"];
    for value in VMI_LOOKUP_RESULTS.iter().chain(&outside) {
        metrics.vmi_lookup(value);
    }
    for value in crate::patch::shape::PARTS.iter().chain(&outside) {
        metrics.oversized(value);
    }
    for value in IGNORABLE_ANNOTATIONS.iter().chain(&outside) {
        metrics.ignored(value);
    }
    metrics.cert_loaded(None);
    metrics.cert_loaded(Some(1));
    let requests: Vec<&str> = RequestResult::ALL.iter().map(|r| r.as_str()).collect();
    let skips: Vec<&str> = SkipReason::ALL.iter().map(|r| r.as_str()).collect();
    let set_of = |family: &str, label: &str| -> Vec<&str> {
        match (family.trim_start_matches("kube_metrics_webhook_"), label) {
            ("requests_total", "result") => requests.clone(),
            ("skips_total", "reason") => skips.clone(),
            ("vmi_lookups_total", "result") => VMI_LOOKUP_RESULTS.to_vec(),
            ("certificate_reloads_total", "result") => CERT_RELOAD_RESULTS.to_vec(),
            ("oversized_pods_total", "part") => crate::patch::shape::PARTS.to_vec(),
            ("connections_total", "action") => CONNECTION_ACTIONS.to_vec(),
            ("ignored_annotations_total", "annotation") => IGNORABLE_ANNOTATIONS.to_vec(),
            ("build_info", "version") => vec![kube_metrics_contract::build::VERSION],
            ("build_info", "revision") => vec![kube_metrics_contract::build::REVISION],
            _ => panic!("{family}: label {label} has no closed set here"),
        }
    };
    let mut seen = 0;
    for family in metrics.registry.gather() {
        for metric in family.get_metric() {
            for pair in metric.get_label() {
                let (label, value) = (pair.name(), pair.value());
                assert!(
                    set_of(family.name(), label).contains(&value),
                    "{}{{{label}={value:?}}}",
                    family.name()
                );
                let wider = WIDER.contains(&label);
                let allowed = |c: char| {
                    matches!(c, 'a'..='z' | '0'..='9' | '_' | '-')
                        || (wider && matches!(c, '.' | '/'))
                };
                assert!(
                    !value.is_empty() && value.chars().all(allowed),
                    "{}{{{label}={value:?}}}",
                    family.name()
                );
                seen += 1;
            }
        }
    }
    let every = requests.len()
        + skips.len()
        + VMI_LOOKUP_RESULTS.len()
        + CERT_RELOAD_RESULTS.len()
        + crate::patch::shape::PARTS.len()
        + CONNECTION_ACTIONS.len()
        + IGNORABLE_ANNOTATIONS.len()
        + 2;
    assert_eq!(seen, every);
}
