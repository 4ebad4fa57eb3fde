//! What each skip reason of the webhook (docs/webhook.md) means and what would have to change; no I/O.

/// What the reason says about the VM, in one sentence.
pub fn meaning(reason: &str) -> &'static str {
    match reason {
        "provisioning" => {
            "the pod only provisions the VM's disks (kubevirt.io/ephemeral-provisioning)"
        }
        "host-network" => {
            "the pod uses the node's network (hostNetwork): the collector would listen on the node's address"
        }
        "host-pid" => {
            "the pod shares the node's PID namespace (hostPID): it would see every process of the node"
        }
        "host-ipc" => "the pod shares the node's IPC namespace (hostIPC)",
        "opted-out" => {
            "the VM opted out: kube-metrics-collector.io/inject=disabled, or shareProcessNamespace: false"
        }
        "dedicated-cpus" => {
            "the VM has dedicated CPUs; a shared PID namespace would hide QEMU from virt-handler, which pins its threads"
        }
        "realtime" => "the VM is realtime; virt-handler must find QEMU to set its vCPU scheduler",
        "vfio-device" => {
            "the VM has a GPU, host device or SR-IOV interface; virt-handler must find QEMU to raise its memlock limit"
        }
        "confidential-vm" => {
            "the VM uses launchSecurity (SEV, SNP, TDX, Secure Execution); virt-handler must find QEMU"
        }
        "memory-lock" => {
            "the VM locks its memory (reservedOverhead.memLock: Required); virt-handler must find QEMU"
        }
        "resource-claims" => {
            "the pod claims DRA resources, typically devices that need virt-handler to find QEMU"
        }
        "unparseable" => {
            "the pod did not have the shape the webhook can patch safely (compute not first, a volume name taken, pod-level resources, or a quantity it could not read)"
        }
        "" => "the pod names no reason",
        _ => "a reason this kubectl-kmc does not know; see docs/webhook.md of your release",
    }
}

/// What would have to change for the VM to be injected, and how to apply it.
pub fn fix(reason: &str, source: Option<&str>, restart: &str) -> Vec<String> {
    let change = match reason {
        "provisioning" => "nothing: check the VM's running launcher pod once it starts",
        "host-network" | "host-pid" | "host-ipc" => {
            "by design: a pod sharing a namespace of the node is not a KubeVirt launcher pod the collector can be given"
        }
        "opted-out" => {
            "remove kube-metrics-collector.io/inject: disabled from the VM's spec.template.metadata (labels and annotations) and any shareProcessNamespace: false"
        }
        "dedicated-cpus" => {
            "by design: only a VM without spec.domain.cpu.dedicatedCpuPlacement can be injected"
        }
        "realtime" => "by design: only a VM without spec.domain.cpu.realtime can be injected",
        "vfio-device" => {
            "by design: only a VM without spec.domain.devices.gpus, hostDevices and sriov interfaces can be injected"
        }
        "confidential-vm" => {
            "by design: only a VM without spec.domain.launchSecurity can be injected"
        }
        "memory-lock" => {
            "by design: only a VM without reservedOverhead.memLock: Required can be injected"
        }
        "resource-claims" => "by design: only a pod without resourceClaims can be injected",
        "unparseable" => {
            "find the pod's uid in the webhook's log line \"Reviewed pod\" (kubectl -n kube-metrics-collector logs deployment/kube-metrics-webhook) for what it could not read"
        }
        _ => "see docs/webhook.md",
    };
    let mut lines = vec![format!("to change: {change}")];
    let by_type = matches!(
        reason,
        "dedicated-cpus"
            | "realtime"
            | "vfio-device"
            | "confidential-vm"
            | "memory-lock"
            | "resource-claims"
    );
    if by_type && source == Some("pod-fallback") {
        lines.push(
            "the webhook judged from the pod because it could not read the VMI: if the VMI has none of this, give the webhook get/list/watch on virtualmachineinstances.kubevirt.io (manifests/base/webhook-rbac.yaml) and keep --vmi-lookup on".into(),
        );
    }
    if matches!(reason, "opted-out") || (by_type && source == Some("pod-fallback")) {
        lines.push(format!("then: {restart}"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reason the webhook writes on a pod has its own meaning and change (`not-launcher`
    /// and `already-injected` are never written as a pod's reason).
    #[test]
    fn every_written_reason_has_advice() {
        let reasons = kube_metrics_contract::pod::SKIP_REASONS
            .into_iter()
            .filter(|r| !matches!(*r, "not-launcher" | "already-injected"));
        let unknown = meaning("no-such-reason");
        let unknown_fix = fix("no-such-reason", None, "r");
        for reason in reasons {
            assert_ne!(meaning(reason), unknown, "{reason}");
            assert_ne!(fix(reason, Some("vmi"), "r"), unknown_fix, "{reason}");
        }
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
