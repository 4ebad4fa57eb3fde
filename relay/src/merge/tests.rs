use super::*;
use kube_metrics_contract::metrics::POD_INFO;
use proptest::prelude::*;

fn info(ns: &str, pod: &str) -> String {
    format!(
        "# HELP kubevirt_pod_infra_pod_info Identity.\n# TYPE kubevirt_pod_infra_pod_info gauge\n\
         kubevirt_pod_infra_pod_info{{namespace=\"{ns}\",pod=\"{pod}\"}} 1\n"
    )
}

fn mk_target(ns: &str, pod: &str, extra: &str) -> String {
    format!("{}{extra}", info(ns, pod))
}

fn ok(ns: &str, pod: &str) -> Result<Identity, Rejected> {
    Ok(Identity {
        namespace: ns.into(),
        pod: pod.into(),
    })
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
    // (case, targets, expected body)
    let cases: &[(&str, &[Target<'_>], &str)] = &[
        (
            "groups one family across targets with HELP and TYPE once",
            &[
                (
                    "ns-0",
                    "pod-0",
                    "# HELP m_total Work.\n# TYPE m_total counter\nm_total 1\n",
                ),
                (
                    "ns-1",
                    "pod-1",
                    "# HELP m_total Work.\n# TYPE m_total counter\nm_total 2\n",
                ),
            ],
            "# HELP m_total Work.\n# TYPE m_total counter\n\
             m_total{namespace=\"ns-0\",pod=\"pod-0\"} 1\nm_total{namespace=\"ns-1\",pod=\"pod-1\"} 2\n",
        ),
        (
            "keeps existing labels after the inserted ones",
            &[(
                "ns-0",
                "pod-0",
                "# TYPE g gauge\ng{type=\"user\",process=\"qemu\"} 3.5\n",
            )],
            "# TYPE g gauge\ng{namespace=\"ns-0\",pod=\"pod-0\",type=\"user\",process=\"qemu\"} 3.5\n",
        ),
        (
            "renames a conflicting namespace label to exported_namespace",
            &[(
                "ns-0",
                "pod-0",
                "g{namespace=\"other\"} 1\ng{pod=\"pod-0\",x=\"y\"} 2\n",
            )],
            "g{namespace=\"ns-0\",pod=\"pod-0\",exported_namespace=\"other\"} 1\n\
             g{namespace=\"ns-0\",pod=\"pod-0\",x=\"y\"} 2\n",
        ),
        (
            "re-escapes label values and HELP text",
            &[(
                "ns-0",
                "pod-0",
                "# HELP g a\\\\b\\nc\ng{v=\"q\\\"\\\\\\n\"} 1\n",
            )],
            "# HELP g a\\\\b\\nc\ng{namespace=\"ns-0\",pod=\"pod-0\",v=\"q\\\"\\\\\\n\"} 1\n",
        ),
        (
            "keeps histograms whole and timestamps and special values",
            &[(
                "ns-0",
                "pod-0",
                "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum NaN\nh_count 2 17\n",
            )],
            "# TYPE h histogram\nh_bucket{namespace=\"ns-0\",pod=\"pod-0\",le=\"+Inf\"} 2\n\
             h_sum{namespace=\"ns-0\",pod=\"pod-0\"} NaN\nh_count{namespace=\"ns-0\",pod=\"pod-0\"} 2 17\n",
        ),
        (
            "drops malformed lines and keeps the rest",
            &[(
                "ns-0",
                "pod-0",
                "g 1\ng{ 2\n\u{0}junk\ng{a=\"1\"} x\ng{a=\"2\"} 3\n",
            )],
            "g{namespace=\"ns-0\",pod=\"pod-0\"} 1\ng{namespace=\"ns-0\",pod=\"pod-0\",a=\"2\"} 3\n",
        ),
        (
            "drops the later target's samples of a family typed differently",
            &[
                ("ns-0", "pod-0", "# TYPE m counter\nm 1\n"),
                ("ns-1", "pod-1", "# TYPE m gauge\nm 2\n"),
            ],
            "# TYPE m counter\nm{namespace=\"ns-0\",pod=\"pod-0\"} 1\n",
        ),
        (
            "never forwards the relay's own families",
            &[(
                "ns-0",
                "pod-0",
                "kube_metrics_collector_relay_targets{state=\"ok\"} 99\n",
            )],
            "",
        ),
        (
            "drops a repeated series",
            &[("ns-0", "pod-0", "g 1\ng 2\n")],
            "g{namespace=\"ns-0\",pod=\"pod-0\"} 1\n",
        ),
    ];
    for (case, targets, want) in cases {
        let bodies: Vec<String> = targets
            .iter()
            .map(|(ns, pod, extra)| mk_target(ns, pod, extra))
            .collect();
        let merged = merge(&bodies);
        assert_eq!(body(&merged), *want, "{case}");
        for ((ns, pod, _), report) in targets.iter().zip(&merged.targets) {
            assert_eq!(report.identity, ok(ns, pod), "{case}");
        }
    }
}

#[test]
fn counts_dropped_lines_by_reason() {
    let extra = "g 1\ng 1\ng{ 2\nkube_metrics_collector_relay_x 1\n# TYPE g counter\n";
    let merged = merge(&[mk_target("ns-0", "pod-0", extra)]);
    let dropped = merged
        .targets
        .first()
        .map(|t| t.dropped)
        .unwrap_or_default();
    // `g{ 2` and the late TYPE are malformed.
    assert_eq!(dropped.get(Dropped::Malformed), 2);
    assert_eq!(dropped.get(Dropped::Duplicate), 1);
    assert_eq!(dropped.get(Dropped::Reserved), 1);
    assert_eq!(dropped.get(Dropped::TypeConflict), 0);
}

#[test]
fn emits_each_family_once_in_first_seen_order() {
    let a = mk_target(
        "ns-0",
        "pod-0",
        "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n",
    );
    let b = mk_target(
        "ns-1",
        "pod-1",
        "# TYPE b gauge\nb 2\n# TYPE a gauge\na 2\n",
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
            "# TYPE a gauge",
            "# TYPE b gauge"
        ]
    );
    assert_eq!(
        merged.text.lines().filter(|l| l.starts_with("a{")).count(),
        2
    );
}

#[test]
fn pod_info_keeps_exactly_its_identity_labels() {
    let merged = merge(&[info("ns-0", "pod-0")]);
    assert!(
        merged
            .text
            .contains("kubevirt_pod_infra_pod_info{namespace=\"ns-0\",pod=\"pod-0\"} 1\n"),
        "{}",
        merged.text
    );
}

#[test]
fn rejects_targets_without_one_clear_identity() {
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
    ];
    for (case, text, want) in cases {
        let merged = merge(&[format!("{text}other 1\n")]);
        assert_eq!(
            merged.targets.first().map(|t| t.identity.clone()),
            Some(Err(*want)),
            "{case}"
        );
        assert_eq!(merged.text, "", "{case}");
    }
}

#[test]
fn rejects_every_target_claiming_the_same_identity() {
    let merged = merge(&[
        mk_target("ns-0", "pod-0", "g 1\n"),
        mk_target("ns-0", "pod-0", "g 2\n"),
        mk_target("ns-1", "pod-1", "g 3\n"),
    ]);
    let ids: Vec<_> = merged.targets.iter().map(|t| t.identity.clone()).collect();
    let dup = Err(Rejected::DuplicateIdentity);
    assert_eq!(ids, vec![dup.clone(), dup, ok("ns-1", "pod-1")]);
    assert_eq!(body(&merged), "g{namespace=\"ns-1\",pod=\"pod-1\"} 3\n");
}

#[test]
fn output_reparses_without_loss() {
    let extra = "# HELP g x\\ny\n# TYPE g gauge\ng{a=\"\\\"\\\\\"} 1\n# TYPE h summary\nh{quantile=\"0.5\"} 1\nh_sum 1\nh_count 1\n";
    let merged = merge(&[
        mk_target("ns-0", "pod-0", extra),
        mk_target("ns-1", "pod-1", extra),
    ]);
    let again = merge(std::slice::from_ref(&merged.text));
    // The merged text is valid: re-parsing it drops nothing. (Its two
    // identities make it ambiguous as a target, which is expected.)
    let reparsed = Parsed::from_text(&merged.text);
    assert_eq!(reparsed.malformed, 0);
    assert_eq!(reparsed.families.len(), 3);
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
                "(# (HELP|TYPE) [a-z_]{1,3} [a-z ]{0,8}\n|[a-z_]{1,3}(\\{[a-z]{1,2}=\"[^\"]{0,3}\"\\})? [0-9.eInfNa+-]{1,4}\n|kubevirt_pod_infra_pod_info\\{namespace=\"n\",pod=\"p[0-9]\"\\} 1\n){0,12}",
            ],
            0..5,
        )
    ) {
        let merged = merge(&bodies);
        prop_assert_eq!(merged.targets.len(), bodies.len());
        let reparsed = Parsed::from_text(&merged.text);
        prop_assert_eq!(reparsed.malformed, 0, "{}", merged.text);
        let mut names: Vec<&str> = merged.text.lines()
            .filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split(' ').next()).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        prop_assert_eq!(names.len(), n);
    }
}

fn slot_with(lines: &str) -> Slot {
    Slot {
        name: "m".into(),
        help: None,
        kind: None,
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
    };
    assert_eq!(total, want);
    assert_eq!(total[Dropped::Duplicate], 6);
}
