//! The JSON patch operations on the keys the webhook owns.

use super::*;

fn paths(ops: &[PatchOperation]) -> Vec<String> {
    ops.iter().map(|op| op.path().to_string()).collect()
}

#[test]
fn escapes_slash_and_tilde_in_keys() {
    assert_eq!(
        pointer(&["metadata", "annotations", "a.io/b~c"]).to_string(),
        "/metadata/annotations/a.io~1b~0c"
    );
}

#[test]
fn creates_an_absent_map_with_all_entries() {
    let mut ops = Vec::new();
    set_entries(
        &json!({"metadata": {}}),
        &["metadata", "annotations"],
        &[("a/b", Some("1")), ("c", None)],
        &mut ops,
    )
    .ok();
    assert_eq!(paths(&ops), ["/metadata/annotations"]);
    assert_eq!(
        serde_json::to_value(&ops).ok(),
        Some(json!([{"op": "add", "path": "/metadata/annotations", "value": {"a/b": "1"}}]))
    );
}

#[test]
fn sets_existing_entries_to_the_decision_and_removes_only_present_ones() {
    let pod = json!({"metadata": {"annotations": {"a/b": "theirs", "same": "1", "gone~x": "t"}}});
    let mut ops = Vec::new();
    set_entries(
        &pod,
        &["metadata", "annotations"],
        &[
            ("a/b", Some("ours")),
            ("same", Some("1")),
            ("c", Some("1")),
            ("gone~x", None),
            ("absent", None),
        ],
        &mut ops,
    )
    .ok();
    assert_eq!(
        serde_json::to_value(&ops).ok(),
        Some(json!([
            {"op": "replace", "path": "/metadata/annotations/a~1b", "value": "ours"},
            {"op": "add", "path": "/metadata/annotations/c", "value": "1"},
            {"op": "remove", "path": "/metadata/annotations/gone~0x"},
        ]))
    );
    let mut patched = pod.clone();
    let patch = json_patch::Patch(ops);
    assert!(json_patch::patch(&mut patched, &patch).is_ok());
    assert_eq!(
        patched,
        json!({"metadata": {"annotations": {"a/b": "ours", "same": "1", "c": "1"}}})
    );
}

#[test]
fn nothing_to_set_on_an_absent_map_is_no_operation() {
    let mut ops = Vec::new();
    let got = set_entries(
        &json!({"metadata": {"labels": null}}),
        &["metadata", "labels"],
        &[("a", None)],
        &mut ops,
    );
    assert_eq!((got, ops.len()), (Ok(()), 0));
}

#[test]
fn a_not_launcher_loses_our_keys_and_keeps_the_tenants() {
    let pod = json!({"metadata": {
        "annotations": {STATUS: "injected", REASON_SOURCE: "vmi", "kube-metrics-collector.io/memory-limit": "64Mi"},
        "labels": {SCRAPE: "direct", "kube-metrics-collector.io/inject": "enabled"},
    }});
    let ops = skip_operations(&pod, SkipReason::NotLauncher);
    assert_eq!(
        paths(&ops),
        [
            "/metadata/annotations/kube-metrics-collector.io~1status",
            "/metadata/annotations/kube-metrics-collector.io~1reason-source",
            "/metadata/labels/kube-metrics-collector.io~1scrape",
        ]
    );
    assert!(ops.iter().all(|op| matches!(op, PatchOperation::Remove(_))));
}

#[test]
fn appends_to_a_list_and_creates_an_absent_one() {
    let mut ops = Vec::new();
    append(
        &json!({"spec": {"volumes": [1]}}),
        &["spec", "volumes"],
        vec![json!(2), json!(3)],
        &mut ops,
    )
    .ok();
    assert_eq!(paths(&ops), ["/spec/volumes/-", "/spec/volumes/-"]);
    ops.clear();
    append(
        &json!({"spec": {"volumes": null}}),
        &["spec", "volumes"],
        vec![json!(2)],
        &mut ops,
    )
    .ok();
    assert_eq!(paths(&ops), ["/spec/volumes"]);
}

#[test]
fn wrong_types_are_shape_errors() {
    let mut ops = Vec::new();
    let got = append(
        &json!({"spec": {"volumes": {}}}),
        &["spec", "volumes"],
        vec![],
        &mut ops,
    );
    assert_eq!(got, Err(ShapeError("/spec/volumes".into())));
    let got = set_entries(
        &json!({"metadata": {"labels": []}}),
        &["metadata", "labels"],
        &[],
        &mut ops,
    );
    assert_eq!(got, Err(ShapeError("/metadata/labels".into())));
}

#[test]
fn not_launcher_and_already_injected_get_no_operations() {
    for reason in [SkipReason::NotLauncher, SkipReason::AlreadyInjected] {
        assert_eq!(
            operations(&json!({"metadata": {}}), &Decision::Skip(reason)),
            Ok(vec![])
        );
    }
}

#[test]
fn only_a_vm_type_skip_with_the_node_collector_on_is_covered() {
    let unsafe_skip = |covered| Decision::Unsafe {
        reason: SkipReason::Unsafe(crate::reason::UnsafeReason::VfioDevice),
        source: Source::Vmi,
        covered,
    };
    assert_eq!(
        Marks::of(&unsafe_skip(true)).coverage,
        Some(COVERAGE_NODE_COLLECTOR)
    );
    assert_eq!(Marks::of(&unsafe_skip(false)).coverage, None);
    assert_eq!(
        Marks::of(&Decision::Skip(SkipReason::OptedOut)).coverage,
        None
    );
    // A tenant's own claim of coverage goes when the decision gives none.
    let pod = json!({"metadata": {"annotations": {COVERAGE: COVERAGE_NODE_COLLECTOR}}});
    let ops = operations(&pod, &unsafe_skip(false)).unwrap_or_default();
    assert!(
        ops.iter().any(|op| matches!(op, PatchOperation::Remove(r)
            if r.path.as_str() == "/metadata/annotations/kube-metrics-collector.io~1coverage")),
        "{ops:?}"
    );
}
