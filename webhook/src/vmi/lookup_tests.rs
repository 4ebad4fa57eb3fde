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

fn vm_ref(uid: Option<&str>) -> VmiRef {
    VmiRef {
        namespace: "ns".into(),
        name: "vm".into(),
        uid: uid.map(str::to_owned),
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
    let answer = lookup.lookup(&vm_ref(Some("u1"))).await;
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
    let answer = lookup.lookup(&vm_ref(None)).await;
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
    assert_eq!(
        found_uid(&lookup.lookup(&vm_ref(Some("new"))).await),
        Some("new")
    );
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
    assert_eq!(missing.lookup(&vm_ref(None)).await, Lookup::NotFound);
    let other = VmiLookup::new(
        FakeSource {
            get: Some(Ok(Some(vmi("other", false)))),
            ..FakeSource::default()
        },
        DEFAULT_BUDGET,
    );
    assert_eq!(other.lookup(&vm_ref(Some("mine"))).await, Lookup::NotFound);
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
        failing.lookup(&vm_ref(None)).await,
        Lookup::Unavailable(Unavailable::Api("403 forbidden".into()))
    );
    let garbage = VmiLookup::new(
        FakeSource {
            cache: cached(json!({"kind": "Pod"})),
            ..FakeSource::default()
        },
        DEFAULT_BUDGET,
    );
    let answer = garbage.lookup(&vm_ref(None)).await;
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
    let answer = lookup.lookup(&vm_ref(None)).await;
    let elapsed = started.elapsed();
    assert_eq!(answer, Lookup::Unavailable(Unavailable::Timeout(budget)));
    assert_eq!(answer.as_str(), "timeout");
    assert!(
        elapsed >= budget && elapsed < budget + Duration::from_millis(300),
        "took {elapsed:?}"
    );
}

#[test]
fn vmi_ref_from_pod() {
    let owner = json!({"metadata": {
        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "c"},
                            {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance", "name": "vm", "uid": "u1"}],
        "annotations": {"kubevirt.io/domain": "ignored"}}});
    assert_eq!(VmiRef::from_pod(&owner, "ns"), Some(vm_ref(Some("u1"))));
    let annotated = json!({"metadata": {"namespace": "ns", "annotations": {"kubevirt.io/domain": "vm"},
                                        "labels": {"kubevirt.io/created-by": "u1"}}});
    assert_eq!(VmiRef::from_pod(&annotated, ""), Some(vm_ref(Some("u1"))));
    let name_only = json!({"metadata": {"annotations": {"kubevirt.io/domain": "vm"}}});
    assert_eq!(VmiRef::from_pod(&name_only, "ns"), Some(vm_ref(None)));
    assert_eq!(
        VmiRef::from_pod(&name_only, ""),
        None,
        "no namespace anywhere"
    );
    assert_eq!(
        VmiRef::from_pod(
            &json!({"metadata": {"labels": {"kubevirt.io": "virt-launcher"}}}),
            "ns"
        ),
        None
    );
    assert_eq!(VmiRef::from_pod(&json!("pod"), "ns"), None);
}
