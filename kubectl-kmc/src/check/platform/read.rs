//! Reads [`Facts`]: each read that fails leaves its reason in place of the fact, so that the
//! checklist says what it could not look at instead of stopping.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSet as KubeDaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};

use super::{DaemonSet, Facts, NODE_COLLECTOR, OpenShift, RELAY, Read, SCC_ANNOTATION};
use crate::cluster::{Call, Cluster};
use crate::recommend::target;

/// Where OpenShift's cluster monitoring keeps its configuration, and the key that turns on
/// user-workload monitoring in it.
const MONITORING_CONFIG: (&str, &str) = ("openshift-monitoring", "cluster-monitoring-config");
const ENABLE_USER_WORKLOAD: &str = "enableUserWorkload";

pub async fn gather(cluster: &Cluster, install_namespace: &str) -> Facts {
    let openshift = match is_openshift(cluster).await {
        Ok(true) => Ok(Some(OpenShift {
            user_workload: user_workload(cluster).await,
            relay_scc: relay_scc(cluster).await,
            install_labels: labels(cluster, install_namespace).await,
        })),
        Ok(false) => Ok(None),
        Err(why) => Err(why),
    };
    Facts {
        install_namespace: install_namespace.to_owned(),
        relay: daemon_set(cluster, install_namespace, RELAY).await,
        node_collector: daemon_set(cluster, install_namespace, NODE_COLLECTOR).await,
        kubevirt: target::gather(cluster).await,
        openshift,
    }
}

/// OpenShift serves `security.openshift.io` (SecurityContextConstraints); plain Kubernetes
/// does not.
async fn is_openshift(cluster: &Cluster) -> Read<bool> {
    let groups = cluster
        .client
        .list_api_groups()
        .await
        .map_err(|e| format!("API discovery (/apis) failed: {e}"))?;
    Ok(groups
        .groups
        .iter()
        .any(|g| g.name == "security.openshift.io"))
}

async fn daemon_set(cluster: &Cluster, ns: &str, name: &str) -> Read<Option<DaemonSet>> {
    let call = Call {
        verb: "get",
        resource: "daemonsets.apps",
        namespace: Some(ns),
        name,
    };
    let api: Api<KubeDaemonSet> = Api::namespaced(cluster.client.clone(), ns);
    let Some(found) = api
        .get_opt(name)
        .await
        .map_err(|e| call.error(&cluster.url, e).to_string())?
    else {
        return Ok(None);
    };
    let status = found.status.unwrap_or_default();
    Ok(Some(DaemonSet {
        desired: status.desired_number_scheduled,
        ready: status.number_ready,
        sccs: sccs(cluster, ns, name).await,
    }))
}

/// The SCC each of the DaemonSet's pods was admitted under; empty when the pods cannot be listed
/// (the rollout line still stands).
async fn sccs(cluster: &Cluster, ns: &str, name: &str) -> BTreeMap<String, usize> {
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), ns);
    let params = ListParams::default().labels(&format!("app.kubernetes.io/name={name}"));
    let mut counts = BTreeMap::new();
    for pod in api.list(&params).await.map(|l| l.items).unwrap_or_default() {
        let annotations = pod.metadata.annotations.unwrap_or_default();
        if let Some(scc) = annotations.get(SCC_ANNOTATION) {
            *counts.entry(scc.clone()).or_default() += 1;
        }
    }
    counts
}

/// `enableUserWorkload` of cluster-monitoring-config; no ConfigMap means it is off.
async fn user_workload(cluster: &Cluster) -> Read<bool> {
    let (ns, name) = MONITORING_CONFIG;
    let call = Call {
        verb: "get",
        resource: "configmaps",
        namespace: Some(ns),
        name,
    };
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), ns);
    let config = api
        .get_opt(name)
        .await
        .map_err(|e| call.error(&cluster.url, e).to_string())?;
    let text = config
        .and_then(|c| c.data)
        .and_then(|mut d| d.remove("config.yaml"));
    enable_user_workload(text.as_deref())
}

/// The flag in the ConfigMap's `config.yaml`: unset or absent is off.
pub fn enable_user_workload(config_yaml: Option<&str>) -> Read<bool> {
    let Some(text) = config_yaml else {
        return Ok(false);
    };
    let config: serde_norway::Value = serde_norway::from_str(text).map_err(|e| {
        format!(
            "config.yaml of {}/{} is not YAML: {e}",
            MONITORING_CONFIG.0, MONITORING_CONFIG.1
        )
    })?;
    Ok(config
        .get(ENABLE_USER_WORKLOAD)
        .and_then(serde_norway::Value::as_bool)
        .unwrap_or(false))
}

async fn relay_scc(cluster: &Cluster) -> Read<bool> {
    let gvk = GroupVersionKind::gvk("security.openshift.io", "v1", "SecurityContextConstraints");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "securitycontextconstraints");
    let api: Api<DynamicObject> = Api::all_with(cluster.client.clone(), &resource);
    let call = Call {
        verb: "get",
        resource: "securitycontextconstraints.security.openshift.io",
        namespace: None,
        name: RELAY,
    };
    api.get_opt(RELAY)
        .await
        .map(|scc| scc.is_some())
        .map_err(|e| call.error(&cluster.url, e).to_string())
}

async fn labels(cluster: &Cluster, ns: &str) -> Read<BTreeMap<String, String>> {
    let call = Call {
        verb: "get",
        resource: "namespaces",
        namespace: None,
        name: ns,
    };
    let api: Api<Namespace> = Api::all(cluster.client.clone());
    let namespace = api
        .get_opt(ns)
        .await
        .map_err(|e| call.error(&cluster.url, e).to_string())?
        .ok_or_else(|| format!("namespace {ns} does not exist"))?;
    Ok(namespace.metadata.labels.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_workload_flag() {
        let cases = [
            (None, Ok(false)),
            (Some("enableUserWorkload: true\n"), Ok(true)),
            (Some("enableUserWorkload: false"), Ok(false)),
            (Some("prometheusK8s:\n  retention: 7d\n"), Ok(false)),
            (Some("enableUserWorkload: \"yes\""), Ok(false)),
        ];
        for (text, want) in cases {
            assert_eq!(enable_user_workload(text), want, "{text:?}");
        }
        assert!(enable_user_workload(Some("a: [")).is_err());
    }
}
