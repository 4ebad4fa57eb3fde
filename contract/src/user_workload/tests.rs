//! Table tests of the PromQL rewrite for user-workload monitoring, and bad input refused.

use super::*;
use crate::rules::RECORDINGS;

const NS: &str = "kube-metrics-collector";
const P: &str =
    r#""namespace", "$1", "exported_namespace", "(.+)"), "pod", "$1", "exported_pod", "(.+)"))"#;
const D: &str = r#"namespace!="kube-metrics-collector""#;
const R: &str = r#"namespace="kube-metrics-collector", exported_namespace!="", exported_pod!="""#;

fn rw(expr: &str) -> String {
    rewrite(expr, NS).unwrap_or_else(|e| panic!("{expr}: {e}"))
}

#[test]
fn instant_selectors_become_the_union_of_both_routes() {
    let f = "kubevirt_pod_infra_processes";
    let cases = [
        (
            f.to_owned(),
            format!("({f}{{{D}}} or label_replace(label_replace({f}{{{R}}}, {P}"),
        ),
        (
            format!(r#"max by (namespace, pod) ({f}{{process="qemu"}})"#),
            format!(
                r#"max by (namespace, pod) (({f}{{process="qemu", {D}}} or label_replace(label_replace({f}{{process="qemu", {R}}}, {P})"#
            ),
        ),
        // The selector's own namespace and pod apply to the promoted labels on the relayed side.
        (
            format!(r#"{f}{{namespace=~"$namespace", pod = "p", type="x",}}"#),
            format!(
                r#"({f}{{namespace=~"$namespace", pod = "p", type="x", {D}}} or label_replace(label_replace({f}{{exported_namespace=~"$namespace", exported_pod = "p", type="x", {R}}}, {P}"#
            ),
        ),
        // Modifiers stay with each half.
        (
            format!("{f} offset 5m @ 100"),
            format!(
                "({f}{{{D}}} offset 5m @ 100 or label_replace(label_replace({f}{{{R}}} offset 5m @ 100, {P}"
            ),
        ),
        // A subquery reads the union.
        (
            format!("max_over_time({f}{{a=\"1\"}}[1h:1m] offset 1d)"),
            format!(
                "max_over_time(({f}{{a=\"1\", {D}}} or label_replace(label_replace({f}{{a=\"1\", {R}}}, {P}[1h:1m] offset 1d)"
            ),
        ),
    ];
    for (expr, want) in cases {
        assert_eq!(rw(&expr), want, "{expr}");
    }
}

#[test]
fn range_selectors_split_the_call_that_reads_them() {
    let f = "kubevirt_pod_infra_cpu_seconds_total";
    let cases = [
        (
            format!("sum(rate({f}[5m]))"),
            format!(
                "sum((rate({f}{{{D}}}[5m]) or label_replace(label_replace(rate({f}{{{R}}}[5m]), {P})"
            ),
        ),
        (
            format!("delta({f}{{type=\"user\"}}[12h] offset 12h) > 1"),
            format!(
                "(delta({f}{{type=\"user\", {D}}}[12h] offset 12h) or label_replace(label_replace(delta({f}{{type=\"user\", {R}}}[12h] offset 12h), {P} > 1"
            ),
        ),
        (
            format!("predict_linear({f}[1d], 7 * 86400)"),
            format!(
                "(predict_linear({f}{{{D}}}[1d], 7 * 86400) or label_replace(label_replace(predict_linear({f}{{{R}}}[1d], 7 * 86400), {P}"
            ),
        ),
    ];
    for (expr, want) in cases {
        assert_eq!(rw(&expr), want, "{expr}");
    }
    // A scalar argument before the range that reads a family is rewritten once in each half.
    let nested = rw(&format!(
        "quantile_over_time(scalar(kubevirt_pod_infra_threads), {f}[5m])"
    ));
    assert_eq!(
        nested.matches("kubevirt_pod_infra_threads{").count(),
        4,
        "{nested}"
    );
    assert_eq!(nested.matches(&format!("{f}{{")).count(), 2, "{nested}");
}

#[test]
fn other_series_records_strings_and_labels_are_left_alone() {
    for expr in [
        "vmi:kubevirt_pod_infra_pod_info:max * on (namespace, pod) group_left (name) kubevirt_vmi_launcher_memory_overhead_bytes",
        r#"label_replace(up{job="kubevirt_pod_infra_processes"}, "kubevirt_pod_infra_processes", "$1", "x", "(.*)")"#,
        "sum by (kubevirt_pod_infra_processes) (up) # kubevirt_pod_infra_processes",
        "kube_metrics_collector_relay_targets{state=\"failed\"} > 0",
        "rate(up[5m]) + 1e3 - .5",
    ] {
        assert_eq!(rw(expr), expr);
    }
}

#[test]
fn the_rewrite_is_idempotent() {
    let exprs = [
        "kubevirt_pod_infra_processes",
        "rate(kubevirt_pod_infra_cpu_seconds_total{process!=\"qemu\"}[5m]) offset 1h",
        "max_over_time(kubevirt_pod_infra_threads[1h:1m])",
        "kubevirt_pod_infra_threads{namespace != \"kube-metrics-collector\"}",
    ];
    for expr in exprs.into_iter().chain(RECORDINGS.iter().map(|r| r.expr)) {
        let once = rw(expr);
        assert_eq!(rw(&once), once, "{expr}");
    }
}

#[test]
fn every_raw_read_of_the_recording_rules_is_rewritten_and_balanced() {
    for rule in &RECORDINGS {
        let out = rw(rule.expr);
        let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
        let raw = metrics::FAMILIES
            .iter()
            .flat_map(|f| {
                rule.expr
                    .match_indices(f.name)
                    .map(move |(at, _)| (at, f.name.len()))
            })
            .filter(|&(at, len)| {
                !rule.expr[..at].ends_with(word) && !rule.expr[at + len..].starts_with(word)
            })
            .count();
        let halves = out.matches(D).count() + out.matches(R).count();
        assert_eq!(halves, 2 * raw, "{}: {out}", rule.record);
        assert_eq!(
            out.matches('(').count(),
            out.matches(')').count(),
            "{}",
            rule.record
        );
    }
}

#[test]
fn the_install_namespace_is_a_parameter_and_quoted() {
    let out = rewrite("kubevirt_pod_infra_threads", r#"a"b"#).unwrap_or_default();
    assert!(out.contains(r#"{namespace!="a\"b"}"#), "{out}");
    assert!(
        out.contains(r#"{namespace="a\"b", exported_namespace!="""#),
        "{out}"
    );
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let f = "kubevirt_pod_infra_threads";
    let cases = [
        (format!("{f}{{a=\"x"), RewriteError::Unterminated { at: 29 }),
        (format!("{f}[5m"), RewriteError::Unterminated { at: 26 }),
        (format!("sum({f}"), RewriteError::Unbalanced { at: 0 }),
        (format!("{f})"), RewriteError::Unbalanced { at: 26 }),
        (
            format!("{f}[5m]"),
            RewriteError::RangeOutsideCall {
                family: f.into(),
                function: String::new(),
            },
        ),
        (
            format!("absent_over_time({f}[5m])"),
            RewriteError::RangeOutsideCall {
                family: f.into(),
                function: "absent_over_time".into(),
            },
        ),
    ];
    for (expr, want) in cases {
        assert_eq!(rewrite(&expr, NS), Err(want.clone()), "{expr}");
        assert!(!want.to_string().is_empty());
    }
    // Any prefix of a rewritten rule, cut anywhere, answers without panicking.
    let text = rw(RECORDINGS[4].expr);
    for (at, _) in text.char_indices() {
        let _ = rewrite(&text[..at], NS);
    }
    assert_eq!(rw("é + kubevirt_pod_infra_threads").matches("é").count(), 1);
}
