use super::*;
use kube_metrics_contract::metrics::POD_INFO;
use proptest::prelude::*;

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
            "keeps existing labels after the inserted ones",
            vec![(
                "ns-0",
                "pod-0",
                "# TYPE kubevirt_pod_infra_processes gauge\nkubevirt_pod_infra_processes{type=\"user\",process=\"qemu\"} 3.5\n",
            )],
            g(&format!(
                "{G}{{namespace=\"ns-0\",pod=\"pod-0\",type=\"user\",process=\"qemu\"}} 3.5\n"
            )),
        ),
        (
            "drops samples with labels Prometheus sets, keeps the target's own identity labels",
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
                kubevirt_pod_infra_processes{pod=\"pod-0\",x=\"y\"} 2\n",
            )],
            g(&format!(
                "{G}{{namespace=\"ns-0\",pod=\"pod-0\",x=\"y\"}} 2\n"
            )),
        ),
        (
            "re-escapes label values and HELP text",
            vec![(
                "ns-0",
                "pod-0",
                "# HELP kubevirt_pod_infra_processes a\\\\b\\nc\n# TYPE kubevirt_pod_infra_processes gauge\nkubevirt_pod_infra_processes{v=\"q\\\"\\\\\\n\"} 1\n",
            )],
            format!(
                "# HELP {G} a\\\\b\\nc\n# TYPE {G} gauge\n{G}{{namespace=\"ns-0\",pod=\"pod-0\",v=\"q\\\"\\\\\\n\"}} 1\n"
            ),
        ),
        (
            "keeps timestamps and special values",
            vec![(
                "ns-0",
                "pod-0",
                "# TYPE kubevirt_pod_infra_processes gauge\nkubevirt_pod_infra_processes{a=\"1\"} NaN\nkubevirt_pod_infra_processes{a=\"2\"} +Inf 17\n",
            )],
            g(&format!(
                "{G}{{namespace=\"ns-0\",pod=\"pod-0\",a=\"1\"}} NaN\n{G}{{namespace=\"ns-0\",pod=\"pod-0\",a=\"2\"}} +Inf 17\n"
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
    let typed = |kind: &str| format!("# TYPE {G} {kind}\n{G} 1\n{G}{{a=\"b\"}} 1\n");
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
    let extra = format!(
        "# TYPE {G} gauge\n{G} 1\n{G} 1\n{G}{{job=\"j\"}} 1\nkube_metrics_collector_relay_x 1\nup 1\n"
    );
    let merged = merge(&[mk_target("ns-0", "pod-0", &extra)]);
    let report = merged.targets.first().unwrap();
    assert_eq!(report.identity, ok("ns-0", "pod-0"));
    let dropped = report.dropped;
    assert_eq!(dropped.get(Dropped::Duplicate), 1);
    assert_eq!(dropped.get(Dropped::Reserved), 1);
    assert_eq!(dropped.get(Dropped::NotAllowed), 1);
    assert_eq!(dropped.get(Dropped::ReservedLabel), 1);
    assert_eq!(dropped.get(Dropped::Malformed), 0);
}

#[test]
fn emits_each_family_once_in_first_seen_order() {
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
            "# TYPE kubevirt_pod_infra_pod_info gauge",
            "# TYPE kubevirt_pod_infra_cpu_seconds_total counter",
            "# TYPE kubevirt_pod_infra_processes gauge"
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
        "# HELP {G} x\\ny\n# TYPE {G} gauge\n{G}{{a=\"\\\"\\\\\"}} 1\n# TYPE {C} counter\n{C} 1\n"
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
                "(# (HELP|TYPE) (kubevirt_pod_infra_processes|kubevirt_pod_infra_open_fds|[a-z_]{1,3}) [a-z ]{0,8}\n|(kubevirt_pod_infra_processes|[a-z_]{1,3})(\\{[a-z]{1,2}=\"[^\"]{0,3}\"\\})? [0-9.eInfNa+-]{1,4}\n|kubevirt_pod_infra_pod_info\\{namespace=\"n\",pod=\"p[0-9]\"\\} 1\n){0,12}",
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
    }
}

fn slot_with(lines: &str) -> Slot {
    Slot {
        name: "m".into(),
        help: None,
        kind: Kind::Gauge,
        lines: lines.into(),
    }
}

#[test]
fn seen_compares_key_text_even_when_hashes_collide() {
    let slots = [slot_with("m{a=\"1\"}m{a=\"2\"}m{a=\"2\"}")];
    let span = |start, end| Span {
        slot: 0,
        start,
        end,
    };
    let (one, two, two_again) = (span(0, 8), span(8, 16), span(16, 24));
    let mut seen = Seen::default();
    // Forge a collision: the hash of `two` already points at `one`'s text.
    let hash = seen.hash(Some(&b"m{a=\"2\"}"[..]));
    seen.first.insert(hash, one);
    assert!(
        seen.insert(&slots, two),
        "a different key with the same hash"
    );
    assert!(!seen.insert(&slots, two_again), "the same key again");
    assert_eq!(seen.collided.len(), 1);
    seen.clear();
    assert!(seen.insert(&slots, two_again));
    assert!(!seen.insert(&slots, two));
    assert!(seen.insert(&slots, one));
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
    let want = DropCounts {
        malformed: 2,
        type_conflict: 4,
        duplicate: 6,
        reserved: 8,
        not_allowed: 10,
        reserved_label: 12,
    };
    assert_eq!(total, want);
    assert_eq!(total[Dropped::Duplicate], 6);
}
