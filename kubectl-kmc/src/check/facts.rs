//! What `check` read from the cluster and Prometheus, as plain data: the webhook's
//! configuration and endpoints, the namespace, the VM and its launcher pod, the pods Prometheus has
//! series of. `checklist` turns them into lines; no I/O.

use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, Default)]
pub struct Webhook {
    /// Every webhook entry has a non-empty `clientConfig.caBundle`.
    pub ca_bundle_set: bool,
    /// `clientConfig.service` of the first entry: namespace, name.
    pub service: Option<(String, String)>,
    /// `clientConfig.url` of the first entry, when it names no Service.
    pub url: Option<String>,
    /// Namespaces the `namespaceSelector` keeps out whatever their labels (`NotIn` values).
    pub excluded_namespaces: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Endpoints {
    pub slices: usize,
    pub ready: usize,
    pub not_ready: usize,
}

#[derive(Clone, Debug, Default)]
pub struct Namespace {
    pub name: String,
    /// `None`: it does not exist.
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, Default)]
pub struct Vm {
    pub name: String,
    /// The current launcher pod; `None` when the VM runs none.
    pub pod: Option<Pod>,
}

#[derive(Clone, Debug, Default)]
pub struct Pod {
    pub name: String,
    pub node: String,
    pub annotations: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// Which launcher pods Prometheus has `kubevirt_pod_infra_pod_info` of, as the recording rules
/// read it.
#[derive(Clone, Debug, PartialEq)]
pub enum Probe {
    /// No Prometheus to ask: why.
    NotAsked(String),
    /// Namespace and name of each pod.
    Answered(BTreeSet<(String, String)>),
    /// Prometheus could not be asked; the error's text.
    Failed(String),
}
