//! The VMI cache: for each VMI in the cluster, only the facts the webhook decides on. No I/O: the
//! watch (`lookup::KubeVmiSource`) feeds it [`watcher::Event`]s.
//!
//! Why not a `reflector` store: it keeps every object whole, and a VMI is tens of KiB of JSON (its
//! spec, status, managedFields and cloud-init userData), ~186 KB once decoded: 930 MB for 5,000
//! VMIs, against the Deployment's 128 MiB limit (`benches/vmi_cache.rs`). Here the watch decodes
//! each VMI into [`VmiSubset`], which skips everything the facts do not read while it is decoded
//! (no `status`, no `spec.volumes`, no `managedFields` ever become values), reads the
//! [`VmiFacts`] from what it kept ([`VmiFacts::read`] on its parts), and the cache keeps only
//! those: under 520 bytes per VMI, which a lookup clones. A re-list is collected aside and swapped
//! in whole when it is done, as a reflector does, so a VMI deleted while the watch was down does
//! not linger.
use std::{
    borrow::Cow,
    collections::{BTreeMap, HashMap},
    fmt,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use k8s_openapi::{NamespaceResourceScope, apimachinery::pkg::apis::meta::v1::ObjectMeta};
use kube::runtime::watcher;
use serde::{Deserialize, Deserializer, de};
use serde_json::{Value, value::RawValue};

use super::facts::{FactsError, SpecParts, VmiFacts, VmiParts};
use super::network::{ISTIO_EXCLUDE_INBOUND, ISTIO_INJECT, IstioMarks};
use crate::patch::complexity::{self, Complexity};

/// The most of `spec.domain` and `spec.networks` together that a VMI's facts are read from. A
/// VMI is at most 1.5 MiB (etcd's default request limit) and KubeVirt allows at most 256 disks,
/// interfaces and networks (`arrayLenMax`), a few dozen KiB of JSON; past either bound the VMI is
/// not read (`FactsError::TooLarge`) and its pods are judged by their own signals.
pub const MAX_READ_BYTES: usize = 512 * 1024;
/// The most JSON tokens (`patch::complexity`) of what is read: the `Value` built from it is
/// at most ~230 bytes per token, ~4.6 MB, and only one VMI's at a time.
pub const MAX_READ_TOKENS: usize = 20_000;

/// Annotation and label keys the facts read (`vmi::network`); every other one is skipped while
/// it is decoded.
const KEPT_KEYS: &[&str] = &[ISTIO_INJECT, ISTIO_EXCLUDE_INBOUND];

/// VMIs decoded past [`MAX_READ_BYTES`] or [`MAX_READ_TOKENS`], since start: exported as
/// `kube_metrics_webhook_oversized_vmis_total`. A process-wide count because decoding happens
/// inside the watcher, which hands us no context.
static OVERSIZED: AtomicU64 = AtomicU64::new(0);

/// A VMI as the watch decodes it: its key and the facts read from it, nothing else. While it is
/// decoded, only `spec.domain`, `spec.networks` and the metadata's name, namespace, uid,
/// resourceVersion and [`KEPT_KEYS`] are kept; `status`, `spec.volumes`, `managedFields` and every
/// other annotation are skipped without building a value. A list page is thus its facts, whatever
/// the size of its VMIs.
#[derive(Clone, Debug, Default)]
pub struct VmiSubset {
    metadata: ObjectMeta,
    cached: Option<CachedVmi>,
}

/// What is decoded of a VMI, before its facts are read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Fields {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    spec: Option<SpecRaw>,
}

/// The metadata the watcher and the facts need.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    resource_version: Option<String>,
    #[serde(default)]
    labels: Kept,
    #[serde(default)]
    annotations: Kept,
}

/// The entries of a string map whose keys are in [`KEPT_KEYS`].
#[derive(Default)]
struct Kept(BTreeMap<String, String>);

/// `spec.domain` and `spec.networks`, raw, so their size is known before a value is built.
#[derive(Deserialize)]
struct SpecRaw {
    #[serde(default)]
    domain: Option<Box<RawValue>>,
    #[serde(default)]
    networks: Option<Box<RawValue>>,
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

    /// What was read of it.
    pub fn cached(&self) -> CachedVmi {
        self.cached.clone().unwrap_or(CachedVmi {
            uid: self.metadata.uid.clone(),
            facts: Err(FactsError::MissingSpec),
        })
    }

    /// VMIs not read because of their size, since start.
    pub fn oversized_total() -> u64 {
        OVERSIZED.load(Ordering::Relaxed)
    }
}

impl<'de> Deserialize<'de> for VmiSubset {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields = Fields::deserialize(deserializer)?;
        let cached = fields.read();
        let Meta {
            name,
            namespace,
            uid,
            resource_version,
            labels,
            annotations,
        } = fields.metadata;
        let metadata = ObjectMeta {
            name,
            namespace,
            uid,
            resource_version,
            labels: Some(labels.0),
            annotations: Some(annotations.0),
            ..ObjectMeta::default()
        };
        Ok(VmiSubset {
            metadata,
            cached: Some(cached),
        })
    }
}

// === impl Fields ===

impl Fields {
    /// The facts, read from the raw domain and networks if they are within the bounds.
    fn read(&self) -> CachedVmi {
        let uid = self.metadata.uid.clone();
        let (domain, networks) = match &self.spec {
            Some(spec) => (raw(spec.domain.as_deref()), raw(spec.networks.as_deref())),
            None => ("", ""),
        };
        if let Err(error) = within_bounds(domain, networks) {
            OVERSIZED.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                namespace = self.metadata.namespace.as_deref().unwrap_or_default(),
                name = self.metadata.name.as_deref().unwrap_or_default(),
                %error,
                "VMI too large to read; its pods are judged by their own signals"
            );
            return CachedVmi {
                uid,
                facts: Err(error),
            };
        }
        // Bounded by `within_bounds`; a part that is not JSON was refused by the decoder.
        let value = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
        let (domain, networks) = (value(domain), value(networks));
        let meta = &self.metadata;
        let parts = VmiParts {
            kind: self.kind.as_deref(),
            api_version: self.api_version.as_deref(),
            namespace: meta.namespace.as_deref(),
            name: meta.name.as_deref(),
            uid: meta.uid.as_deref(),
            istio: IstioMarks {
                inject_label: meta.labels.get(ISTIO_INJECT),
                inject_annotation: meta.annotations.get(ISTIO_INJECT),
                exclude_inbound: meta.annotations.get(ISTIO_EXCLUDE_INBOUND),
            },
            spec: self.spec.as_ref().map(|_| SpecParts {
                domain: &domain,
                networks: &networks,
            }),
        };
        CachedVmi {
            uid,
            facts: VmiFacts::read(&parts).map(Arc::new),
        }
    }
}

fn raw(part: Option<&RawValue>) -> &str {
    part.map_or("", RawValue::get)
}

/// Whether the raw parts a VMI's facts are read from are small enough to read.
fn within_bounds(domain: &str, networks: &str) -> Result<(), FactsError> {
    let bytes = domain.len() + networks.len();
    if bytes > MAX_READ_BYTES {
        return Err(FactsError::TooLarge(format!(
            "{bytes} bytes of domain and networks, over {MAX_READ_BYTES}"
        )));
    }
    let limit = Complexity {
        tokens: MAX_READ_TOKENS,
        depth: complexity::LIMIT.depth,
    };
    let mut tokens = 0;
    for part in [domain, networks] {
        let counted = complexity::check(part.as_bytes(), limit)
            .map_err(|error| FactsError::TooLarge(error.to_string()))?;
        tokens += counted.tokens;
    }
    if tokens > MAX_READ_TOKENS {
        return Err(FactsError::TooLarge(format!(
            "more than {MAX_READ_TOKENS} JSON tokens"
        )));
    }
    Ok(())
}

// === impl Kept ===

impl Kept {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

impl<'de> Deserialize<'de> for Kept {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KeptVisitor)
    }
}

struct KeptVisitor;

impl<'de> de::Visitor<'de> for KeptVisitor {
    type Value = Kept;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of strings")
    }

    /// `null`, or any other non-map: nothing kept, as the facts' lenient reading does.
    fn visit_unit<E: de::Error>(self) -> Result<Kept, E> {
        Ok(Kept::default())
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Kept, A::Error> {
        let mut kept = BTreeMap::new();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if KEPT_KEYS.contains(&key.as_ref()) {
                if let Value::String(value) = map.next_value::<Value>()? {
                    kept.insert(key.into_owned(), value);
                }
            } else {
                map.next_value::<de::IgnoredAny>()?;
            }
        }
        Ok(Kept(kept))
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
                    relist.insert(key, vmi.cached());
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
                    state.by_name.insert(key, vmi.cached());
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
