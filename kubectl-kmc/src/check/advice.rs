//! What each skip reason of the webhook (docs/webhook.md) means and what would have to change; no I/O.
//! The reasons are the contract's [`SkipReason`], matched exhaustively: a reason added there does not
//! compile here until it is explained.

use kube_metrics_contract::skip::{SkipReason, UnsafeReason};

/// What a reason this plugin does not know (a newer webhook's, or written by hand) means.
const UNKNOWN: &str =
    "a reason this kubectl-kmc does not know; see docs/webhook.md of your release";

/// What the reason annotation says about the VM, in one sentence.
pub fn meaning(name: &str) -> &'static str {
    if name.is_empty() {
        return "the pod names no reason";
    }
    name.parse().map_or(UNKNOWN, meaning_of)
}

fn meaning_of(reason: SkipReason) -> &'static str {
    match reason {
        SkipReason::NotLauncher => "the pod is not a KubeVirt launcher pod",
        SkipReason::AlreadyInjected => "the pod already had the collector",
        SkipReason::Provisioning => {
            "the pod only provisions the VM's disks (kubevirt.io/ephemeral-provisioning)"
        }
        SkipReason::HostNetwork => {
            "the pod uses the node's network (hostNetwork): the collector would listen on the node's address"
        }
        SkipReason::HostPid => {
            "the pod shares the node's PID namespace (hostPID): it would see every process of the node"
        }
        SkipReason::HostIpc => "the pod shares the node's IPC namespace (hostIPC)",
        SkipReason::OptedOut => {
            "the VM opted out: kube-metrics-collector.io/inject=disabled, or shareProcessNamespace: false"
        }
        SkipReason::Unsafe(UnsafeReason::DedicatedCpus) => {
            "the VM has dedicated CPUs; a shared PID namespace would hide QEMU from virt-handler, which pins its threads"
        }
        SkipReason::Unsafe(UnsafeReason::Realtime) => {
            "the VM is realtime; virt-handler must find QEMU to set its vCPU scheduler"
        }
        SkipReason::Unsafe(UnsafeReason::VfioDevice) => {
            "the VM has a GPU, host device or SR-IOV interface; virt-handler must find QEMU to raise its memlock limit"
        }
        SkipReason::Unsafe(UnsafeReason::ConfidentialVm) => {
            "the VM uses launchSecurity (SEV, SNP, TDX, Secure Execution); virt-handler must find QEMU"
        }
        SkipReason::Unsafe(UnsafeReason::MemoryLock) => {
            "the VM locks its memory (reservedOverhead.memLock: Required); virt-handler must find QEMU"
        }
        SkipReason::ResourceClaims => {
            "the pod claims DRA resources, typically devices that need virt-handler to find QEMU"
        }
        SkipReason::Unparseable => {
            "the pod did not have the shape the webhook can patch safely (compute not first, a volume name taken, pod-level resources, or a quantity it could not read)"
        }
    }
}

/// What would have to change for the VM to be injected, and how to apply it.
pub fn fix(name: &str, source: Option<&str>, restart: &str) -> Vec<String> {
    let Ok(reason) = name.parse::<SkipReason>() else {
        return vec!["to change: see docs/webhook.md".into()];
    };
    let change = match reason {
        SkipReason::NotLauncher | SkipReason::AlreadyInjected => {
            "nothing: the webhook leaves such pods as they are"
        }
        SkipReason::Provisioning => "nothing: check the VM's running launcher pod once it starts",
        SkipReason::HostNetwork | SkipReason::HostPid | SkipReason::HostIpc => {
            "by design: a pod sharing a namespace of the node is not a KubeVirt launcher pod the collector can be given"
        }
        SkipReason::OptedOut => {
            "remove kube-metrics-collector.io/inject: disabled from the VM's spec.template.metadata (labels and annotations) and any shareProcessNamespace: false"
        }
        SkipReason::Unsafe(UnsafeReason::DedicatedCpus) => {
            "by design: only a VM without spec.domain.cpu.dedicatedCpuPlacement can be injected"
        }
        SkipReason::Unsafe(UnsafeReason::Realtime) => {
            "by design: only a VM without spec.domain.cpu.realtime can be injected"
        }
        SkipReason::Unsafe(UnsafeReason::VfioDevice) => {
            "by design: only a VM without spec.domain.devices.gpus, hostDevices and sriov interfaces can be injected"
        }
        SkipReason::Unsafe(UnsafeReason::ConfidentialVm) => {
            "by design: only a VM without spec.domain.launchSecurity can be injected"
        }
        SkipReason::Unsafe(UnsafeReason::MemoryLock) => {
            "by design: only a VM without reservedOverhead.memLock: Required can be injected"
        }
        SkipReason::ResourceClaims => {
            "by design: only a pod without resourceClaims can be injected"
        }
        SkipReason::Unparseable => {
            "find the pod's uid in the webhook's log line \"Reviewed pod\" (kubectl -n kube-metrics-collector logs deployment/kube-metrics-webhook) for what it could not read"
        }
    };
    let mut lines = vec![format!("to change: {change}")];
    let by_type = reason.unsafe_reason().is_some() || reason == SkipReason::ResourceClaims;
    let from_pod = source == Some(kube_metrics_contract::pod::REASON_SOURCE_POD_FALLBACK);
    if by_type && from_pod {
        lines.push(
            "the webhook judged from the pod because it could not read the VMI: if the VMI has none of this, give the webhook get/list/watch on virtualmachineinstances.kubevirt.io (manifests/base/webhook-rbac.yaml) and keep --vmi-lookup on".into(),
        );
    }
    if reason == SkipReason::OptedOut || (by_type && from_pod) {
        lines.push(format!("then: {restart}"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reason is known by its written name (the meanings themselves the compiler holds
    /// complete); an unknown or empty one is said to be so.
    #[test]
    fn every_reason_is_read_from_its_name() {
        let unknown_fix = fix("no-such-reason", None, "r");
        for reason in SkipReason::ALL {
            assert_eq!(meaning(reason.as_str()), meaning_of(*reason), "{reason}");
            assert_ne!(meaning(reason.as_str()), UNKNOWN, "{reason}");
            assert_ne!(
                fix(reason.as_str(), Some("vmi"), "r"),
                unknown_fix,
                "{reason}"
            );
        }
        assert_eq!(meaning("no-such-reason"), UNKNOWN);
        assert_eq!(meaning(""), "the pod names no reason");
    }

    #[test]
    fn fixes() {
        let cases: [(&str, Option<&str>, &[&str]); 4] = [
            (
                "vfio-device",
                Some("vmi"),
                &[
                    "to change: by design: only a VM without spec.domain.devices.gpus, hostDevices and sriov interfaces can be injected",
                ],
            ),
            (
                "opted-out",
                None,
                &[
                    "to change: remove kube-metrics-collector.io/inject: disabled from the VM's spec.template.metadata (labels and annotations) and any shareProcessNamespace: false",
                    "then: R",
                ],
            ),
            (
                "provisioning",
                None,
                &["to change: nothing: check the VM's running launcher pod once it starts"],
            ),
            ("no-such", None, &["to change: see docs/webhook.md"]),
        ];
        for (reason, source, want) in cases {
            assert_eq!(fix(reason, source, "R"), want, "{reason}");
        }
        let fallback = fix("dedicated-cpus", Some("pod-fallback"), "R");
        assert_eq!(fallback.len(), 3);
        assert!(fallback[1].contains("virtualmachineinstances.kubevirt.io"));
        assert_eq!(fallback[2], "then: R");
    }
}
