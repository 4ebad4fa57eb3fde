//! The collector's logging flags: the shared `kube_metrics_runtime::log` flags under the
//! collector's env names, which the manifests set.

kube_metrics_runtime::log_args!(
    kube_metrics_contract::sidecar::ENV_LOG_LEVEL,
    "KMC_LOG_FORMAT"
);
