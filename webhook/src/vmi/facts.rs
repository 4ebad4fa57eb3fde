//! Raw VMI JSON -> [`VmiFacts`]. No I/O.
//!
//! Parsed leniently from `serde_json::Value`, never through typed KubeVirt structs: the webhook must
//! keep working when KubeVirt adds fields, and must not fail on the whole object because one field it
//! does not care about has a surprising type (KubeVirt's round-trip test object has u64 boot orders
//! and negative ports). Each question reads only the few fields it needs. When a field we do need has
//! an unexpected type, the answer leans to the safe side: "unsafe" for §3.2, "relay" for §4.
use std::collections::BTreeSet;

use serde_json::Value;

use super::network::{NetworkFacts, PathDecision};
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

impl VmiFacts {
    /// Reads the facts from a VMI as the API server returns it (or as `cache` rebuilds it from the
    /// subset the watch decodes).
    pub fn from_json(vmi: &Value) -> Result<VmiFacts, FactsError> {
        let object = vmi.as_object().ok_or(FactsError::NotAnObject)?;
        // `kind`/`apiVersion` are absent on objects some clients hand over; only a wrong value is an
        // error.
        if let Some(kind) = object.get("kind").and_then(Value::as_str)
            && kind != "VirtualMachineInstance"
        {
            return Err(FactsError::WrongKind(kind.to_owned()));
        }
        if let Some(api_version) = object.get("apiVersion").and_then(Value::as_str)
            && !api_version.starts_with("kubevirt.io/")
        {
            return Err(FactsError::WrongApiVersion(api_version.to_owned()));
        }
        let spec = object
            .get("spec")
            .filter(|spec| spec.is_object())
            .ok_or(FactsError::MissingSpec)?;
        let metadata = object.get("metadata").unwrap_or(&Value::Null);
        let text = |key: &str| metadata.get(key).and_then(Value::as_str).map(str::to_owned);
        Ok(VmiFacts {
            namespace: text("namespace"),
            name: text("name"),
            uid: text("uid"),
            unsafe_reasons: unsafe_reasons(spec).into_iter().collect(),
            network: NetworkFacts::from_vmi(spec, metadata),
        })
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
/// `IsRealtimeEnabled`, `IsVFIOVMI`, `UseLaunchSecurity`, `RequiresLockingMemory`).
fn unsafe_reasons(spec: &Value) -> BTreeSet<UnsafeReason> {
    let domain = spec.get("domain").unwrap_or(&Value::Null);
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
mod tests {
    use super::*;
    use UnsafeReason::*;
    use serde_json::json;

    fn reasons(spec: Value) -> Vec<UnsafeReason> {
        match VmiFacts::from_json(&json!({"kind": "VirtualMachineInstance", "spec": spec})) {
            Ok(facts) => facts.unsafe_reasons,
            Err(error) => panic!("spec should parse: {error}"),
        }
    }

    fn assert_reasons(cases: &[(&str, Value, &[UnsafeReason])]) {
        for (name, spec, expected) in cases {
            assert_eq!(reasons(spec.clone()), *expected, "{name}");
        }
    }

    /// CPU placement and devices handed to the guest.
    #[test]
    fn cpu_and_device_reasons() {
        assert_reasons(&[
            (
                "dedicated",
                json!({"domain": {"cpu": {"dedicatedCpuPlacement": true}}}),
                &[DedicatedCpus],
            ),
            (
                "dedicated false",
                json!({"domain": {"cpu": {"dedicatedCpuPlacement": false}}}),
                &[],
            ),
            (
                "dedicated as text",
                json!({"domain": {"cpu": {"dedicatedCpuPlacement": "true"}}}),
                &[DedicatedCpus],
            ),
            (
                "realtime empty",
                json!({"domain": {"cpu": {"realtime": {}}}}),
                &[Realtime],
            ),
            (
                "realtime null",
                json!({"domain": {"cpu": {"realtime": null}}}),
                &[],
            ),
            (
                "gpu",
                json!({"domain": {"devices": {"gpus": [{"name": "g", "deviceName": "nvidia.com/A10"}]}}}),
                &[VfioDevice],
            ),
            ("no gpus", json!({"domain": {"devices": {"gpus": []}}}), &[]),
            (
                "host device",
                json!({"domain": {"devices": {"hostDevices": [{"name": "h"}]}}}),
                &[VfioDevice],
            ),
            (
                "sriov iface",
                json!({"domain": {"devices": {"interfaces": [{"name": "a", "masquerade": {}}, {"name": "b", "sriov": {}}]}}}),
                &[VfioDevice],
            ),
            (
                "interfaces garbage",
                json!({"domain": {"devices": {"interfaces": "x"}}}),
                &[VfioDevice],
            ),
        ]);
    }

    /// Confidential VMs and memory locking.
    #[test]
    fn launch_security_and_memory_lock_reasons() {
        assert_reasons(&[
            (
                "sev",
                json!({"domain": {"launchSecurity": {"sev": {}}}}),
                &[ConfidentialVm],
            ),
            (
                "snp",
                json!({"domain": {"launchSecurity": {"snp": {}}}}),
                &[ConfidentialVm],
            ),
            (
                "tdx",
                json!({"domain": {"launchSecurity": {"tdx": {}}}}),
                &[ConfidentialVm],
            ),
            (
                "secure execution",
                json!({"architecture": "s390x", "domain": {"launchSecurity": {}}}),
                &[ConfidentialVm],
            ),
            (
                "memlock required",
                json!({"domain": {"memory": {"reservedOverhead": {"memLock": "Required"}}}}),
                &[MemoryLock],
            ),
            (
                "memlock not required",
                json!({"domain": {"memory": {"reservedOverhead": {"memLock": "NotRequired"}}}}),
                &[],
            ),
            (
                "memlock other",
                json!({"domain": {"memory": {"reservedOverhead": {"memLock": "memLockValue"}}}}),
                &[],
            ),
            (
                "added overhead only",
                json!({"domain": {"memory": {"reservedOverhead": {"addedOverhead": "1Gi"}}}}),
                &[],
            ),
        ]);
    }

    /// Specs that are safe, unreadable ones, and every reason at once (sorted).
    #[test]
    fn safe_specs_and_every_reason_at_once() {
        assert_reasons(&[
            (
                "plain VM",
                json!({"domain": {"cpu": {"cores": 2}, "devices": {}}}),
                &[],
            ),
            ("empty spec", json!({}), &[]),
            (
                "everything",
                json!({"domain": {
                    "cpu": {"dedicatedCpuPlacement": true, "realtime": {"mask": "0"}},
                    "devices": {"gpus": [{"name": "g"}]},
                    "launchSecurity": {"tdx": {}},
                    "memory": {"reservedOverhead": {"memLock": "required"}},
                }}),
                &[
                    DedicatedCpus,
                    Realtime,
                    VfioDevice,
                    ConfidentialVm,
                    MemoryLock,
                ],
            ),
            ("domain garbage", json!({"domain": 7}), &[]),
        ]);
    }

    #[test]
    fn rejects_what_is_not_a_vmi() {
        assert_eq!(
            VmiFacts::from_json(&json!([])),
            Err(FactsError::NotAnObject)
        );
        assert_eq!(
            VmiFacts::from_json(&json!({"kind": "Pod", "spec": {}})),
            Err(FactsError::WrongKind("Pod".into()))
        );
        assert_eq!(
            VmiFacts::from_json(&json!({"apiVersion": "v1", "spec": {}})),
            Err(FactsError::WrongApiVersion("v1".into()))
        );
        assert_eq!(
            VmiFacts::from_json(&json!({"kind": "VirtualMachineInstance"})),
            Err(FactsError::MissingSpec)
        );
        assert_eq!(
            VmiFacts::from_json(&json!({"spec": []})),
            Err(FactsError::MissingSpec)
        );
    }

    #[test]
    fn reads_identity() {
        let vmi = json!({"metadata": {"namespace": "ns", "name": "vm", "uid": "u-1"}, "spec": {}});
        let facts = VmiFacts::from_json(&vmi).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            (
                facts.namespace.as_deref(),
                facts.name.as_deref(),
                facts.uid.as_deref()
            ),
            (Some("ns"), Some("vm"), Some("u-1"))
        );
    }
}
