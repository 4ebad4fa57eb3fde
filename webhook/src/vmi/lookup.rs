//! The I/O edge: finds the pod's `VirtualMachineInstance` in a watch-backed cache, with a direct GET on
//! a miss, all inside a time budget well under the 5 s admission timeout.
//!
//! The fallback logic lives in [`VmiLookup`] over the small [`VmiSource`] trait, so it is tested with
//! an in-memory fake; [`KubeVmiSource`] is the real source (a `kube` watcher over all namespaces
//! feeding a [`VmiCache`] of facts; GETs decoded the same way: no KubeVirt crate). RBAC: `get`,
//! `list`, `watch` on `virtualmachineinstances.kubevirt.io`, cluster-wide; nothing else.
use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use futures::StreamExt;
use kube::{
    Api, Client,
    api::{ApiResource, GroupVersionKind},
    runtime::{WatchStreamExt, watcher},
};
use kube_metrics_contract::kubevirt::DOMAIN_ANNOTATION;
use serde_json::Value;

use super::cache::{CachedVmi, VmiCache, VmiSubset};
use super::facts::{FactsError, VmiFacts};

/// The default time budget: well under the API server's 5 s webhook timeout, leaving room for the
/// rest of the admission and for the network.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(2);

/// VMIs per list page. kube reads a page whole, and holds its text twice while it decodes it (the
/// body, and the string copied from it); each VMI then becomes facts as it is decoded
/// (`cache::VmiSubset`). A VMI is at most 1.5 MiB (etcd's default request limit), so a page is at
/// most 7.5 MiB of text, ~15 MiB while decoded, whatever a tenant puts in its VMIs: 50 per page
/// let 1.4 MB VMIs make a 68 MB page that OOM-killed the webhook at every start. Typical VMIs are
/// ~23 KiB, so 10,000 VMIs are 2,000 requests of ~115 KiB at start and on a re-list.
pub const LIST_PAGE_SIZE: u32 = 5;

/// Which VMI a pod belongs to: what the pod itself names, and the uid that must match.
///
/// The uid is what makes a lookup safe to answer from. A review may come from anyone who can reach
/// the webhook's port, not only from the API server (docs/network.md), and it names any namespace
/// it likes; a VMI found by namespace and name alone would let such a caller learn, from the
/// answer, whether a VMI of that name exists elsewhere and what its spec says. A uid is random and
/// is only on the VMI and on the pods KubeVirt made for it, so a pod that states the uid of the VMI
/// read is one KubeVirt made for that VMI, or was written by someone who could already read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmiRef {
    pub namespace: String,
    pub name: String,
    /// From the owner reference, else `kubevirt.io/created-by`. Only a VMI with exactly this uid
    /// is the pod's (a VMI deleted and recreated under the same name is not, nor one of another
    /// namespace).
    pub uid: String,
}

/// KubeVirt's marks that name a launcher pod's VMI (docs/kubevirt.md §2).
const CREATED_BY_LABEL: &str = "kubevirt.io/created-by";

impl VmiRef {
    /// The owning VMI of a launcher pod (docs/kubevirt.md §2): `ownerReferences[kind=VirtualMachineInstance]`
    /// with its uid, else the annotation `kubevirt.io/domain` with the label
    /// `kubevirt.io/created-by` as uid. `None`, and so no lookup, when the pod names no VMI with a
    /// uid, or contradicts itself: an owner reference and a `created-by` label with different uids
    /// (virt-controller writes the same uid in both), or a `metadata.namespace` that is not the
    /// request's (the API server makes them equal before it calls a webhook). At CREATE the pod's
    /// own `metadata.namespace` may be empty, so the caller passes the AdmissionReview's
    /// `request.namespace`.
    pub fn from_pod(pod: &Value, namespace: &str) -> Option<VmiRef> {
        let metadata = pod.get("metadata")?;
        let text = |value: Option<&Value>| {
            value
                .and_then(Value::as_str)
                .filter(|text| !text.is_empty())
                .map(str::to_owned)
        };
        let owners = metadata.get("ownerReferences").and_then(Value::as_array);
        let is_vmi = |owner: &&Value| {
            owner.get("kind").and_then(Value::as_str) == Some("VirtualMachineInstance")
                && owner
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .is_some_and(|api| api.starts_with("kubevirt.io/"))
        };
        // The controller first: virt-controller's own reference, not one a pod's creator added.
        let controller = |owner: &&Value| owner.get("controller") == Some(&Value::Bool(true));
        let owner = owners.and_then(|owners| {
            let mut vmis = owners.iter().filter(is_vmi);
            vmis.clone().find(controller).or_else(|| vmis.next())
        });
        let created_by = text(
            metadata
                .get("labels")
                .and_then(|map| map.get(CREATED_BY_LABEL)),
        );
        let (name, uid) = match owner {
            Some(owner) => {
                let uid = text(owner.get("uid"))?;
                if created_by.as_ref().is_some_and(|label| *label != uid) {
                    return None;
                }
                (text(owner.get("name"))?, uid)
            }
            None => (
                text(
                    metadata
                        .get("annotations")
                        .and_then(|map| map.get(DOMAIN_ANNOTATION)),
                )?,
                created_by?,
            ),
        };
        let own = text(metadata.get("namespace"));
        let namespace = match (Some(namespace).filter(|ns| !ns.is_empty()), own) {
            (Some(request), Some(own)) if request != own => return None,
            (Some(request), _) => request.to_owned(),
            (None, own) => own?,
        };
        Some(VmiRef {
            namespace,
            name,
            uid,
        })
    }

    /// Whether `cached` is this pod's VMI: the same uid, and (where its facts say) the same
    /// namespace. Anything else is answered as if there were no VMI at all.
    fn owns(&self, cached: &CachedVmi) -> bool {
        let namespace = match &cached.facts {
            Ok(facts) => facts.namespace.as_deref(),
            Err(_) => None,
        };
        cached.uid.as_deref() == Some(self.uid.as_str())
            && namespace.is_none_or(|namespace| namespace == self.namespace)
    }
}

/// The answer of one lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Found(Box<VmiFacts>),
    /// The API server says there is no such VMI, or only one with another uid; also the answer
    /// when the pod names no VMI with a uid (then no lookup is made).
    NotFound,
    Unavailable(Unavailable),
}

impl Lookup {
    /// A closed set of names for a metric label.
    pub fn as_str(&self) -> &'static str {
        match self {
            Lookup::Found(_) => "found",
            Lookup::NotFound => "not-found",
            Lookup::Unavailable(why) => why.as_str(),
        }
    }
}

/// Why the VMI could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    #[error("VMI lookup took longer than its {0:?} budget")]
    Timeout(Duration),
    #[error("VMI GET failed: {0}")]
    Api(String),
    #[error("VMI is not readable: {0}")]
    Unreadable(#[from] FactsError),
}

impl Unavailable {
    pub fn as_str(&self) -> &'static str {
        match self {
            Unavailable::Timeout(_) => "timeout",
            Unavailable::Api(_) => "api-error",
            Unavailable::Unreadable(_) => "unreadable",
        }
    }
}

/// Where VMIs come from: a cache that answers at once, and a GET that may be slow.
pub trait VmiSource: Send + Sync {
    /// The cached VMI, if the cache has it. Never waits (an unsynced cache simply misses).
    fn cached(&self, vmi: &VmiRef) -> Option<CachedVmi>;
    /// A GET from the API server: `Ok(None)` on 404.
    fn get(&self, vmi: &VmiRef) -> impl Future<Output = Result<Option<CachedVmi>, String>> + Send;
}

/// Cache first, GET on a miss, everything inside `budget`.
#[derive(Debug, Clone)]
pub struct VmiLookup<S> {
    source: S,
    budget: Duration,
}

impl<S: VmiSource> VmiLookup<S> {
    pub fn new(source: S, budget: Duration) -> Self {
        VmiLookup { source, budget }
    }

    /// Never takes (much) longer than the budget; never fails: a problem is `Unavailable`.
    pub async fn lookup(&self, vmi: &VmiRef) -> Lookup {
        match tokio::time::timeout(self.budget, self.lookup_unbounded(vmi)).await {
            Ok(answer) => answer,
            Err(_elapsed) => Lookup::Unavailable(Unavailable::Timeout(self.budget)),
        }
    }

    async fn lookup_unbounded(&self, vmi: &VmiRef) -> Lookup {
        // A cached object with another uid is stale (the VMI was recreated) or not the pod's:
        // ask the API server.
        if let Some(cached) = self.source.cached(vmi).filter(|cached| vmi.owns(cached)) {
            return match cached.facts {
                Ok(facts) => Lookup::Found(Box::new(VmiFacts::clone(&facts))),
                Err(error) => Lookup::Unavailable(error.into()),
            };
        }
        match self.source.get(vmi).await {
            Ok(Some(cached)) if vmi.owns(&cached) => match cached.facts {
                Ok(facts) => Lookup::Found(Box::new(VmiFacts::clone(&facts))),
                Err(error) => Lookup::Unavailable(error.into()),
            },
            Ok(_) => Lookup::NotFound,
            Err(error) => Lookup::Unavailable(Unavailable::Api(error)),
        }
    }
}

/// A [`VmiLookup`] behind a pointer: the server holds the cluster's, a test a fake's. `VmiSource`
/// returns `impl Future`, so `VmiLookup<S>` itself cannot be a trait object.
pub trait DynLookup: Send + Sync + std::fmt::Debug {
    fn lookup<'a>(&'a self, vmi: &'a VmiRef) -> Pin<Box<dyn Future<Output = Lookup> + Send + 'a>>;
}

impl<S: VmiSource + std::fmt::Debug + 'static> DynLookup for VmiLookup<S> {
    fn lookup<'a>(&'a self, vmi: &'a VmiRef) -> Pin<Box<dyn Future<Output = Lookup> + Send + 'a>> {
        // The inherent method, not this one.
        Box::pin(VmiLookup::lookup(self, vmi))
    }
}

/// The cluster's lookup: a client from the in-cluster config (or kubeconfig), the watch started on
/// the current runtime. Fails only when no client can be built; the watch retries on its own.
pub async fn connect(
    budget: Duration,
) -> Result<(Arc<dyn DynLookup>, tokio::task::JoinHandle<()>), kube::Error> {
    let client = Client::try_default().await?;
    let (source, task) = KubeVmiSource::spawn(client);
    Ok((Arc::new(VmiLookup::new(source, budget)), task))
}

/// `kubevirt.io/v1` `virtualmachineinstances`, without a KubeVirt crate.
pub fn vmi_resource() -> ApiResource {
    let gvk = GroupVersionKind::gvk("kubevirt.io", "v1", "VirtualMachineInstance");
    ApiResource::from_gvk_with_plural(&gvk, "virtualmachineinstances")
}

/// The real source: the facts of every VMI in the cluster, kept by a watch, and the API server for
/// GETs.
#[derive(Clone)]
pub struct KubeVmiSource {
    client: Client,
    cache: Arc<VmiCache>,
}

impl std::fmt::Debug for KubeVmiSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeVmiSource")
            .field("cached", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl KubeVmiSource {
    /// Starts the watch (all namespaces) on the current Tokio runtime and returns the source at
    /// once: until the first list arrives every lookup is a cache miss served by a GET. The task runs
    /// until the runtime stops; watch errors are logged and retried with backoff.
    pub fn spawn(client: Client) -> (KubeVmiSource, tokio::task::JoinHandle<()>) {
        let cache = Arc::new(VmiCache::default());
        let api: Api<VmiSubset> = Api::all(client.clone());
        let config = watcher::Config::default().page_size(LIST_PAGE_SIZE);
        let stream = watcher(api, config).default_backoff();
        let writer = cache.clone();
        let task = tokio::spawn(async move {
            stream
                .for_each(|event| {
                    match event {
                        Ok(event) => writer.apply(event),
                        Err(error) => {
                            tracing::warn!(%error, "VMI watch failed; retrying with backoff");
                        }
                    }
                    std::future::ready(())
                })
                .await;
        });
        let source = KubeVmiSource { client, cache };
        (source, task)
    }

    /// True once the first full list is in the cache.
    pub fn is_synced(&self) -> bool {
        self.cache.is_synced()
    }
}

impl VmiSource for KubeVmiSource {
    fn cached(&self, vmi: &VmiRef) -> Option<CachedVmi> {
        self.cache.get(&vmi.namespace, &vmi.name)
    }

    /// Decoded as the watch decodes a VMI: a GET of a 1.5 MiB VMI builds its facts, not a value of
    /// all of it.
    async fn get(&self, vmi: &VmiRef) -> Result<Option<CachedVmi>, String> {
        let api: Api<VmiSubset> = Api::namespaced(self.client.clone(), &vmi.namespace);
        match api.get_opt(&vmi.name).await {
            Ok(object) => Ok(object.map(|subset| subset.cached())),
            Err(error) => Err(error.to_string()),
        }
    }
}

/// Where the server reads VMIs from.
#[derive(Clone, Debug)]
pub enum VmiLookups {
    /// `--vmi-lookup off`: never contact the API server; the pod's signals decide.
    Off,
    /// The API server, through a client from the in-cluster config (or a kubeconfig), each lookup
    /// within `budget`.
    Cluster { budget: Duration },
    /// A lookup the caller built: tests inject a fake source here (there is no cluster).
    Given(Arc<dyn DynLookup>),
}

/// The lookup the server uses, and the VMI watch task behind it. A client that cannot be built
/// (no in-cluster config, no kubeconfig) must not take admission down: the webhook then runs with
/// lookups off, says so at error level, and counts every lookup it skips as `off`. Readiness still
/// depends on the certificate alone.
pub async fn start(
    config: VmiLookups,
) -> (
    Option<Arc<dyn DynLookup>>,
    Option<tokio::task::JoinHandle<()>>,
) {
    match config {
        VmiLookups::Off => {
            tracing::info!("VMI lookups are off; pods are judged by their own signals");
            (None, None)
        }
        VmiLookups::Given(lookup) => (Some(lookup), None),
        VmiLookups::Cluster { budget } => match connect(budget).await {
            Ok((lookup, task)) => {
                tracing::info!(budget_ms = budget.as_millis(), "Watching VMIs");
                (Some(lookup), Some(task))
            }
            Err(error) => {
                let error = kube_metrics_runtime::log::error_chain(&error);
                tracing::error!(
                    %error,
                    "No Kubernetes client; running with VMI lookups off"
                );
                (None, None)
            }
        },
    }
}

#[cfg(test)]
#[path = "lookup_tests.rs"]
mod tests;
