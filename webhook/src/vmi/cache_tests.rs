//! The subset reads the same facts as the whole object, keeps none of the rest, and the cache follows
//! the watcher's events (a re-list swapped in whole).
use super::*;
use serde_json::json;
use std::path::Path;

fn subset(object: &Value) -> VmiSubset {
    serde_json::from_value(object.clone()).unwrap_or_else(|e| panic!("{e}"))
}

fn fixture(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every VMI fixture, and KubeVirt's round-trip VMI (every field set).
fn fixtures() -> Vec<(String, Value)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let dir = std::fs::read_dir(root.join("vmi")).unwrap_or_else(|e| panic!("{e}"));
    let mut all: Vec<(String, Value)> = dir
        .flatten()
        .map(|entry| entry.path())
        .map(|path| (path.display().to_string(), fixture(&path)))
        .collect();
    let roundtrip = root.join("kubevirt-api-roundtrip-vmi-release-1.9.json");
    all.push((roundtrip.display().to_string(), fixture(&roundtrip)));
    assert!(all.len() > 10, "{} fixtures", all.len());
    all
}

#[test]
fn the_subset_reads_the_same_facts_as_the_whole_object() {
    for (name, object) in fixtures() {
        let whole = CachedVmi::from_json(&object);
        assert_eq!(subset(&object).cached(), whole, "{name}");
        assert!(whole.facts.is_ok(), "{name}");
    }
}

#[test]
fn the_subset_keeps_no_status_volumes_or_managed_fields() {
    let (_, mut object) = fixtures().pop().unwrap_or_default();
    object["spec"]["volumes"][0]["cloudInitNoCloud"]["userData"] = json!("#cloud-config secret");
    let text = serde_json::to_string(&object).unwrap_or_default();
    assert!(text.contains("secret") && text.contains("managedFields") && text.contains("status"));
    let kept = format!("{:?}", subset(&object));
    for absent in [
        "secret",
        "userData",
        "volumes",
        "managedFields",
        "\"status\"",
    ] {
        assert!(!kept.contains(absent), "{absent} kept");
    }
    assert!(
        kept.len() * 3 < text.len(),
        "{} of {} bytes",
        kept.len(),
        text.len()
    );
}

fn vmi(name: &str, uid: &str, dedicated: bool) -> VmiSubset {
    subset(
        &json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
                   "metadata": {"namespace": "ns", "name": name, "uid": uid, "resourceVersion": "1"},
                   "spec": {"domain": {"cpu": {"dedicatedCpuPlacement": dedicated}}}}),
    )
}

fn uid(cache: &VmiCache, name: &str) -> Option<String> {
    cache.get("ns", name).and_then(|cached| cached.uid)
}

#[test]
fn follows_the_watch_and_swaps_a_relist_in_whole() {
    use watcher::Event::*;
    let cache = VmiCache::default();
    assert!(!cache.is_synced());
    for event in [
        Init,
        InitApply(vmi("a", "1", true)),
        InitApply(vmi("b", "2", false)),
    ] {
        cache.apply(event);
    }
    // A list in progress is not served yet.
    assert_eq!((cache.len(), cache.is_synced()), (0, false));
    cache.apply(InitDone);
    assert_eq!((cache.len(), cache.is_synced()), (2, true));
    let facts = cache.get("ns", "a").map(|c| c.facts);
    assert!(
        matches!(facts, Some(Ok(f)) if f.unsafe_reasons == [crate::reason::UnsafeReason::DedicatedCpus])
    );
    cache.apply(Apply(vmi("c", "3", false)));
    cache.apply(Apply(vmi("b", "2b", false)));
    cache.apply(Delete(vmi("a", "1", true)));
    assert_eq!(
        (uid(&cache, "a"), uid(&cache, "b")),
        (None, Some("2b".into()))
    );
    // A re-list: the old entries serve until it is done; then only what it listed remains.
    cache.apply(Init);
    cache.apply(InitApply(vmi("d", "4", false)));
    assert_eq!(uid(&cache, "c"), Some("3".into()));
    cache.apply(InitDone);
    assert_eq!(
        (uid(&cache, "b"), uid(&cache, "c"), uid(&cache, "d")),
        (None, None, Some("4".into()))
    );
    assert!(cache.is_synced());
}

#[test]
fn an_object_that_is_no_vmi_is_cached_with_its_error() {
    let cache = VmiCache::default();
    let pod = subset(&json!({"apiVersion": "v1", "kind": "Pod",
                             "metadata": {"namespace": "ns", "name": "p", "uid": "u"}, "spec": {}}));
    let nameless = subset(&json!({"kind": "VirtualMachineInstance", "spec": {}}));
    cache.apply(watcher::Event::Apply(pod));
    cache.apply(watcher::Event::Apply(nameless));
    assert_eq!(cache.len(), 1);
    assert_eq!(
        cache.get("ns", "p"),
        Some(CachedVmi {
            uid: Some("u".into()),
            facts: Err(FactsError::WrongKind("Pod".into())),
        })
    );
    let specless = subset(&json!({"metadata": {"namespace": "ns", "name": "s"}}));
    cache.apply(watcher::Event::Apply(specless));
    assert_eq!(
        cache.get("ns", "s").map(|c| c.facts),
        Some(Err(FactsError::MissingSpec))
    );
}

#[test]
fn a_vmi_past_the_read_bounds_is_cached_as_too_large_and_counted() {
    let disks: Vec<Value> = (0..MAX_READ_TOKENS).map(|i| json!({"name": i})).collect();
    let huge = "x".repeat(MAX_READ_BYTES + 1);
    let before = VmiSubset::oversized_total();
    for spec in [
        json!({"domain": {"devices": {"disks": disks}}}),
        json!({"domain": {"firmware": {"serial": huge}}}),
    ] {
        let vmi = subset(&json!({"kind": "VirtualMachineInstance",
                                 "metadata": {"namespace": "ns", "name": "big", "uid": "u"},
                                 "spec": spec}));
        let cached = vmi.cached();
        assert_eq!(cached.uid.as_deref(), Some("u"));
        assert!(
            matches!(cached.facts, Err(FactsError::TooLarge(_))),
            "{:?}",
            cached.facts
        );
    }
    assert!(VmiSubset::oversized_total() >= before + 2);
}

#[test]
fn only_the_annotations_and_labels_the_facts_read_are_kept() {
    let many: serde_json::Map<String, Value> = (0..1000)
        .map(|i| (format!("example.com/k{i}"), json!("v".repeat(100))))
        .collect();
    let mut annotations = many.clone();
    annotations.insert(
        "traffic.sidecar.istio.io/excludeInboundPorts".into(),
        json!("48080"),
    );
    let vmi = subset(&json!({"kind": "VirtualMachineInstance",
                             "metadata": {"namespace": "ns", "name": "a", "uid": "u",
                                          "annotations": annotations,
                                          "labels": {"sidecar.istio.io/inject": "true"}},
                             "spec": {"domain": {}}}));
    let kept = format!("{vmi:?}");
    assert!(!kept.contains("example.com"), "{kept}");
    assert!(kept.contains("excludeInboundPorts") && kept.contains("sidecar.istio.io/inject"));
}
