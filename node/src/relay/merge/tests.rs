//! The merge's guarantees, target by target: identity, families, types, labels, duplicates, caps.

use super::*;
use crate::relay::parse::{Parsed, Sample};
use kube_metrics_contract::limits::{
    MAX_ANSWER_SERIES, MAX_LABEL_VALUE_BYTES, MAX_OUTPUT_BYTES, MAX_SERIES, RELAY_OWN_BYTES,
};
use kube_metrics_contract::metrics::{self, POD_INFO};
use proptest::prelude::*;
use seen::Seen;

/// A gauge and a counter the collector writes.
const G: &str = "kubevirt_pod_infra_processes";
const C: &str = "kubevirt_pod_infra_cpu_seconds_total";

fn info(ns: &str, pod: &str) -> String {
    format!(
        "# HELP kubevirt_pod_infra_pod_info Identity.\n# TYPE kubevirt_pod_infra_pod_info gauge\n\
         kubevirt_pod_infra_pod_info{{namespace=\"{ns}\",pod=\"{pod}\"}} 1\n"
    )
}

fn id(ns: &str, pod: &str) -> Identity {
    Identity {
        namespace: ns.into(),
        pod: pod.into(),
    }
}

fn mk_target(ns: &str, pod: &str, extra: &str) -> (Identity, String) {
    (id(ns, pod), format!("{}{extra}", info(ns, pod)))
}

fn ok(ns: &str, pod: &str) -> Result<Identity, Rejected> {
    Ok(id(ns, pod))
}

/// The merged text without the pod_info family, to keep expectations short.
fn body(merged: &Merged) -> String {
    merged
        .text
        .lines()
        .filter(|l| !l.contains(POD_INFO))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// (namespace, pod, exposition after the pod_info family)
type Target<'a> = (&'a str, &'a str, &'a str);

#[test]
fn table_of_merges() {
    let g = |rest: &str| format!("# TYPE {G} gauge\n{rest}");
    // (case, targets, expected body)
    let cases: Vec<(&str, Vec<Target<'_>>, String)> = vec![
        (
            "groups one family across targets with HELP and TYPE once",
            vec![
                (
                    "ns-0",
                    "pod-0",
                    "# HELP kubevirt_pod_infra_cpu_seconds_total Work.\n# TYPE kubevirt_pod_infra_cpu_seconds_total counter\nkubevirt_pod_infra_cpu_seconds_total 1\n",
                ),
                (
                    "ns-1",
                    "pod-1",
                    "# HELP kubevirt_pod_infra_cpu_seconds_total Work.\n# TYPE kubevirt_pod_infra_cpu_seconds_total counter\nkubevirt_pod_infra_cpu_seconds_total 2\n",
                ),
            ],
            format!(
                "# HELP {C} Work.\n# TYPE {C} counter\n\
             {C}{{namespace=\"ns-0\",pod=\"pod-0\"}} 1\n{C}{{namespace=\"ns-1\",pod=\"pod-1\"}} 2\n"
            ),
        ),
        (
            "keeps HELP only while the targets agree on it",
            vec![
                (
                    "ns-0",
                    "pod-0",
                    "# HELP kubevirt_pod_infra_processes A.\n# TYPE kubevirt_pod_infra_processes gauge\nkubevirt_pod_infra_processes 1\n",
                ),
                (
                    "ns-1",
                    "pod-1",
                    "# HELP kubevirt_pod_infra_processes B.\n# TYPE kubevirt_pod_infra_processes gauge\nkubevirt_pod_infra_processes 2\n",
                ),
            ],
            g(&format!(
                "{G}{{namespace=\"ns-0\",pod=\"pod-0\"}} 1\n{G}{{namespace=\"ns-1\",pod=\"pod-1\"}} 2\n"
            )),
        ),
        (
            "keeps existing labels after the inserted ones, in the target's order",
            vec![(
                "ns-0",
                "pod-0",
                "# TYPE kubevirt_pod_infra_cpu_seconds_total counter\nkubevirt_pod_infra_cpu_seconds_total{type=\"user\",process=\"qemu\"} 3.5\n",
            )],
            format!(
                "# TYPE {C} counter\n{C}{{namespace=\"ns-0\",pod=\"pod-0\",type=\"user\",process=\"qemu\"}} 3.5\n"
            ),
        ),
        (
            "drops samples with labels Prometheus sets or their family does not carry",
            vec![(
                "ns-0",
                "pod-0",
                "# TYPE kubevirt_pod_infra_processes gauge\n\
                kubevirt_pod_infra_processes{namespace=\"other\"} 1\n\
                kubevirt_pod_infra_processes{job=\"x\"} 1\n\
                kubevirt_pod_infra_processes{instance=\"x\"} 1\n\
                kubevirt_pod_infra_processes{node=\"x\"} 1\n\
                kubevirt_pod_infra_processes{exported_pod=\"x\"} 1\n\
                kubevirt_pod_infra_processes{__name__=\"x\"} 1\n\
                kubevirt_pod_infra_processes{cluster=\"x\",process=\"a\"} 1\n\
                kubevirt_pod_infra_processes{prometheus_replica=\"x\"} 1\n\
                kubevirt_pod_infra_processes{pod=\"pod-0\",process=\"b\"} 1\n\
                kubevirt_pod_infra_processes{type=\"user\",process=\"c\"} 1\n\
                kubevirt_pod_infra_processes{host=\"n\",domain=\"vm\",process=\"d\"} 2\n",
            )],
            g(&format!(
                "{G}{{namespace=\"ns-0\",pod=\"pod-0\",host=\"n\",domain=\"vm\",process=\"d\"}} 2\n"
            )),
        ),
        (
            "re-escapes label values and HELP text",
            vec![(
                "ns-0",
                "pod-0",
                "# HELP kubevirt_pod_infra_processes a\\\\b\\nc\n# TYPE kubevirt_pod_infra_processes gauge\nkubevirt_pod_infra_processes{process=\"q\\\"\\\\\\n\"} 1\n",
            )],
            format!(
                "# HELP {G} a\\\\b\\nc\n# TYPE {G} gauge\n{G}{{namespace=\"ns-0\",pod=\"pod-0\",process=\"q\\\"\\\\\\n\"}} 1\n"
            ),
        ),
        (
            "keeps timestamps and special values",
            vec![(
                "ns-0",
                "pod-0",
                "# TYPE kubevirt_pod_infra_processes gauge\nkubevirt_pod_infra_processes{process=\"1\"} NaN\nkubevirt_pod_infra_processes{process=\"2\"} +Inf 17\n",
            )],
            g(&format!(
                "{G}{{namespace=\"ns-0\",pod=\"pod-0\",process=\"1\"}} NaN\n{G}{{namespace=\"ns-0\",pod=\"pod-0\",process=\"2\"}} +Inf 17\n"
            )),
        ),
        (
            "a malformed line leaves out its whole target, not another's",
            vec![
                (
                    "ns-0",
                    "pod-0",
                    "# TYPE kubevirt_pod_infra_processes gauge\nkubevirt_pod_infra_processes 1\ng{ 2\n",
                ),
                (
                    "ns-1",
                    "pod-1",
                    "# TYPE kubevirt_pod_infra_processes gauge\nkubevirt_pod_infra_processes 3\n",
                ),
            ],
            g(&format!("{G}{{namespace=\"ns-1\",pod=\"pod-1\"}} 3\n")),
        ),
        (
            "a first target typing a family otherwise leaves out only itself",
            vec![
                (
                    "ns-0",
                    "pod-0",
                    "# TYPE kubevirt_pod_infra_processes counter\nkubevirt_pod_infra_processes 1\n",
                ),
                ("ns-1", "pod-1", "kubevirt_pod_infra_processes 5\n"),
                (
                    "ns-2",
                    "pod-2",
                    "# TYPE kubevirt_pod_infra_processes gauge\nkubevirt_pod_infra_processes 2\n",
                ),
            ],
            g(&format!("{G}{{namespace=\"ns-2\",pod=\"pod-2\"}} 2\n")),
        ),
        (
            "forwards only the collector's families, never the relay's own",
            vec![(
                "ns-0",
                "pod-0",
                "up 1\nALERTS{alertname=\"x\"} 1\nkube_pod_info 1\n\
                kube_metrics_collector_relay_targets{state=\"ok\"} 99\n\
                # TYPE kubevirt_pod_infra_processes_bucket gauge\nkubevirt_pod_infra_processes_bucket 1\n",
            )],
            String::new(),
        ),
        (
            "drops a repeated series",
            vec![(
                "ns-0",
                "pod-0",
                "# TYPE kubevirt_pod_infra_processes gauge\nkubevirt_pod_infra_processes 1\nkubevirt_pod_infra_processes 2\n",
            )],
            g(&format!("{G}{{namespace=\"ns-0\",pod=\"pod-0\"}} 1\n")),
        ),
    ];
    for (case, targets, want) in &cases {
        let inputs: Vec<(Identity, String)> = targets
            .iter()
            .map(|(ns, pod, extra)| mk_target(ns, pod, extra))
            .collect();
        let merged = merge(&inputs);
        assert_eq!(body(&merged), *want, "{case}");
    }
}

#[test]
fn rejects_whole_targets_by_reason_and_counts_their_faulty_lines() {
    let typed = |kind: &str| format!("# TYPE {G} {kind}\n{G} 1\n{G}{{process=\"b\"}} 1\n");
    let cases: Vec<(&str, String, Rejected, Dropped, u64)> = vec![
        (
            "malformed",
            format!("{}g{{ 2\n# TYPE {G} gauge\n", typed("gauge")),
            Rejected::Malformed,
            Dropped::Malformed,
            2,
        ),
        (
            "other type",
            typed("counter"),
            Rejected::TypeConflict,
            Dropped::TypeConflict,
            2,
        ),
        (
            "untyped",
            typed("untyped"),
            Rejected::Untyped,
            Dropped::TypeConflict,
            2,
        ),
        (
            "no TYPE",
            format!("{G} 1\n"),
            Rejected::Untyped,
            Dropped::TypeConflict,
            1,
        ),
        (
            "a value Prometheus refuses",
            format!("# TYPE {G} gauge\n{G}{{process=\"a\"}} 1e400\n{G}{{process=\"b\"}} -nan\n"),
            Rejected::Malformed,
            Dropped::Malformed,
            2,
        ),
    ];
    for (case, extra, rejected, reason, n) in cases {
        let merged = merge(&[mk_target("ns-0", "pod-0", &extra)]);
        let report = merged.targets.first().unwrap();
        assert_eq!(report.identity, Err(rejected), "{case}");
        assert_eq!(report.dropped.get(reason), n, "{case}");
        assert_eq!(merged.text, "", "{case}");
    }
}

#[test]
fn counts_dropped_lines_by_reason() {
    let long = "x".repeat(MAX_LABEL_VALUE_BYTES + 1);
    let many = "host=\"a\",domain=\"b\",process=\"c\",d=\"1\",e=\"2\",f=\"3\",g=\"4\"";
    let extra = format!(
        "# TYPE {G} gauge\n{G} 1\n{G} 1\n{G}{{job=\"j\"}} 1\nkube_metrics_collector_relay_x 1\nup 1\n\
         {G}{{cluster=\"c\"}} 1\n{G}{{process=\"{long}\"}} 1\n{G}{{{many}}} 1\n"
    );
    let merged = merge(&[mk_target("ns-0", "pod-0", &extra)]);
    let report = merged.targets.first().unwrap();
    assert_eq!(report.identity, ok("ns-0", "pod-0"));
    let want = [
        (Dropped::Malformed, 0),
        (Dropped::TypeConflict, 0),
        (Dropped::Duplicate, 1),
        (Dropped::Reserved, 1),
        (Dropped::NotAllowed, 1),
        (Dropped::ReservedLabel, 1),
        (Dropped::UnknownLabel, 1),
        (Dropped::TooManyLabels, 1),
        (Dropped::LabelTooLong, 1),
    ];
    for (reason, n) in want {
        assert_eq!(report.dropped.get(reason), n, "{}", reason.reason());
    }
    assert_eq!(want.len(), Dropped::ALL.len());
}

/// `n` gauge lines, each its own series, after the pod_info of `ns-0/pod-0`;
/// their three labels are `pad` bytes long, and more.
fn many_series(n: usize, pad: usize) -> (Identity, String) {
    let pad = "p".repeat(pad);
    let mut text = format!("# TYPE {G} gauge\n");
    for i in 0..n {
        let labels = format!("host=\"{pad}\",domain=\"{pad}\",process=\"{pad}{i}\"");
        text.push_str(&format!("{G}{{{labels}}} 1\n"));
    }
    mk_target("ns-0", "pod-0", &text)
}

#[test]
fn leaves_out_a_target_over_a_collectors_caps() {
    // pod_info is one of the series.
    let at_cap = many_series(MAX_SERIES - 1, 0);
    let merged = merge(&[at_cap]);
    assert_eq!(merged.targets[0].identity, ok("ns-0", "pod-0"));
    assert_eq!(
        merged.text.lines().filter(|l| !l.starts_with('#')).count(),
        MAX_SERIES
    );
    let over = merge(&[many_series(MAX_SERIES, 0)]);
    assert_eq!(over.targets[0].identity, Err(Rejected::TooManySeries));
    assert_eq!(over.text, "");
    // Few series, but each as long as a label may be: too much once relabelled.
    let long = merge(&[many_series(MAX_SERIES / 2, MAX_LABEL_VALUE_BYTES - 3)]);
    assert_eq!(long.targets[0].identity, Err(Rejected::OutputTooLarge));
    assert_eq!(long.text, "");
    // HELP texts count too.
    let help = format!(
        "# HELP {G} {}\n# TYPE {G} gauge\n{G} 1\n",
        "h".repeat(MAX_OUTPUT_BYTES)
    );
    let merged = merge(&[mk_target("ns-0", "pod-0", &help)]);
    assert_eq!(merged.targets[0].identity, Err(Rejected::OutputTooLarge));
}

#[test]
fn leaves_out_the_targets_past_a_nodes_worth_of_series() {
    let per_target = MAX_SERIES - 1;
    let targets: Vec<(Identity, String)> = (0..=MAX_ANSWER_SERIES / MAX_SERIES)
        .map(|t| {
            let (_, text) = many_series(per_target, 0);
            let pod = format!("pod-{t}");
            (
                id("ns-0", &pod),
                text.replace("pod=\"pod-0\"", &format!("pod=\"{pod}\"")),
            )
        })
        .collect();
    let merged = merge(&targets);
    let (last, first) = merged.targets.split_last().unwrap();
    assert!(first.iter().all(|t| t.identity.is_ok()));
    assert_eq!(last.identity, Err(Rejected::AnswerFull));
    let series = merged.text.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(series, first.len() * MAX_SERIES);
    assert!(series <= MAX_ANSWER_SERIES);
}

#[test]
fn writes_the_answer_at_its_final_size_with_room_for_the_relays_own() {
    let extra = format!(
        "# HELP {G} x\\\\y\n# TYPE {G} gauge\n{G}{{process=\"a\"}} 1\n{G}{{process=\"b\"}} 2\n"
    );
    let merged = merge(&[
        mk_target("ns-0", "pod-0", &extra),
        mk_target("ns-1", "pod-1", &extra),
        mk_target("ns-2", "pod-2", "broken{ 1\n"),
    ]);
    // HELP and TYPE, and a line per target, of pod_info and of the gauge.
    assert_eq!(merged.text.lines().count(), 2 * 2 + 2 * 3);
    assert_eq!(merged.text.capacity() - merged.text.len(), RELAY_OWN_BYTES);
}

#[test]
fn emits_each_family_once_in_the_contracts_order() {
    let a = mk_target(
        "ns-0",
        "pod-0",
        &format!("# TYPE {C} counter\n{C} 1\n# TYPE {G} gauge\n{G} 1\n"),
    );
    let b = mk_target(
        "ns-1",
        "pod-1",
        &format!("# TYPE {G} gauge\n{G} 2\n# TYPE {C} counter\n{C} 2\n"),
    );
    let merged = merge(&[a, b]);
    let types: Vec<&str> = merged
        .text
        .lines()
        .filter(|l| l.starts_with("# TYPE"))
        .collect();
    assert_eq!(
        types,
        vec![
            "# TYPE kubevirt_pod_infra_cpu_seconds_total counter",
            "# TYPE kubevirt_pod_infra_processes gauge",
            "# TYPE kubevirt_pod_infra_pod_info gauge",
        ]
    );
    assert_eq!(
        merged
            .text
            .lines()
            .filter(|l| l.starts_with(&format!("{G}{{")))
            .count(),
        2
    );
}

#[test]
fn pod_info_keeps_its_identity_labels_and_its_node() {
    let text = "# TYPE kubevirt_pod_infra_pod_info gauge\n\
        kubevirt_pod_infra_pod_info{namespace=\"ns-0\",pod=\"pod-0\",name=\"vm\",node=\"n1\"} 1\n";
    let merged = merge(&[(id("ns-0", "pod-0"), text.to_owned())]);
    assert_eq!(
        merged.text,
        "# TYPE kubevirt_pod_infra_pod_info gauge\n\
         kubevirt_pod_infra_pod_info{namespace=\"ns-0\",pod=\"pod-0\",name=\"vm\",node=\"n1\"} 1\n"
    );
}

#[test]
fn rejects_targets_without_the_attested_identity() {
    let cases: &[(&str, &str, Rejected)] = &[
        ("no pod_info", "g 1\n", Rejected::NoIdentity),
        (
            "empty namespace",
            "kubevirt_pod_infra_pod_info{namespace=\"\",pod=\"p\"} 1\n",
            Rejected::NoIdentity,
        ),
        (
            "pod label missing",
            "kubevirt_pod_infra_pod_info{namespace=\"n\"} 1\n",
            Rejected::NoIdentity,
        ),
        (
            "two identities",
            "kubevirt_pod_infra_pod_info{namespace=\"n\",pod=\"a\"} 1\n\
             kubevirt_pod_infra_pod_info{namespace=\"n\",pod=\"b\"} 1\n",
            Rejected::AmbiguousIdentity,
        ),
        (
            "another pod's identity",
            "kubevirt_pod_infra_pod_info{namespace=\"n\",pod=\"b\"} 1\n",
            Rejected::IdentityMismatch,
        ),
    ];
    for (case, text, want) in cases {
        let merged = merge(&[(id("n", "a"), format!("{text}other 1\n"))]);
        assert_eq!(
            merged.targets.first().map(|t| t.identity.clone()),
            Some(Err(*want)),
            "{case}"
        );
        assert_eq!(merged.text, "", "{case}");
    }
}

#[test]
fn a_second_target_under_one_attested_identity_drops_nothing_of_the_first() {
    let line = |v: u8| format!("# TYPE {G} gauge\n{G} {v}\n");
    let merged = merge(&[
        mk_target("ns-0", "pod-0", &line(1)),
        mk_target("ns-0", "pod-0", &line(2)),
        mk_target("ns-1", "pod-1", &line(3)),
    ]);
    let ids: Vec<_> = merged.targets.iter().map(|t| t.identity.clone()).collect();
    assert_eq!(
        ids,
        vec![
            ok("ns-0", "pod-0"),
            Err(Rejected::DuplicateIdentity),
            ok("ns-1", "pod-1")
        ]
    );
    assert_eq!(
        body(&merged),
        format!(
            "# TYPE {G} gauge\n{G}{{namespace=\"ns-0\",pod=\"pod-0\"}} 1\n{G}{{namespace=\"ns-1\",pod=\"pod-1\"}} 3\n"
        )
    );
}

#[test]
fn output_reparses_without_loss() {
    let extra = format!(
        "# HELP {G} x\\ny\n# TYPE {G} gauge\n{G}{{process=\"\\\"\\\\\"}} 1\n# TYPE {C} counter\n{C} 1\n"
    );
    let merged = merge(&[
        mk_target("ns-0", "pod-0", &extra),
        mk_target("ns-1", "pod-1", &extra),
    ]);
    let reparsed = Parsed::from_text(&merged.text);
    assert_eq!(reparsed.malformed, 0);
    assert_eq!(reparsed.families.len(), 3);
    assert_eq!(
        merged.text.lines().filter(|l| !l.starts_with('#')).count(),
        6
    );
    // Its two identities make it ambiguous as a target, which is expected.
    let again = merge(&[(id("ns-0", "pod-0"), merged.text.clone())]);
    assert_eq!(
        again.targets.first().map(|t| t.identity.clone()),
        Some(Err(Rejected::AmbiguousIdentity))
    );
}

proptest! {
    #[test]
    fn merge_never_panics_and_emits_families_once(
        bodies in proptest::collection::vec(
            prop_oneof![
                ".*",
                "(# (HELP|TYPE) (kubevirt_pod_infra_processes|kubevirt_pod_infra_open_fds|[a-z_]{1,3}) [a-z ]{0,8}\n|(kubevirt_pod_infra_processes|[a-z_]{1,3})(\\{(process|host|[a-z]{1,2})=\"[^\"]{0,3}\"\\})? [0-9.eInfNa+-]{1,4}\n|kubevirt_pod_infra_pod_info\\{namespace=\"n\",pod=\"p[0-9]\"\\} 1\n){0,12}",
            ],
            0..5,
        )
    ) {
        let inputs: Vec<(Identity, String)> = bodies
            .into_iter()
            .enumerate()
            .map(|(i, b)| (id("n", &format!("p{i}")), b))
            .collect();
        let merged = merge(&inputs);
        prop_assert_eq!(merged.targets.len(), inputs.len());
        let reparsed = Parsed::from_text(&merged.text);
        prop_assert_eq!(reparsed.malformed, 0, "{}", merged.text);
        let mut names: Vec<&str> = merged.text.lines()
            .filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split(' ').next()).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        prop_assert_eq!(names.len(), n);
        for name in names {
            prop_assert!(metrics::family_type(name).is_some(), "{}", name);
        }
        // Only the labels each family carries, and the answer written at the size planned.
        for family in &reparsed.families {
            let allowed = metrics::family(&family.name).map_or(&[][..], |f| f.labels);
            for sample in &family.samples {
                for (label, _) in &sample.labels {
                    prop_assert!(metrics::RELAY_LABELS.contains(label) || allowed.contains(label), "{}", sample.line);
                }
            }
        }
        prop_assert_eq!(merged.text.capacity() - merged.text.len(), RELAY_OWN_BYTES);
    }
}

#[test]
fn seen_compares_key_text_even_when_hashes_collide() {
    let buf = b"m{a=\"1\"}m{a=\"2\"}m{a=\"2\"}";
    let (one, two, two_again) = (0..8, 8..16, 16..24);
    let mut seen = Seen::default();
    // Forge a collision: the hash of `two` already points at `one`'s text.
    let hash = seen.hash(Some(&b"m{a=\"2\"}"[..]));
    seen.first.insert(hash, one.clone());
    assert!(
        seen.insert(buf, two.clone()),
        "a different key with the same hash"
    );
    assert!(!seen.insert(buf, two_again.clone()), "the same key again");
    assert_eq!(seen.collided.len(), 1);
    seen.clear();
    assert!(seen.insert(buf, two_again));
    assert!(!seen.insert(buf, two));
    assert!(seen.insert(buf, one));
}

#[test]
fn identity_reads_escaped_values_and_ignores_other_names() {
    let text = "kubevirt_pod_infra_pod_info_x{namespace=\"n\",pod=\"x\"} 1\n\
                kubevirt_pod_infra_pod_info{namespace=\"a\\\"b\",pod=\"p\"} 1\n\
                kubevirt_pod_infra_pod_info{namespace=\"bad} 1\n";
    assert_eq!(identity(text), ok("a\"b", "p"));
    assert_eq!(identity("other 1\n"), Err(Rejected::NoIdentity));
}

#[test]
fn drop_counts_add_up_by_reason() {
    let mut total = DropCounts::default();
    let mut one = DropCounts::default();
    for (n, reason) in Dropped::ALL.into_iter().enumerate() {
        one.add(reason, n as u64 + 1);
    }
    total.add_all(&one);
    total.add_all(&one);
    for (n, reason) in Dropped::ALL.into_iter().enumerate() {
        assert_eq!(total.get(reason), 2 * (n as u64 + 1), "{}", reason.reason());
    }
    assert_eq!(total.get(Dropped::Duplicate), 6);
}

/// (case, family, labels, verdict)
type LabelCase<'a> = (
    &'a str,
    &'a str,
    &'a [(&'a str, &'a str)],
    Result<(), Dropped>,
);

#[test]
fn labels_are_allowed_by_their_family_and_never_when_prometheus_sets_them() {
    let attested = id("ns-0", "pod-0");
    let family = |name: &str| metrics::family(name).unwrap();
    let cases: &[LabelCase<'_>] = &[
        ("its own", G, &[("host", "h"), ("process", "q")], Ok(())),
        ("none", G, &[], Ok(())),
        (
            "one it lacks",
            G,
            &[("type", "user")],
            Err(Dropped::UnknownLabel),
        ),
        (
            "a cluster's",
            G,
            &[("cluster", "c")],
            Err(Dropped::UnknownLabel),
        ),
        ("job", G, &[("job", "j")], Err(Dropped::ReservedLabel)),
        (
            "node off pod_info",
            G,
            &[("node", "n")],
            Err(Dropped::ReservedLabel),
        ),
        ("node on pod_info", POD_INFO, &[("node", "n")], Ok(())),
        (
            "its identity on pod_info",
            POD_INFO,
            &[("namespace", "ns-0"), ("pod", "pod-0")],
            Ok(()),
        ),
        (
            "another's identity",
            POD_INFO,
            &[("pod", "pod-1")],
            Err(Dropped::ReservedLabel),
        ),
        (
            "its identity elsewhere",
            G,
            &[("namespace", "ns-0")],
            Err(Dropped::UnknownLabel),
        ),
        (
            "reserved wins",
            G,
            &[("x", "1"), ("__name__", "m")],
            Err(Dropped::ReservedLabel),
        ),
    ];
    for (case, name, labels, want) in cases {
        let line = format!("{name} 1");
        let sample = Sample {
            name,
            labels: labels.iter().map(|(n, v)| (*n, (*v).into())).collect(),
            value: "1",
            timestamp: None,
            line: &line,
        };
        assert_eq!(
            labels_allowed(&sample, family(name), &attested),
            *want,
            "{case}"
        );
    }
}
