//! The webhook's logging flags: the shared `kube_metrics_runtime::log` flags under the webhook's
//! env names, which the manifests set.

pub use kube_metrics_runtime::log::{LogError, LogFormat};

kube_metrics_runtime::log_args!("KMW_LOG_LEVEL", "KMW_LOG_FORMAT");
