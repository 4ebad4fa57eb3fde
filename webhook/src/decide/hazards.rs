//! VM types that a shared PID namespace breaks, as the launcher pod shows them (docs/kubevirt.md §3.2).
//! virt-handler finds QEMU among the children of virt-launcher's parent; with
//! `shareProcessNamespace: true` QEMU is reparented to `/pause` and that lookup fails for the VMs
//! that need it. The owning VirtualMachineInstance says the same more directly (`vmi::facts`); these
//! signals decide only when it cannot be read. No I/O.
use k8s_openapi::api::core::v1::{Container, PodSpec};

use super::{SkipReason, UnsafeReason, all_containers};

/// Node selector keys KubeVirt sets for these VM types.
const CPU_MANAGER_SELECTOR: &str = "kubevirt.io/cpumanager";
const REALTIME_SELECTOR: &str = "kubevirt.io/realtime";
const SEV_SELECTOR_PREFIX: &str = "kubevirt.io/sev";
const TDX_SELECTOR: &str = "kubevirt.io/tdx";

/// KubeVirt's own device-plugin resources, present on every launcher pod; harmless.
const KUBEVIRT_DEVICES: &[&str] = &[
    "devices.kubevirt.io/kvm",
    "devices.kubevirt.io/tun",
    "devices.kubevirt.io/vhost-net",
    "devices.kubevirt.io/vhost-vsock",
];
/// KubeVirt's confidential-computing device resources (`devices.kubevirt.io/sev`, ...).
const CONFIDENTIAL_DEVICE_PREFIXES: &[&str] =
    &["devices.kubevirt.io/sev", "devices.kubevirt.io/tdx"];

/// Capabilities a container gets to lock memory or raise its memlock limit. *Inferred*: KubeVirt
/// raises QEMU's memlock limit from virt-handler (through the lookup above) for VFIO, SEV and
/// realtime; a pod that asks for these capabilities is one that locks memory.
const MEMORY_LOCK_CAPABILITIES: &[&str] = &[
    "IPC_LOCK",
    "SYS_RESOURCE",
    "CAP_IPC_LOCK",
    "CAP_SYS_RESOURCE",
];

/// Every pod-spec signal of a VM type that must not get a shared PID namespace, in the order checked
/// (the first is the one written on a skipped pod), without duplicates. Used as they are when the VMI could not be read; when it was, the VMI's own
/// reasons replace them (`vmi::verdict`).
pub fn pid_namespace_hazards_from_pod(spec: &PodSpec) -> Vec<SkipReason> {
    use SkipReason::{ResourceClaims, Unsafe};
    use UnsafeReason::*;
    let mut found = Vec::new();
    let mut push = |reason: SkipReason| {
        if !found.contains(&reason) {
            found.push(reason);
        }
    };
    let selector = spec.node_selector.iter().flatten().map(|(k, _)| k.as_str());
    for key in selector {
        if key.starts_with(SEV_SELECTOR_PREFIX) || key == TDX_SELECTOR {
            push(Unsafe(ConfidentialVm));
        }
        if key == CPU_MANAGER_SELECTOR {
            push(Unsafe(DedicatedCpus));
        }
        if key == REALTIME_SELECTOR {
            push(Unsafe(Realtime));
        }
    }
    let resources: Vec<&str> = all_containers(spec).flat_map(resource_names).collect();
    if resources.iter().any(|r| {
        CONFIDENTIAL_DEVICE_PREFIXES
            .iter()
            .any(|p| r.starts_with(p))
    }) {
        push(Unsafe(ConfidentialVm));
    }
    let claims =
        all_containers(spec).any(|c| c.resources.as_ref().is_some_and(|r| r.claims.is_some()));
    if claims || spec.resource_claims.as_ref().is_some_and(|c| !c.is_empty()) {
        push(ResourceClaims);
    }
    if resources.iter().any(|r| is_foreign_device(r)) {
        push(Unsafe(VfioDevice));
    }
    if all_containers(spec)
        .flat_map(added_capabilities)
        .any(|c| MEMORY_LOCK_CAPABILITIES.contains(&c))
    {
        push(Unsafe(MemoryLock));
    }
    found
}

/// An extended resource (a device plugin's) that is not one of KubeVirt's own devices. Native
/// resources have no domain (`cpu`, `hugepages-2Mi`) or the `kubernetes.io` domain.
fn is_foreign_device(name: &str) -> bool {
    let Some((domain, _)) = name.split_once('/') else {
        return false;
    };
    let native = domain == "kubernetes.io" || domain.ends_with(".kubernetes.io");
    !native && !KUBEVIRT_DEVICES.contains(&name)
}

fn resource_names(c: &Container) -> impl Iterator<Item = &str> {
    let r = c.resources.as_ref();
    let requests = r
        .and_then(|r| r.requests.as_ref())
        .into_iter()
        .flat_map(|m| m.keys());
    let limits = r
        .and_then(|r| r.limits.as_ref())
        .into_iter()
        .flat_map(|m| m.keys());
    requests.chain(limits).map(String::as_str)
}

fn added_capabilities(c: &Container) -> impl Iterator<Item = &str> {
    let caps = c
        .security_context
        .as_ref()
        .and_then(|s| s.capabilities.as_ref());
    caps.and_then(|c| c.add.as_ref())
        .into_iter()
        .flatten()
        .map(String::as_str)
}
