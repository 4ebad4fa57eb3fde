//! Who a target says it is: the one identity of its `kubevirt_pod_infra_pod_info`, and which
//! identities more than one target claims.

use std::collections::HashMap;

use kube_metrics_contract::metrics::POD_INFO;

use super::{Identity, Rejected};
use crate::parse::samples_named;

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

/// Rejects every target whose identity another target also claims: one of
/// them is lying and the relay cannot tell which, so neither is attributed.
pub(super) fn reject_duplicates(identities: &mut [Result<Identity, Rejected>]) {
    let mut counts: HashMap<Identity, usize> = HashMap::new();
    for id in identities.iter().flatten() {
        *counts.entry(id.clone()).or_default() += 1;
    }
    for slot in identities.iter_mut() {
        if slot
            .as_ref()
            .is_ok_and(|id| counts.get(id).copied().unwrap_or(0) > 1)
        {
            *slot = Err(Rejected::DuplicateIdentity);
        }
    }
}
