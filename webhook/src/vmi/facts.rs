//! A VMI's parts -> [`VmiFacts`]: [`VmiFacts::read`], a pure function over [`VmiParts`], which the
//! cache fills from what the watch decodes and [`VmiFacts::from_json`] from a whole object. No I/O.
//!
//! `spec.domain` and `spec.networks` are read leniently from `serde_json::Value`, never through
//! typed KubeVirt structs: the webhook must keep working when KubeVirt adds fields, and must not
//! fail on the whole object because one field it does not care about has a surprising type
//! (KubeVirt's round-trip test object has u64 boot orders and negative ports). Each question reads
//! only the few fields it needs. When a field we do need has an unexpected type, the answer leans
//! to the safe side: "unsafe" for §3.2, "relay" for §4.
use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::network::{IstioMarks, NetworkFacts, PathDecision};
use super::presence::{is_set, truthy};
use crate::reason::UnsafeReason;

/// A JSON value we cannot treat as a VMI at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FactsError {
    #[error("VMI is not a JSON object")]
    NotAnObject,
    #[error("object is a {0}, not a VirtualMachineInstance")]
    WrongKind(String),
    #[error("object has apiVersion {0}, not kubevirt.io/*")]
    WrongApiVersion(String),
    #[error("VMI has no spec object")]
    MissingSpec,
    /// Past what the webhook reads of one VMI (`cache::MAX_READ_BYTES`, `MAX_READ_TOKENS`).
    #[error("VMI is too large to read: {0}")]
    TooLarge(String),
}

/// What the webhook needs to know about one VMI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmiFacts {
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// Compared with the pod's owner reference, so a VMI recreated under the same name is not mistaken
    /// for the pod's owner.
    pub uid: Option<String>,
    /// Sorted, without duplicates; empty when a shared PID namespace is safe.
    pub unsafe_reasons: Vec<UnsafeReason>,
    /// The pod-network interface and the Istio annotations: what decides the scrape path.
    pub network: NetworkFacts,
}

/// Everything of a VMI that its facts are read from; a string that is absent, or not a string in
/// the object, is `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct VmiParts<'a> {
    pub kind: Option<&'a str>,
    pub api_version: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
    pub uid: Option<&'a str>,
    pub istio: IstioMarks<'a>,
    /// `None` when the VMI has no `spec` object.
    pub spec: Option<SpecParts<'a>>,
}

/// `spec.domain` and `spec.networks`, `null` when absent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpecParts<'a> {
    pub domain: &'a Value,
    pub networks: &'a Value,
}

/// What an absent part reads as.
static NULL: Value = Value::Null;

// === impl VmiParts ===

impl<'a> VmiParts<'a> {
    /// The parts of a VMI object as the API server returns it.
    pub fn of_object(object: &'a Map<String, Value>) -> Self {
        let text = |value: &'a Value, key: &str| value.get(key).and_then(Value::as_str);
        let metadata = object.get("metadata").unwrap_or(&NULL);
        let spec = object.get("spec").filter(|spec| spec.is_object());
        VmiParts {
            kind: object.get("kind").and_then(Value::as_str),
            api_version: object.get("apiVersion").and_then(Value::as_str),
            namespace: text(metadata, "namespace"),
            name: text(metadata, "name"),
            uid: text(metadata, "uid"),
            istio: IstioMarks::of_metadata(metadata),
            spec: spec.map(|spec| SpecParts {
                domain: spec.get("domain").unwrap_or(&NULL),
                networks: spec.get("networks").unwrap_or(&NULL),
            }),
        }
    }
}

// === impl VmiFacts ===

impl VmiFacts {
    /// Reads the facts from a VMI's parts.
    pub fn read(parts: &VmiParts<'_>) -> Result<VmiFacts, FactsError> {
        // `kind`/`apiVersion` are absent on objects some clients hand over; only a wrong value is an
        // error.
        if let Some(kind) = parts.kind
            && kind != "VirtualMachineInstance"
        {
            return Err(FactsError::WrongKind(kind.to_owned()));
        }
        if let Some(api_version) = parts.api_version
            && !api_version.starts_with("kubevirt.io/")
        {
            return Err(FactsError::WrongApiVersion(api_version.to_owned()));
        }
        let spec = parts.spec.ok_or(FactsError::MissingSpec)?;
        Ok(VmiFacts {
            namespace: parts.namespace.map(str::to_owned),
            name: parts.name.map(str::to_owned),
            uid: parts.uid.map(str::to_owned),
            unsafe_reasons: unsafe_reasons(spec.domain).into_iter().collect(),
            network: NetworkFacts::read(spec.domain, spec.networks, parts.istio),
        })
    }

    /// Reads the facts from a VMI as the API server returns it.
    pub fn from_json(vmi: &Value) -> Result<VmiFacts, FactsError> {
        let object = vmi.as_object().ok_or(FactsError::NotAnObject)?;
        VmiFacts::read(&VmiParts::of_object(object))
    }

    /// Whether Prometheus can scrape the sidecar on `port` at `podIP:port` (docs/kubevirt.md §4).
    pub fn scrape_path(&self, port: u16) -> PathDecision {
        self.network.scrape_path(port)
    }

    /// True when the VM uses passt and lists `port`: passt then fails to bind it next to our sidecar
    /// and the VM does not start (docs/kubevirt.md §4). Not ours to fix, but worth a warning and a
    /// different port.
    pub fn passt_port_conflict(&self, port: u16) -> bool {
        self.network.passt_port_conflict(port)
    }
}

/// docs/kubevirt.md §3.2, mirroring KubeVirt's own predicates (`IsCPUDedicated`,
/// `IsRealtimeEnabled`, `IsVFIOVMI`, `UseLaunchSecurity`, `RequiresLockingMemory`), on
/// `spec.domain`.
fn unsafe_reasons(domain: &Value) -> BTreeSet<UnsafeReason> {
    let cpu = domain.get("cpu").unwrap_or(&Value::Null);
    let devices = domain.get("devices").unwrap_or(&Value::Null);
    let mut reasons = BTreeSet::new();

    if truthy(cpu.get("dedicatedCpuPlacement")) {
        reasons.insert(UnsafeReason::DedicatedCpus);
    }
    if is_set(cpu.get("realtime")) {
        reasons.insert(UnsafeReason::Realtime);
    }
    let sriov = match devices.get("interfaces") {
        Some(Value::Array(interfaces)) => interfaces.iter().any(|iface| is_set(iface.get("sriov"))),
        other => is_set(other), // not a list: cannot rule SR-IOV out
    };
    if sriov || is_set(devices.get("gpus")) || is_set(devices.get("hostDevices")) {
        reasons.insert(UnsafeReason::VfioDevice);
    }
    // Any `launchSecurity` counts, even `{}`: on s390x an empty one means Secure Execution, and the
    // architecture may come from the cluster default rather than `spec.architecture`. Skipping an
    // amd64 VM with a meaningless empty block costs its metrics; injecting into a confidential VM
    // breaks it.
    if is_set(domain.get("launchSecurity")) {
        reasons.insert(UnsafeReason::ConfidentialVm);
    }
    if mem_lock_required(domain) {
        reasons.insert(UnsafeReason::MemoryLock);
    }
    reasons
}

/// Memory locking: KubeVirt (v1.6+) decides it from `spec.domain.memory.reservedOverhead.memLock`
/// (`RequiresLockingMemory`: `*MemLock == v1.MemLockRequired`); its own vDPA mutating webhook sets
/// that field, and the round-trip object carries it. Seen in the source: the field path, the Go
/// constants `MemLockRequired` / `MemLockNotRequired` and the predicate. Not seen: the string literal
/// of `MemLockRequired`; "Required" follows KubeVirt's naming for such enums (fairly sure, not
/// certain), so the comparison ignores case and any non-string value counts as required. The
/// `kubevirt.io/memlock-rlimit` annotation appears only in a design proposal, not in the code we read,
/// so it is not consulted. GPU, host-device, SR-IOV, SEV and realtime VMs lock memory too; they are
/// caught by their own reasons above.
fn mem_lock_required(domain: &Value) -> bool {
    let mem_lock = domain
        .get("memory")
        .and_then(|memory| memory.get("reservedOverhead"))
        .and_then(|overhead| overhead.get("memLock"));
    match mem_lock {
        None | Some(Value::Null) => false,
        Some(Value::String(value)) => value.eq_ignore_ascii_case("Required"),
        Some(_) => true,
    }
}

#[cfg(test)]
#[path = "facts_tests.rs"]
mod tests;
