//! Why the webhook did not inject a pod: one closed set of kebab-case names, written by the webhook
//! as the `reason` metric label, in the [`crate::pod::REASON`] annotation and in logs, and read back
//! by `kubectl kmc check`, which matches on [`SkipReason`] so that the compiler sees every reason
//! explained (docs/webhook.md, "Skip reasons").
//!
//! [`UnsafeReason`] is the part of the set that the VM's type decides, which the VMI and the pod's
//! signals can both show; [`SkipReason`] is the whole set and wraps it, so each name is written once
//! and the annotation does not depend on which source decided.
use std::fmt;

/// A VM type that a shared PID namespace breaks (docs/kubevirt.md §3.2): virt-handler looks for QEMU among
/// virt-launcher's siblings, which fails once QEMU is reparented to `/pause`. Each is read from the
/// VMI (`vmi::facts`) or, when it was not read, from the pod's signals (`decide::hazards`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnsafeReason {
    /// `spec.domain.cpu.dedicatedCpuPlacement: true`; on the pod, the `kubevirt.io/cpumanager`
    /// node selector.
    DedicatedCpus,
    /// `spec.domain.cpu.realtime` set (an empty object counts, as in KubeVirt's `IsRealtimeEnabled`);
    /// on the pod, the `kubevirt.io/realtime` node selector.
    Realtime,
    /// `spec.domain.devices.gpus`, `spec.domain.devices.hostDevices`, or an interface with `sriov`
    /// (KubeVirt's `IsVFIOVMI`); on the pod, a device-plugin resource other than KubeVirt's own.
    VfioDevice,
    /// `spec.domain.launchSecurity` set: SEV, SEV-ES, SNP, TDX, or s390x Secure Execution.
    ConfidentialVm,
    /// `spec.domain.memory.reservedOverhead.memLock: Required`; on the pod, `IPC_LOCK` or
    /// `SYS_RESOURCE` added to a container.
    MemoryLock,
}

/// Why a pod was not injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// Not labelled `kubevirt.io: virt-launcher`, or no controller owner reference of kind
    /// `VirtualMachineInstance` in the `kubevirt.io` group.
    NotLauncher,
    /// A temporary provisioning pod (`kubevirt.io/ephemeral-provisioning: "true"`).
    Provisioning,
    /// `hostNetwork: true`: the collector would listen on the node's network.
    HostNetwork,
    /// `hostPID: true`: a shared PID namespace would be the node's (the API server also rejects it
    /// together with `shareProcessNamespace`).
    HostPid,
    /// `hostIPC: true`: the pod shares the node's IPC namespace.
    HostIpc,
    /// `kube-metrics-collector.io/inject: disabled` (label or annotation), or an explicit
    /// `shareProcessNamespace: false`.
    OptedOut,
    /// Our container is already there: nothing is injected, and the webhook's keys are set again
    /// from its own decision (`patch`), so a second pass of its own patch is an empty patch.
    AlreadyInjected,
    /// The VM's type forbids a shared PID namespace.
    Unsafe(UnsafeReason),
    /// Dynamic resource allocation claims: devices we cannot see from the pod. Only the pod's
    /// signals give it: a VMI's DRA devices are its gpus and hostDevices, hence `vfio-device`.
    ResourceClaims,
    /// Anything we cannot read with confidence: an object that does not parse as a pod, no
    /// `compute` at `containers[0]`, no user id, a quantity we cannot parse, a name we would add is
    /// already taken, pod-level resources.
    Unparseable,
}

// === impl UnsafeReason ===

impl UnsafeReason {
    /// Every reason, in the order of docs/webhook.md.
    pub const ALL: &'static [UnsafeReason] = &[
        UnsafeReason::DedicatedCpus,
        UnsafeReason::Realtime,
        UnsafeReason::VfioDevice,
        UnsafeReason::ConfidentialVm,
        UnsafeReason::MemoryLock,
    ];

    /// The kebab-case name used in labels and annotations.
    pub fn as_str(self) -> &'static str {
        match self {
            UnsafeReason::DedicatedCpus => "dedicated-cpus",
            UnsafeReason::Realtime => "realtime",
            UnsafeReason::VfioDevice => "vfio-device",
            UnsafeReason::ConfidentialVm => "confidential-vm",
            UnsafeReason::MemoryLock => "memory-lock",
        }
    }
}

impl fmt::Display for UnsafeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl SkipReason ===

/// The reasons before and after the VM types, in the order of docs/webhook.md.
const DECIDED_BEFORE_THE_VM_TYPE: [SkipReason; 7] = [
    SkipReason::NotLauncher,
    SkipReason::Provisioning,
    SkipReason::HostNetwork,
    SkipReason::HostPid,
    SkipReason::HostIpc,
    SkipReason::OptedOut,
    SkipReason::AlreadyInjected,
];
const DECIDED_AFTER_THE_VM_TYPE: [SkipReason; 2] =
    [SkipReason::ResourceClaims, SkipReason::Unparseable];
const SKIP_REASON_COUNT: usize =
    DECIDED_BEFORE_THE_VM_TYPE.len() + UnsafeReason::ALL.len() + DECIDED_AFTER_THE_VM_TYPE.len();

/// [`SkipReason::ALL`], built from [`UnsafeReason::ALL`] so a new VM type is counted without a
/// second list.
const fn all_skip_reasons() -> [SkipReason; SKIP_REASON_COUNT] {
    let before = DECIDED_BEFORE_THE_VM_TYPE.len();
    let vm_types = UnsafeReason::ALL.len();
    let mut all = [SkipReason::Unparseable; SKIP_REASON_COUNT];
    let mut i = 0;
    while i < SKIP_REASON_COUNT {
        all[i] = if i < before {
            DECIDED_BEFORE_THE_VM_TYPE[i]
        } else if i < before + vm_types {
            SkipReason::Unsafe(UnsafeReason::ALL[i - before])
        } else {
            DECIDED_AFTER_THE_VM_TYPE[i - before - vm_types]
        };
        i += 1;
    }
    all
}

impl SkipReason {
    /// Every reason, so metrics can start at 0 for each.
    pub const ALL: &'static [SkipReason] = &all_skip_reasons();

    /// The kebab-case name used in labels and annotations.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::NotLauncher => "not-launcher",
            SkipReason::Provisioning => "provisioning",
            SkipReason::HostNetwork => "host-network",
            SkipReason::HostPid => "host-pid",
            SkipReason::HostIpc => "host-ipc",
            SkipReason::OptedOut => "opted-out",
            SkipReason::AlreadyInjected => "already-injected",
            SkipReason::Unsafe(reason) => reason.as_str(),
            SkipReason::ResourceClaims => "resource-claims",
            SkipReason::Unparseable => "unparseable",
        }
    }

    /// The VM type behind the skip, if the VMI can show it too.
    pub fn unsafe_reason(self) -> Option<UnsafeReason> {
        match self {
            SkipReason::Unsafe(reason) => Some(reason),
            _ => None,
        }
    }

    /// Whether the skip is written on the pod as annotations. Not on a pod that is not a launcher
    /// (not ours to mark; the webhook's objectSelector should not even send it: only keys of ours
    /// that it carries are removed), and not on a pod with our container (it is marked as injected).
    pub fn is_annotated(self) -> bool {
        !matches!(self, SkipReason::NotLauncher | SkipReason::AlreadyInjected)
    }
}

impl From<UnsafeReason> for SkipReason {
    fn from(reason: UnsafeReason) -> Self {
        SkipReason::Unsafe(reason)
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is no [`SkipReason`]'s: written by a newer webhook, or by hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownReason;

impl std::str::FromStr for SkipReason {
    type Err = UnknownReason;

    fn from_str(name: &str) -> Result<Self, UnknownReason> {
        SkipReason::ALL
            .iter()
            .find(|r| r.as_str() == name)
            .copied()
            .ok_or(UnknownReason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_skip_reason_is_listed_once_under_its_documented_name() {
        let names: Vec<&str> = SkipReason::ALL.iter().map(|r| r.as_str()).collect();
        // docs/webhook.md's table, in its order.
        assert_eq!(
            names,
            [
                "not-launcher",
                "provisioning",
                "host-network",
                "host-pid",
                "host-ipc",
                "opted-out",
                "already-injected",
                "dedicated-cpus",
                "realtime",
                "vfio-device",
                "confidential-vm",
                "memory-lock",
                "resource-claims",
                "unparseable",
            ]
        );
        for reason in SkipReason::ALL {
            assert_eq!(reason.as_str().parse::<SkipReason>(), Ok(*reason));
        }
        assert_eq!("no-such".parse::<SkipReason>(), Err(UnknownReason));
    }

    #[test]
    fn every_unsafe_reason_is_a_skip_reason_of_the_same_name() {
        let names: Vec<&str> = UnsafeReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names,
            [
                "dedicated-cpus",
                "realtime",
                "vfio-device",
                "confidential-vm",
                "memory-lock"
            ]
        );
        for reason in UnsafeReason::ALL {
            let skip = SkipReason::from(*reason);
            assert_eq!(skip.as_str(), reason.as_str());
            assert_eq!(skip.to_string(), reason.to_string());
            assert_eq!(skip.unsafe_reason(), Some(*reason));
            assert!(SkipReason::ALL.contains(&skip));
        }
        let twins = SkipReason::ALL
            .iter()
            .filter_map(|r| r.unsafe_reason())
            .collect::<Vec<_>>();
        assert_eq!(twins, UnsafeReason::ALL);
    }

    #[test]
    fn only_launchers_not_yet_injected_are_annotated() {
        let quiet: Vec<_> = SkipReason::ALL
            .iter()
            .filter(|r| !r.is_annotated())
            .collect();
        assert_eq!(
            quiet,
            [&SkipReason::NotLauncher, &SkipReason::AlreadyInjected]
        );
    }
}
