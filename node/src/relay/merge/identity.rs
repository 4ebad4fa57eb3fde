//! Who a target says it is: the one identity of its `kubevirt_pod_infra_pod_info`.

use kube_metrics_contract::metrics::POD_INFO;

use super::{Identity, Rejected};
use crate::relay::parse::samples_named;

/// The one (namespace, pod) pair this target's pod_info states.
pub fn identity(text: &str) -> Result<Identity, Rejected> {
    let mut found: Option<Identity> = None;
    for sample in samples_named(text, POD_INFO) {
        let get = |key: &str| {
            sample
                .labels
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v)
        };
        let (Some(namespace), Some(pod)) = (get("namespace"), get("pod")) else {
            continue;
        };
        if namespace.is_empty() || pod.is_empty() {
            continue;
        }
        if let Some(previous) = &found {
            if previous.namespace != **namespace || previous.pod != **pod {
                return Err(Rejected::AmbiguousIdentity);
            }
            continue;
        }
        found = Some(Identity {
            namespace: namespace.to_string(),
            pod: pod.to_string(),
        });
    }
    found.ok_or(Rejected::NoIdentity)
}
