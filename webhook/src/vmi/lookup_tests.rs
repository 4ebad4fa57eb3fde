//! The fallback logic over an in-memory [`VmiSource`]. There is no Kubernetes cluster on this machine:
//! these tests cover cache hit, miss + GET, 404, API errors, stale cache entries and the time budget;
//! the real `KubeVmiSource` is exercised against a fake API server in `tests/vmi_kube.rs`.
use super::*;
use serde_json::json;
use std::{
    collections::HashMap,
    sync::atomic::{AtomicUsize, Ordering},
    time::Instant,
};

#[derive(Default)]
struct FakeSource {
    cache: HashMap<(String, String), Value>,
    /// What a GET returns, after `get_delay`.
    get: Option<Result<Option<Value>, String>>,
    get_delay: Duration,
    gets: AtomicUsize,
}

impl VmiSource for FakeSource {
    fn cached(&self, vmi: &VmiRef) -> Option<CachedVmi> {
        self.cache
            .get(&(vmi.namespace.clone(), vmi.name.clone()))
            .map(CachedVmi::from_json)
    }

    async fn get(&self, _vmi: &VmiRef) -> Result<Option<CachedVmi>, String> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.get_delay).await;
        self.get
            .clone()
            .unwrap_or(Ok(None))
            .map(|object| object.as_ref().map(CachedVmi::from_json))
    }
}

fn vmi(uid: &str, dedicated: bool) -> Value {
    json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
           "metadata": {"namespace": "ns", "name": "vm", "uid": uid},
           "spec": {"domain": {"cpu": {"dedicatedCpuPlacement": dedicated}}}})
}

fn vm_ref(uid: &str) -> VmiRef {
    VmiRef {
        namespace: "ns".into(),
        name: "vm".into(),
        uid: uid.to_owned(),
    }
}

fn cached(object: Value) -> HashMap<(String, String), Value> {
    HashMap::from([(("ns".to_owned(), "vm".to_owned()), object)])
}

fn found_uid(lookup: &Lookup) -> Option<&str> {
    match lookup {
        Lookup::Found(facts) => facts.uid.as_deref(),
        _ => None,
    }
}

#[tokio::test]
async fn cache_hit_needs_no_get() {
    let source = FakeSource {
        cache: cached(vmi("u1", true)),
        ..FakeSource::default()
    };
    let lookup = VmiLookup::new(source, DEFAULT_BUDGET);
    let answer = lookup.lookup(&vm_ref("u1")).await;
    assert_eq!(found_uid(&answer), Some("u1"));
    assert!(
        matches!(&answer, Lookup::Found(facts) if facts.unsafe_reasons == [crate::vmi::UnsafeReason::DedicatedCpus])
    );
    assert_eq!(lookup.source.gets.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn miss_then_get_hit() {
    let source = FakeSource {
        get: Some(Ok(Some(vmi("u1", false)))),
        ..FakeSource::default()
    };
    let lookup = VmiLookup::new(source, DEFAULT_BUDGET);
    let answer = lookup.lookup(&vm_ref("u1")).await;
    assert_eq!(found_uid(&answer), Some("u1"));
    assert_eq!(lookup.source.gets.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn stale_cache_entry_is_bypassed() {
    let source = FakeSource {
        cache: cached(vmi("old", true)),
        get: Some(Ok(Some(vmi("new", false)))),
        ..FakeSource::default()
    };
    let lookup = VmiLookup::new(source, DEFAULT_BUDGET);
    assert_eq!(found_uid(&lookup.lookup(&vm_ref("new")).await), Some("new"));
    assert_eq!(lookup.source.gets.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn get_404_or_other_uid_is_not_found() {
    let missing = VmiLookup::new(
        FakeSource {
            get: Some(Ok(None)),
            ..FakeSource::default()
        },
        DEFAULT_BUDGET,
    );
    assert_eq!(missing.lookup(&vm_ref("u1")).await, Lookup::NotFound);
    let other = VmiLookup::new(
        FakeSource {
            get: Some(Ok(Some(vmi("other", false)))),
            ..FakeSource::default()
        },
        DEFAULT_BUDGET,
    );
    assert_eq!(other.lookup(&vm_ref("mine")).await, Lookup::NotFound);
}

#[tokio::test]
async fn api_error_and_garbage_are_unavailable() {
    let failing = VmiLookup::new(
        FakeSource {
            get: Some(Err("403 forbidden".into())),
            ..FakeSource::default()
        },
        DEFAULT_BUDGET,
    );
    assert_eq!(
        failing.lookup(&vm_ref("u1")).await,
        Lookup::Unavailable(Unavailable::Api("403 forbidden".into()))
    );
    let garbage = VmiLookup::new(
        FakeSource {
            cache: cached(json!({"kind": "Pod", "metadata": {"uid": "u1"}})),
            ..FakeSource::default()
        },
        DEFAULT_BUDGET,
    );
    let answer = garbage.lookup(&vm_ref("u1")).await;
    // Rejected for its kind before its missing spec.
    assert_eq!(
        answer,
        Lookup::Unavailable(Unavailable::Unreadable(FactsError::WrongKind("Pod".into())))
    );
    assert_eq!(answer.as_str(), "unreadable");
}

#[tokio::test]
async fn slow_get_is_cut_at_the_budget() {
    let budget = Duration::from_millis(200);
    let source = FakeSource {
        get: Some(Ok(Some(vmi("u1", false)))),
        get_delay: Duration::from_secs(30),
        ..FakeSource::default()
    };
    let lookup = VmiLookup::new(source, budget);
    let started = Instant::now();
    let answer = lookup.lookup(&vm_ref("u1")).await;
    let elapsed = started.elapsed();
    assert_eq!(answer, Lookup::Unavailable(Unavailable::Timeout(budget)));
    assert_eq!(answer.as_str(), "timeout");
    assert!(
        elapsed >= budget && elapsed < budget + Duration::from_millis(300),
        "took {elapsed:?}"
    );
}

/// A VMI that is there, but not the pod's: another uid (as a forged review that guesses a name
/// would state), or the uid right but another namespace. Both are answered as if there were none.
#[tokio::test]
async fn a_vmi_that_is_not_the_pods_is_not_found() {
    let other_uid = VmiLookup::new(
        FakeSource {
            cache: cached(vmi("theirs", true)),
            get: Some(Ok(Some(vmi("theirs", true)))),
            ..FakeSource::default()
        },
        DEFAULT_BUDGET,
    );
    assert_eq!(other_uid.lookup(&vm_ref("guess")).await, Lookup::NotFound);
    let mut elsewhere = vmi("u1", true);
    elsewhere["metadata"]["namespace"] = json!("other");
    let other_namespace = VmiLookup::new(
        FakeSource {
            cache: cached(elsewhere.clone()),
            get: Some(Ok(Some(elsewhere))),
            ..FakeSource::default()
        },
        DEFAULT_BUDGET,
    );
    assert_eq!(
        other_namespace.lookup(&vm_ref("u1")).await,
        Lookup::NotFound
    );
    // A VMI without a uid is nobody's.
    let mut anonymous = vmi("u1", true);
    if let Some(metadata) = anonymous["metadata"].as_object_mut() {
        metadata.remove("uid");
    }
    let no_uid = VmiLookup::new(
        FakeSource {
            get: Some(Ok(Some(anonymous))),
            ..FakeSource::default()
        },
        DEFAULT_BUDGET,
    );
    assert_eq!(no_uid.lookup(&vm_ref("u1")).await, Lookup::NotFound);
}

/// What a pod names, and whether that is a VMI to look up. Only a uid makes it one.
#[test]
fn vmi_ref_from_pod() {
    let owner = |uid: Value| {
        json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance", "name": "vm",
               "uid": uid, "controller": true})
    };
    let pod = |metadata: Value| json!({"metadata": metadata});
    let found = Some(vm_ref("u1"));
    let cases: [(&str, Value, &str, Option<VmiRef>); 14] = [
        (
            "owner reference with uid",
            pod(json!({"ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "c"}, owner(json!("u1"))],
                "annotations": {"kubevirt.io/domain": "ignored"}})),
            "ns",
            found.clone(),
        ),
        (
            "owner reference and created-by agree",
            pod(json!({"ownerReferences": [owner(json!("u1"))],
                       "labels": {"kubevirt.io/created-by": "u1"}})),
            "ns",
            found.clone(),
        ),
        (
            "owner reference without uid",
            pod(json!({"ownerReferences": [owner(Value::Null)],
                       "labels": {"kubevirt.io/created-by": "u1"}})),
            "ns",
            None,
        ),
        (
            "owner reference with an empty uid",
            pod(json!({"ownerReferences": [owner(json!(""))]})),
            "ns",
            None,
        ),
        (
            "owner reference and created-by disagree",
            pod(json!({"ownerReferences": [owner(json!("u1"))],
                       "labels": {"kubevirt.io/created-by": "u2"}})),
            "ns",
            None,
        ),
        (
            "domain annotation and created-by",
            pod(
                json!({"namespace": "ns", "annotations": {"kubevirt.io/domain": "vm"},
                       "labels": {"kubevirt.io/created-by": "u1"}}),
            ),
            "",
            found.clone(),
        ),
        (
            "domain annotation without created-by",
            pod(json!({"annotations": {"kubevirt.io/domain": "vm"}})),
            "ns",
            None,
        ),
        (
            "created-by without a name",
            pod(json!({"labels": {"kubevirt.io/created-by": "u1"}})),
            "ns",
            None,
        ),
        (
            "the request's namespace, the pod's empty",
            pod(json!({"ownerReferences": [owner(json!("u1"))]})),
            "ns",
            found.clone(),
        ),
        (
            "the pod's namespace, the request's empty",
            pod(json!({"namespace": "ns", "ownerReferences": [owner(json!("u1"))]})),
            "",
            found.clone(),
        ),
        (
            "the same namespace in both",
            pod(json!({"namespace": "ns", "ownerReferences": [owner(json!("u1"))]})),
            "ns",
            found,
        ),
        (
            "the pod's namespace is not the request's",
            pod(json!({"namespace": "other", "ownerReferences": [owner(json!("u1"))]})),
            "ns",
            None,
        ),
        (
            "no namespace anywhere",
            pod(json!({"ownerReferences": [owner(json!("u1"))]})),
            "",
            None,
        ),
        (
            "no VMI named",
            pod(json!({"labels": {"kubevirt.io": "virt-launcher"}})),
            "ns",
            None,
        ),
    ];
    for (name, pod, namespace, want) in cases {
        assert_eq!(VmiRef::from_pod(&pod, namespace), want, "{name}");
    }
    assert_eq!(VmiRef::from_pod(&json!("pod"), "ns"), None);
}
