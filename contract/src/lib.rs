//! The contract between the binaries of this workspace: the names that the webhook writes into a
//! pod and that the collector, the relay and the tests read back. One definition each, so that a
//! rename is one edit. docs/design.md lists the same values in tables.
//!
//! No dependencies and no I/O: plain constants, grouped by what they name (the collector's metric
//! families with their labels: [`metrics`]; how much the relay forwards and the limits Prometheus
//! is given: [`limits`]; why the webhook skips a pod: [`skip`]; the kubelet's downward-API file
//! format: [`downward_api`]), and two models that more than one
//! binary computes with: KubeVirt's overhead estimate ([`estimate`]) and the recording rules that
//! read the fleet ([`rules`]).

pub mod build;
pub mod downward_api;
pub mod estimate;
pub mod limits;
pub mod metrics;
pub mod rules;
pub mod skip;
pub mod user_workload;

/// What KubeVirt names in a launcher pod, read by more than one binary of ours.
pub mod kubevirt {
    /// Annotation on the launcher pod: the VMI's name (`<namespace>_<name>` in older releases);
    /// read by the webhook to find the VMI and by the collector for `domain`.
    pub const DOMAIN_ANNOTATION: &str = "kubevirt.io/domain";
    /// Annotation on the launcher pod: KubeVirt's memory overhead estimate for it, in bytes; read
    /// by the collector from the downward API.
    pub const MEMORY_OVERHEAD_ANNOTATION: &str = "kubevirt.io/memory-overhead-bytes";
    /// The launcher pod's container that runs virt-launcher and QEMU, whose memory request and
    /// limit the webhook projects for the collector.
    pub const COMPUTE_CONTAINER: &str = "compute";
}

/// Labels and annotations on namespaces and launcher pods.
pub mod pod {
    /// Label or annotation. Set by the admin (namespace label [`INJECT_ENABLED`], the webhook
    /// configuration's namespaceSelector) or on a VM template ([`INJECT_DISABLED`]); read by the
    /// API server and the webhook.
    pub const INJECT: &str = "kube-metrics-collector.io/inject";
    /// Value of [`INJECT`] on a namespace that opts in.
    pub const INJECT_ENABLED: &str = "enabled";
    /// Value of [`INJECT`] on a pod that opts out.
    pub const INJECT_DISABLED: &str = "disabled";

    /// Annotation written by the webhook, read by users and tests: [`STATUS_INJECTED`] or
    /// [`STATUS_SKIPPED`].
    pub const STATUS: &str = "kube-metrics-collector.io/status";
    /// Value of [`STATUS`] on a pod that got the collector.
    pub const STATUS_INJECTED: &str = "injected";
    /// Value of [`STATUS`] on a pod that did not.
    pub const STATUS_SKIPPED: &str = "skipped";

    /// Annotation written by the webhook on a skip, read by users and kubectl-kmc: why, one of
    /// [`crate::skip::SkipReason`]'s names.
    pub const REASON: &str = "kube-metrics-collector.io/reason";
    /// Annotation written by the webhook once the VM was judged, read by users and tests:
    /// [`REASON_SOURCE_VMI`] or [`REASON_SOURCE_POD_FALLBACK`].
    pub const REASON_SOURCE: &str = "kube-metrics-collector.io/reason-source";
    /// Value of [`REASON_SOURCE`]: the VirtualMachineInstance was read.
    pub const REASON_SOURCE_VMI: &str = "vmi";
    /// Value of [`REASON_SOURCE`]: it was not; the pod's own signals decided.
    pub const REASON_SOURCE_POD_FALLBACK: &str = "pod-fallback";

    /// Annotation written by the webhook on a pod it skipped for its VM type, read by users and
    /// kubectl-kmc: [`COVERAGE_NODE_COLLECTOR`] when the node collector component is installed.
    pub const COVERAGE: &str = "kube-metrics-collector.io/coverage";
    /// Value of [`COVERAGE`]: the node collector reports the pod instead of a sidecar.
    pub const COVERAGE_NODE_COLLECTOR: &str = "node-collector";

    /// Label written by the webhook on injection, read by the PodMonitors' selectors:
    /// [`SCRAPE_DIRECT`] or [`SCRAPE_RELAY`].
    pub const SCRAPE: &str = "kube-metrics-collector.io/scrape";
    /// Value of [`SCRAPE`]: Prometheus scrapes `podIP:`[`crate::sidecar::PORT_NAME`].
    pub const SCRAPE_DIRECT: &str = "direct";
    /// Value of [`SCRAPE`]: the node relay reads the collector's socket.
    pub const SCRAPE_RELAY: &str = "relay";

    /// Annotation set by users on a VM template, read by the webhook: the sidecar's memory limit.
    pub const MEMORY_LIMIT: &str = "kube-metrics-collector.io/memory-limit";
    /// Annotation set by users on a VM template, read by the webhook: the sidecar's CPU limit.
    pub const CPU_LIMIT: &str = "kube-metrics-collector.io/cpu-limit";
    /// Annotation set by users on a VM template, read by the webhook: the sidecar's log filter.
    pub const LOG_LEVEL: &str = "kube-metrics-collector.io/log-level";
    /// Annotation set by users on a VM template, read by the webhook: the collector's metrics
    /// profile (`default` or `full`, [`crate::metrics::Profile`]), over the webhook's
    /// `--metrics-profile`. An unknown value is ignored, with a warning and a count.
    pub const METRICS_PROFILE: &str = "kube-metrics-collector.io/metrics-profile";
}

/// The injected collector container: its name, volumes, mounts, env, port and socket.
pub mod sidecar {
    /// Container name written by the webhook, read back by the webhook ("already injected").
    pub const CONTAINER_NAME: &str = "kube-metrics-collector";

    /// Downward-API volume written by the webhook, mounted for the collector at [`PODINFO_DIR`].
    pub const PODINFO_VOLUME: &str = "kube-metrics-collector-podinfo";
    /// Mount path of [`PODINFO_VOLUME`], written by the webhook, read by the collector (`--podinfo`).
    pub const PODINFO_DIR: &str = "/etc/podinfo";
    /// Downward-API file projected by the webhook, read by the collector: the pod's labels.
    pub const PODINFO_LABELS: &str = "labels";
    /// Downward-API file projected by the webhook, read by the collector: the pod's annotations.
    pub const PODINFO_ANNOTATIONS: &str = "annotations";
    /// Downward-API file projected by the webhook, read by the collector: `compute`'s memory request.
    pub const PODINFO_MEMORY_REQUEST: &str = "compute_memory_request";
    /// Downward-API file projected by the webhook, read by the collector: `compute`'s memory limit.
    pub const PODINFO_MEMORY_LIMIT: &str = "compute_memory_limit";
    /// Downward-API file projected by the webhook (`metadata.uid`), read by the relay from the
    /// kubelet's copy of the volume: the pod's uid, which must equal its kubelet directory's.
    pub const PODINFO_UID: &str = "uid";
    /// Downward-API file projected by the webhook (`metadata.namespace`), read by the relay: the
    /// namespace it attributes the pod's series to.
    pub const PODINFO_NAMESPACE: &str = "namespace";
    /// Downward-API file projected by the webhook (`metadata.name`), read by the relay: the pod
    /// name it attributes the pod's series to.
    pub const PODINFO_NAME: &str = "name";
    /// Every file of [`PODINFO_VOLUME`], in the order the webhook projects them.
    pub const PODINFO_FILES: [&str; 7] = [
        PODINFO_LABELS,
        PODINFO_ANNOTATIONS,
        PODINFO_MEMORY_REQUEST,
        PODINFO_MEMORY_LIMIT,
        PODINFO_UID,
        PODINFO_NAMESPACE,
        PODINFO_NAME,
    ];

    /// `emptyDir` volume written by the webhook, served on by the collector, found on the node by
    /// the relay (its `--socket-volume`).
    pub const SOCKET_VOLUME: &str = "kube-metrics-collector-socket";
    /// Mount path of [`SOCKET_VOLUME`] in the collector container, written by the webhook.
    pub const SOCKET_DIR: &str = "/var/run/kube-metrics-collector";
    /// The socket's file name in [`SOCKET_VOLUME`]: the collector binds it, the relay connects to
    /// it (its `--socket-name`).
    pub const SOCKET_NAME: &str = "metrics.sock";
    /// [`SOCKET_DIR`]`/`[`SOCKET_NAME`]: the collector's `--socket` and its probe's, written by the
    /// webhook. (A literal: `concat!` takes no constants; a test holds it to its parts.)
    pub const SOCKET_PATH: &str = "/var/run/kube-metrics-collector/metrics.sock";

    /// The collector's default TCP port: the webhook's default `containerPort`, the collector's
    /// default listener. Inside the ephemeral range, which passt never binds.
    pub const PORT: u16 = 48080;
    /// Name of the collector's `containerPort`, written by the webhook, selected by the direct
    /// PodMonitor.
    pub const PORT_NAME: &str = "kmc-metrics";

    /// Env written by the webhook (downward API `metadata.name`), read by the collector.
    pub const ENV_POD_NAME: &str = "POD_NAME";
    /// Env written by the webhook (downward API `metadata.namespace`), read by the collector.
    pub const ENV_POD_NAMESPACE: &str = "POD_NAMESPACE";
    /// Env written by the webhook (downward API `spec.nodeName`), read by the collector.
    pub const ENV_NODE_NAME: &str = "NODE_NAME";
    /// Env written by the webhook from [`crate::pod::LOG_LEVEL`], read by the collector (the env
    /// twin of its `--log-level`).
    pub const ENV_LOG_LEVEL: &str = "KMC_LOG_LEVEL";
    /// Env written by the webhook from its `--kubevirt-release`, read by the collector (the env
    /// twin of its `--kubevirt-release`).
    pub const ENV_KUBEVIRT_RELEASE: &str = "KMC_KUBEVIRT_RELEASE";
    /// Env written by the webhook from its `--metrics-profile` or a pod's
    /// [`crate::pod::METRICS_PROFILE`] annotation, read by the collector (the env twin of its
    /// `--metrics-profile`).
    pub const ENV_METRICS_PROFILE: &str = "KMC_METRICS_PROFILE";
}

/// The node relay: where the kubelet shows each pod's socket volume, and the relay's own port.
pub mod relay {
    /// The kubelet's root directory: the relay's default `--kubelet-root`, the DaemonSet's hostPath
    /// parent.
    pub const KUBELET_ROOT: &str = "/var/lib/kubelet";
    /// Below the kubelet root: one directory per pod uid, made by the kubelet, walked by the relay.
    pub const PODS_DIR: &str = "pods";
    /// [`KUBELET_ROOT`]`/`[`PODS_DIR`]: the node collector's default `--kubelet-pods-dir`, the
    /// node collector DaemonSet's hostPath. (A literal: a test holds it to its parts.)
    pub const KUBELET_PODS_DIR: &str = "/var/lib/kubelet/pods";
    /// Below a pod's directory: its volumes, by plugin.
    pub const VOLUMES_DIR: &str = "volumes";
    /// Below `volumes`: the kubelet's directory of `emptyDir` volumes, one per volume name.
    pub const EMPTY_DIR: &str = "kubernetes.io~empty-dir";
    /// Below `volumes`: the kubelet's directory of downward-API volumes, one per volume name.
    pub const DOWNWARD_API_DIR: &str = "kubernetes.io~downward-api";
    /// Inside a downward-API volume: the kubelet's symlink to the current timestamped directory,
    /// through which every projected file is a symlink (`labels -> ..data/labels`).
    pub const DOWNWARD_API_DATA: &str = "..data";

    /// The kubelet's pod log directory, with one entry `<namespace>_<name>_<uid>` per pod: the
    /// relay's default `--pod-logs-dir`, the DaemonSet's second hostPath.
    pub const POD_LOGS_DIR: &str = "/var/log/pods";

    /// The relay's default TCP port: its default `--listen`, the DaemonSet's containerPort.
    pub const PORT: u16 = 48081;
    /// Name of the relay's containerPort in the DaemonSet, selected by the relay PodMonitor.
    pub const PORT_NAME: &str = "relay-metrics";

    /// Where the kubelet shows `volume/socket` of pod `pod_uid`, relative to the kubelet root:
    /// `pods/<uid>/volumes/kubernetes.io~empty-dir/<volume>/<socket>`.
    pub fn socket_path(pod_uid: &str, volume: &str, socket: &str) -> String {
        [PODS_DIR, pod_uid, VOLUMES_DIR, EMPTY_DIR, volume, socket].join("/")
    }
}

/// The opt-in node collector (`kube-metrics-collector node`), which runs beside the relay.
pub mod node_collector {
    /// Its default TCP port: its default `--listen`, the DaemonSet's containerPort; next to the
    /// relay's [`crate::relay::PORT`].
    pub const PORT: u16 = 48082;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubelet_pods_dir_is_its_parts() {
        assert_eq!(
            relay::KUBELET_PODS_DIR,
            format!("{}/{}", relay::KUBELET_ROOT, relay::PODS_DIR)
        );
    }

    #[test]
    fn socket_path_is_dir_and_name() {
        assert_eq!(
            sidecar::SOCKET_PATH,
            format!("{}/{}", sidecar::SOCKET_DIR, sidecar::SOCKET_NAME)
        );
    }

    #[test]
    fn socket_path_on_the_node_follows_the_kubelet_layout() {
        assert_eq!(
            relay::socket_path("uid-0", sidecar::SOCKET_VOLUME, sidecar::SOCKET_NAME),
            "pods/uid-0/volumes/kubernetes.io~empty-dir/kube-metrics-collector-socket/metrics.sock"
        );
    }

    #[test]
    fn podinfo_files_are_distinct_file_names() {
        for (i, file) in sidecar::PODINFO_FILES.iter().enumerate() {
            assert!(!file.contains('/') && !file.starts_with('.'), "{file}");
            assert!(!sidecar::PODINFO_FILES[..i].contains(file), "{file} twice");
        }
    }

    #[test]
    fn keys_share_one_prefix_and_ports_differ() {
        let keys = [
            pod::INJECT,
            pod::STATUS,
            pod::REASON,
            pod::REASON_SOURCE,
            pod::SCRAPE,
            pod::MEMORY_LIMIT,
            pod::CPU_LIMIT,
            pod::LOG_LEVEL,
            pod::METRICS_PROFILE,
        ];
        for key in keys {
            assert!(key.starts_with("kube-metrics-collector.io/"), "{key}");
        }
        assert_ne!(sidecar::PORT, relay::PORT);
    }
}
