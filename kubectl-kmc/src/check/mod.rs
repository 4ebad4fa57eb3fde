//! `kubectl kmc check`: reads the objects on the injection path (I/O here), judges them in
//! [`checklist`] and explains skips with [`advice`].

pub mod advice;
pub mod checklist;
pub mod facts;
pub mod line;
pub mod platform;
pub mod render;

#[cfg(test)]
mod tests;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube_metrics_contract::rules;

use crate::cluster::{Call, Cluster, ClusterError};
use crate::fleet::{Relayed, rule};
use crate::prom::Prometheus;
use checklist::Facts;
use facts::{Endpoints, Probe, Webhook};

/// What `check` was asked about.
#[derive(Clone, Debug)]
pub struct Request {
    pub webhook_name: String,
    pub namespace: String,
    pub vm: Option<String>,
    /// `Err` says why there is none to ask.
    pub prometheus: Result<Prometheus, String>,
    /// How relayed series are stored (`--user-workload-monitoring`).
    pub relayed: Relayed,
}

/// Why `check` could not run at all (as opposed to a failed line).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(
        "unknown VM {namespace}/{name}: no VirtualMachine, VirtualMachineInstance or launcher pod of that name"
    )]
    UnknownVm { namespace: String, name: String },
}

/// Where the add-on is installed when the webhook names no Service (manifests/base).
const DEFAULT_INSTALL_NAMESPACE: &str = "kube-metrics-collector";

/// Reads everything the checklist needs.
pub async fn gather(cluster: &Cluster, request: &Request) -> Result<Facts, CheckError> {
    let webhook = read_webhook(cluster, &request.webhook_name).await?;
    let endpoints = match webhook.as_ref().and_then(|w| w.service.as_ref()) {
        Some((ns, name)) => Some(read_endpoints(cluster, ns, name).await?),
        None => None,
    };
    let namespace = read_namespace(cluster, &request.namespace).await?;
    let vm = match &request.vm {
        Some(name) => Some(read_vm(cluster, request, name).await?),
        None => None,
    };
    let install_namespace = webhook
        .as_ref()
        .and_then(|w| w.service.as_ref())
        .map_or(DEFAULT_INSTALL_NAMESPACE, |(ns, _)| ns.as_str());
    let platform = platform::read::gather(cluster, install_namespace).await;
    let series = match &request.prometheus {
        Ok(prometheus) => series(prometheus, &request.relayed).await,
        Err(why) => Probe::NotAsked(why.clone()),
    };
    Ok(Facts {
        webhook_name: request.webhook_name.clone(),
        webhook,
        endpoints,
        namespace,
        vm,
        series,
        platform,
        relayed_exported: matches!(request.relayed, Relayed::Exported { .. }),
    })
}

async fn read_webhook(cluster: &Cluster, name: &str) -> Result<Option<Webhook>, ClusterError> {
    let call = Call {
        verb: "get",
        resource: "mutatingwebhookconfigurations",
        namespace: None,
        name,
    };
    let api: Api<MutatingWebhookConfiguration> = Api::all(cluster.client.clone());
    let Some(config) = api
        .get_opt(name)
        .await
        .map_err(|e| call.error(&cluster.url, e))?
    else {
        return Ok(None);
    };
    let hooks = config.webhooks.unwrap_or_default();
    let ca_bundle_set = !hooks.is_empty()
        && hooks.iter().all(|h| {
            h.client_config
                .ca_bundle
                .as_ref()
                .is_some_and(|b| !b.0.is_empty())
        });
    let client = hooks.first().map(|h| &h.client_config);
    let service = client
        .and_then(|c| c.service.as_ref())
        .map(|s| (s.namespace.clone(), s.name.clone()));
    let url = client.and_then(|c| c.url.clone());
    let excluded_namespaces = hooks
        .iter()
        .filter_map(|h| h.namespace_selector.as_ref())
        .flat_map(|s| s.match_expressions.iter().flatten())
        .filter(|e| e.key == "kubernetes.io/metadata.name" && e.operator == "NotIn")
        .flat_map(|e| e.values.iter().flatten().cloned())
        .collect();
    Ok(Some(Webhook {
        ca_bundle_set,
        service,
        url,
        excluded_namespaces,
    }))
}

async fn read_endpoints(
    cluster: &Cluster,
    ns: &str,
    service: &str,
) -> Result<Endpoints, ClusterError> {
    let call = Call {
        verb: "list",
        resource: "endpointslices.discovery.k8s.io",
        namespace: Some(ns),
        name: "",
    };
    let api: Api<EndpointSlice> = Api::namespaced(cluster.client.clone(), ns);
    let params = ListParams::default().labels(&format!("kubernetes.io/service-name={service}"));
    let slices = api
        .list(&params)
        .await
        .map_err(|e| call.error(&cluster.url, e))?;
    let mut endpoints = Endpoints {
        slices: slices.items.len(),
        ..Endpoints::default()
    };
    for endpoint in slices
        .items
        .iter()
        .flat_map(|s| s.endpoints.iter().flatten())
    {
        // EndpointSlice API: an unset `ready` is to be read as ready.
        let ready = endpoint
            .conditions
            .as_ref()
            .and_then(|c| c.ready)
            .unwrap_or(true);
        if ready {
            endpoints.ready += 1;
        } else {
            endpoints.not_ready += 1;
        }
    }
    Ok(endpoints)
}

async fn read_namespace(cluster: &Cluster, name: &str) -> Result<facts::Namespace, ClusterError> {
    let call = Call {
        verb: "get",
        resource: "namespaces",
        namespace: None,
        name,
    };
    let api: Api<Namespace> = Api::all(cluster.client.clone());
    let namespace = api
        .get_opt(name)
        .await
        .map_err(|e| call.error(&cluster.url, e))?;
    Ok(facts::Namespace {
        name: name.to_owned(),
        labels: namespace.map(|n| n.metadata.labels.unwrap_or_default()),
    })
}

async fn read_vm(
    cluster: &Cluster,
    request: &Request,
    name: &str,
) -> Result<facts::Vm, CheckError> {
    let ns = request.namespace.as_str();
    let Some(pod) = current_launcher(cluster, ns, name).await? else {
        if !vm_exists(cluster, ns, name).await? {
            return Err(CheckError::UnknownVm {
                namespace: ns.to_owned(),
                name: name.to_owned(),
            });
        }
        return Ok(facts::Vm {
            name: name.to_owned(),
            pod: None,
        });
    };
    let facts = facts::Pod {
        name: pod.metadata.name.clone().unwrap_or_default(),
        node: pod.spec.and_then(|s| s.node_name).unwrap_or_default(),
        annotations: pod.metadata.annotations.unwrap_or_default(),
        labels: pod.metadata.labels.unwrap_or_default(),
    };
    Ok(facts::Vm {
        name: name.to_owned(),
        pod: Some(facts),
    })
}

/// The VM's newest launcher pod that has not ended, else its newest.
async fn current_launcher(
    cluster: &Cluster,
    ns: &str,
    vm: &str,
) -> Result<Option<Pod>, ClusterError> {
    let call = Call {
        verb: "list",
        resource: "pods",
        namespace: Some(ns),
        name: "",
    };
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), ns);
    let pods = api
        .list(&ListParams::default().labels("kubevirt.io=virt-launcher"))
        .await
        .map_err(|e| call.error(&cluster.url, e))?;
    let mut mine: Vec<Pod> = pods
        .items
        .into_iter()
        .filter(|p| belongs_to(p, vm))
        .collect();
    mine.sort_by_key(|p| {
        let phase = p
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("");
        let live = !matches!(phase, "Succeeded" | "Failed");
        (live, p.metadata.creation_timestamp.clone())
    });
    Ok(mine.pop())
}

/// Labelled `vm.kubevirt.io/name=<vm>` or owned by the VMI `<vm>`.
fn belongs_to(pod: &Pod, vm: &str) -> bool {
    let labelled = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("vm.kubevirt.io/name"))
        .is_some_and(|n| n == vm);
    let owned = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "VirtualMachineInstance" && o.name == vm);
    labelled || owned
}

async fn vm_exists(cluster: &Cluster, ns: &str, name: &str) -> Result<bool, ClusterError> {
    for (kind, plural, resource) in [
        (
            "VirtualMachine",
            "virtualmachines",
            "virtualmachines.kubevirt.io",
        ),
        (
            "VirtualMachineInstance",
            "virtualmachineinstances",
            "virtualmachineinstances.kubevirt.io",
        ),
    ] {
        let gvk = GroupVersionKind::gvk("kubevirt.io", "v1", kind);
        let api_resource = ApiResource::from_gvk_with_plural(&gvk, plural);
        let api: Api<DynamicObject> =
            Api::namespaced_with(cluster.client.clone(), ns, &api_resource);
        let call = Call {
            verb: "get",
            resource,
            namespace: Some(ns),
            name,
        };
        if api
            .get_opt(name)
            .await
            .map_err(|e| call.error(&cluster.url, e))?
            .is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The pods whose info is there as the recording rules read it (`rules::POD_INFO`).
async fn series(prometheus: &Prometheus, relayed: &Relayed) -> Probe {
    let query = match relayed.read(&rule(rules::POD_INFO)) {
        Ok(query) => query,
        Err(error) => return Probe::Failed(error.to_string()),
    };
    match prometheus.query(&query).await {
        Ok(samples) => Probe::Answered(
            samples
                .iter()
                .map(|s| (s.label("namespace").to_owned(), s.label("pod").to_owned()))
                .collect(),
        ),
        Err(error) => Probe::Failed(error.to_string()),
    }
}

/// Labels of a pod for the tests' fixtures.
#[cfg(test)]
fn labels(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
