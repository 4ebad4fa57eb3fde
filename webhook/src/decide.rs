//! A pod, the policy and what the VMI lookup found -> `Decision`: inject the collector, or skip with a
//! reason from a closed set. Two steps, so the server can look the VMI up in between and only for
//! pods that need it: [`precheck`] (the pod alone: launcher, provisioning, the node's namespaces,
//! injected, opted out, shape)
//! and [`decide`] (the VM's type and network, from the VMI or else the pod's signals). Reads the typed
//! pod only; the patch is built on the raw JSON by `patch`. No I/O, no logging.
pub mod hazards;
mod plan;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube_metrics_contract as contract;
use kube_metrics_contract::kubevirt::COMPUTE_CONTAINER;

use crate::policy::Policy;
use crate::vmi::{self, Lookup, PathDecision, PathReason, Source, Verdict};

pub use crate::reason::{SkipReason, UnsafeReason};
pub use plan::{LOG_LEVELS, Plan, RunAs};

/// KubeVirt's marks on a launcher pod (docs/kubevirt.md §2).
const LAUNCHER_LABEL: (&str, &str) = ("kubevirt.io", "virt-launcher");
const PROVISIONING_ANNOTATION: (&str, &str) = ("kubevirt.io/ephemeral-provisioning", "true");
const VMI_KIND: &str = "VirtualMachineInstance";
/// The API group of KubeVirt's VMI; any version.
const KUBEVIRT_GROUP: &str = "kubevirt.io";

/// What to do with one pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Inject(Box<Plan>),
    /// Decided from the pod alone (not a launcher, opted out, unparseable, ...).
    Skip(SkipReason),
    /// The VM's type forbids a shared PID namespace; `source` says whether the VMI showed it or the
    /// pod's signals did because the VMI was not read; `covered`: the node collector reports it.
    Unsafe {
        reason: SkipReason,
        source: Source,
        covered: bool,
    },
}

/// A launcher pod that passed every check that needs no VMI. Only [`precheck`] makes one, so
/// [`decide`] never sees a pod that should have been skipped before the lookup.
#[derive(Clone, Debug)]
pub struct Candidate {
    pod: Box<Pod>,
}

// === impl Decision ===

impl Decision {
    /// The reason of either kind of skip.
    pub fn skip_reason(&self) -> Option<SkipReason> {
        match self {
            Decision::Inject(_) => None,
            Decision::Skip(reason) | Decision::Unsafe { reason, .. } => Some(*reason),
        }
    }
}

// === impl Candidate ===

impl Candidate {
    pub fn pod(&self) -> &Pod {
        &self.pod
    }
}

/// The checks that need only the pod, in order; the first that fails is the skip reason.
pub fn precheck(pod: Pod) -> Result<Candidate, SkipReason> {
    match skip_reason(&pod) {
        Some(reason) => Err(reason),
        None => Ok(Candidate { pod: Box::new(pod) }),
    }
}

/// Decides about a candidate from what the VMI lookup found, and returns the verdict behind it (for
/// the log line). The order: the VM's type (from the VMI when it was read, which then overrides the
/// pod's signals either way; else from the pod's signals), then the sidecar's port (moved when the
/// VM's passt interface lists it), then the plan (unparseable when the pod has no user id or a
/// quantity we cannot read).
pub fn decide(candidate: &Candidate, policy: &Policy, lookup: &Lookup) -> (Decision, Verdict) {
    let pod = candidate.pod();
    let pod_reasons = pod
        .spec
        .as_ref()
        .map(hazards::pid_namespace_hazards_from_pod)
        .unwrap_or_default();
    // `resource-claims` has no VMI twin, so it counts only when the pod's signals decide.
    let mapped: Vec<UnsafeReason> = pod_reasons
        .iter()
        .filter_map(|reason| reason.unsafe_reason())
        .collect();
    let free = |wanted: u16, taken: &dyn Fn(u16) -> bool| {
        pod.spec
            .as_ref()
            .map_or(wanted, |spec| plan::free_port(spec, wanted, taken))
    };
    let mut port = free(policy.port, &|_| false);
    let mut verdict = vmi::verdict(lookup, &mapped, port);
    let mut listed = None;
    if verdict.passt_port_conflict
        && let Lookup::Found(facts) = lookup
    {
        listed = Some(port);
        port = free(port, &|p| facts.passt_port_conflict(p));
        verdict = vmi::verdict(lookup, &mapped, port);
    }
    let unsafe_reason = match verdict.source {
        Source::Vmi => verdict
            .unsafe_reasons
            .first()
            .copied()
            .map(SkipReason::Unsafe),
        Source::PodFallback => pod_reasons.first().copied(),
    };
    if let Some(reason) = unsafe_reason {
        let source = verdict.source;
        let covered = policy.node_collector;
        return (
            Decision::Unsafe {
                reason,
                source,
                covered,
            },
            verdict,
        );
    }
    let decision = match plan::plan(pod, policy, port, &verdict) {
        Some(mut plan) => {
            if let Some(listed) = listed {
                plan.warnings.push(format!(
                    "the VM's passt interface lists port {listed}; the metrics sidecar uses {port} instead"
                ));
            }
            Decision::Inject(Box::new(plan))
        }
        None => Decision::Skip(SkipReason::Unparseable),
    };
    (decision, verdict)
}

/// What a pod that already has a container named like ours is marked with: who judged its VM and
/// its scrape path, derived as on the first pass from the VMI lookup and the port that container
/// declares, whatever the pod's own labels say. A pass over our own patch thus yields the same marks
/// (an empty patch), and a pod created with such a container gets no more than the webhook would
/// give it. The VM's type is not judged again: nothing is injected. No readable port: the relay.
pub fn reinvoked(port: Option<u16>, policy: &Policy, lookup: &Lookup) -> (Source, PathDecision) {
    let verdict = vmi::verdict(lookup, &[], port.unwrap_or(policy.port));
    let scrape = match port {
        Some(_) => plan::scrape_path(policy, &verdict),
        None => PathDecision::relay(PathReason::UnreadablePorts),
    };
    (verdict.source, scrape)
}

/// The first check that fails, of those that need only the pod.
fn skip_reason(pod: &Pod) -> Option<SkipReason> {
    let meta = &pod.metadata;
    let label = |key: &str| {
        meta.labels
            .as_ref()
            .and_then(|m| m.get(key))
            .map(String::as_str)
    };
    let annotation = |key: &str| {
        meta.annotations
            .as_ref()
            .and_then(|m| m.get(key))
            .map(String::as_str)
    };
    let owned_by_vmi = meta
        .owner_references
        .iter()
        .flatten()
        .any(is_vmi_controller);
    if label(LAUNCHER_LABEL.0) != Some(LAUNCHER_LABEL.1) || !owned_by_vmi {
        return Some(SkipReason::NotLauncher);
    }
    if annotation(PROVISIONING_ANNOTATION.0) == Some(PROVISIONING_ANNOTATION.1) {
        return Some(SkipReason::Provisioning);
    }
    let Some(spec) = pod.spec.as_ref() else {
        return Some(SkipReason::Unparseable);
    };
    // The node's namespaces: the collector would bind the node's port, or see the node's processes.
    // Before "already injected": such a pod is never marked as having our sidecar.
    let host = [
        (spec.host_network, SkipReason::HostNetwork),
        (spec.host_pid, SkipReason::HostPid),
        (spec.host_ipc, SkipReason::HostIpc),
    ];
    if let Some((_, reason)) = host.iter().find(|(flag, _)| *flag == Some(true)) {
        return Some(*reason);
    }
    // Before the opt-out: a second pass must be an empty patch whatever else changed.
    if injected_port(spec).is_some() {
        return Some(SkipReason::AlreadyInjected);
    }
    let disabled = Some(contract::pod::INJECT_DISABLED);
    // `false` is somebody's decision against a shared PID namespace; `add` would overwrite it.
    if label(contract::pod::INJECT) == disabled
        || annotation(contract::pod::INJECT) == disabled
        || spec.share_process_namespace == Some(false)
    {
        return Some(SkipReason::OptedOut);
    }
    if !has_the_expected_shape(spec) {
        return Some(SkipReason::Unparseable);
    }
    None
}

/// What the patch relies on: `compute` first, our volume names free, and no pod-level resources
/// (they change the QoS rules we follow).
fn has_the_expected_shape(spec: &PodSpec) -> bool {
    let compute_first = spec
        .containers
        .first()
        .is_some_and(|c| c.name == COMPUTE_CONTAINER);
    let names_free = spec.volumes.iter().flatten().all(|v| {
        v.name != contract::sidecar::PODINFO_VOLUME && v.name != contract::sidecar::SOCKET_VOLUME
    });
    compute_first && names_free && spec.resources.is_none()
}

/// A controller owner reference to a VMI of KubeVirt's group (`kubevirt.io/<any version>`): what
/// virt-controller sets on every launcher pod. A `VirtualMachineInstance` of another group, or a
/// mere co-owner, does not make a pod a launcher.
pub fn is_vmi_controller(owner: &OwnerReference) -> bool {
    let group = owner.api_version.split_once('/').map(|(group, _)| group);
    owner.kind == VMI_KIND && group == Some(KUBEVIRT_GROUP) && owner.controller == Some(true)
}

/// When the pod has a container named like ours: `Some` with the port of its `kmc-metrics`
/// containerPort (`None` inside when it has none we can read). What the webhook says about such a
/// pod is derived from that port (`patch`), never copied from the pod's own labels.
pub fn injected_port(spec: &PodSpec) -> Option<Option<u16>> {
    let ours = all_containers(spec).find(|c| c.name == contract::sidecar::CONTAINER_NAME)?;
    let port = ours
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some(contract::sidecar::PORT_NAME))
        .and_then(|p| u16::try_from(p.container_port).ok());
    Some(port)
}

/// Regular and init containers: what QoS, ports and hazards are computed over.
pub(crate) fn all_containers(spec: &PodSpec) -> impl Iterator<Item = &Container> {
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod vmi_tests;
