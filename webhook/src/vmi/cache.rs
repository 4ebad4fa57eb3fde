//! The VMI cache: for each VMI in the cluster, only the facts the webhook decides on. No I/O: the
//! watch (`lookup::KubeVmiSource`) feeds it [`watcher::Event`]s.
//!
//! Why not a `reflector` store: it keeps every object whole, and a VMI is tens of KiB (its spec,
//! status, managedFields and cloud-init userData; ~650 MB for 3,000 VMIs, against the Deployment's
//! 128 MiB limit). Here the watch decodes each VMI into [`VmiSubset`], which skips everything the
//! facts do not read while it is decoded (no `status`, no `spec.volumes`, no `managedFields` ever
//! become values), and the cache keeps the [`VmiFacts`] read from it: some hundreds of bytes per
//! VMI. A re-list is collected aside and swapped in whole when it is done, as a reflector does, so
//! a VMI deleted while the watch was down does not linger.
use std::{
    borrow::Cow,
    collections::HashMap,
    sync::{Arc, RwLock},
};

use k8s_openapi::{NamespaceResourceScope, apimachinery::pkg::apis::meta::v1::ObjectMeta};
use kube::runtime::watcher;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::facts::{FactsError, VmiFacts};

/// A VMI as the watch decodes it: what [`VmiFacts::from_json`] reads, and nothing else. The
/// member values kept are raw JSON, so a field of a surprising type is judged by the facts'
/// lenient rules, not refused here.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmiSubset {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    /// Whole: the watcher reads `resourceVersion` from it. Its `managedFields` and annotations are
    /// decoded with it, but the cache keeps only the facts.
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: Option<SpecSubset>,
}

/// `spec.domain` and `spec.networks`: the VM's type and its pod network.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct SpecSubset {
    #[serde(default, skip_serializing_if = "Value::is_null")]
    domain: Value,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    networks: Value,
}

/// One VMI in the cache: its uid (compared with the pod's owner reference) and what was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedVmi {
    pub uid: Option<String>,
    /// An object that is no VMI is cached too, so its lookup says why.
    pub facts: Result<Arc<VmiFacts>, FactsError>,
}

/// The cache, shared by the watch task (writer) and the lookups (readers).
#[derive(Debug, Default)]
pub struct VmiCache {
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    by_name: HashMap<(String, String), CachedVmi>,
    /// A re-list in progress.
    relist: Option<HashMap<(String, String), CachedVmi>>,
    synced: bool,
}

// === impl VmiSubset ===

impl VmiSubset {
    /// The `(namespace, name)` key, when the object has both.
    fn key(&self) -> Option<(String, String)> {
        Some((
            self.metadata.namespace.clone()?,
            self.metadata.name.clone()?,
        ))
    }

    /// The object [`VmiFacts::from_json`] reads, built from the subset.
    fn to_json(&self) -> Value {
        let mut object = Map::new();
        if let Some(api_version) = &self.api_version {
            object.insert("apiVersion".into(), json!(api_version));
        }
        if let Some(kind) = &self.kind {
            object.insert("kind".into(), json!(kind));
        }
        let meta = &self.metadata;
        let metadata = json!({"namespace": meta.namespace, "name": meta.name, "uid": meta.uid,
                              "annotations": meta.annotations});
        object.insert("metadata".into(), metadata);
        if let Some(spec) = &self.spec {
            object.insert("spec".into(), json!(spec));
        }
        Value::Object(object)
    }
}

/// Lets the watcher list and watch [`VmiSubset`]s as `kubevirt.io/v1` VirtualMachineInstances.
impl kube::Resource for VmiSubset {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "VirtualMachineInstance".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "kubevirt.io".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "virtualmachineinstances".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

// === impl CachedVmi ===

impl CachedVmi {
    /// Reads the facts of one VMI as the API server returns it.
    pub fn from_json(object: &Value) -> CachedVmi {
        let uid = object
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .map(str::to_owned);
        CachedVmi {
            uid,
            facts: VmiFacts::from_json(object).map(Arc::new),
        }
    }

    fn from_subset(vmi: &VmiSubset) -> CachedVmi {
        CachedVmi::from_json(&vmi.to_json())
    }
}

// === impl VmiCache ===

impl VmiCache {
    /// The cached VMI `namespace/name`.
    pub fn get(&self, namespace: &str, name: &str) -> Option<CachedVmi> {
        self.read()
            .by_name
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    pub fn len(&self) -> usize {
        self.read().by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True once a first list is complete.
    pub fn is_synced(&self) -> bool {
        self.read().synced
    }

    /// Applies one watch event.
    pub fn apply(&self, event: watcher::Event<VmiSubset>) {
        let mut state = self
            .state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match event {
            watcher::Event::Init => state.relist = Some(HashMap::new()),
            watcher::Event::InitApply(vmi) => {
                if let (Some(key), Some(relist)) = (vmi.key(), state.relist.as_mut()) {
                    relist.insert(key, CachedVmi::from_subset(&vmi));
                }
            }
            watcher::Event::InitDone => {
                if let Some(relist) = state.relist.take() {
                    state.by_name = relist;
                }
                state.synced = true;
            }
            watcher::Event::Apply(vmi) => {
                if let Some(key) = vmi.key() {
                    state.by_name.insert(key, CachedVmi::from_subset(&vmi));
                }
            }
            watcher::Event::Delete(vmi) => {
                if let Some(key) = vmi.key() {
                    state.by_name.remove(&key);
                }
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
