//! Prometheus without a URL: prometheus-operator's `Prometheus` objects, reached through the API
//! server's service proxy with the kubeconfig's credentials (as `kubectl get --raw` reaches it).
//! The operator puts a Service `prometheus-operated` with port `web` beside every Prometheus it
//! runs. OpenShift's own stacks are left out: their API sits behind a proxy that wants a token of
//! its own (docs/kubectl-kmc.md).

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};

use super::Prometheus;
use crate::cluster::{Call, Cluster, ClusterError};

/// The namespaces of OpenShift's platform and user-workload monitoring.
const OPENSHIFT_MONITORING: [&str; 2] =
    ["openshift-monitoring", "openshift-user-workload-monitoring"];

/// Why no Prometheus was found; each says what to pass instead.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DiscoverError {
    #[error(
        "no --prometheus, and prometheus-operator's Prometheus objects could not be listed: {0}"
    )]
    Unlisted(String),
    #[error(
        "no --prometheus, and the cluster runs no prometheus-operator Prometheus: give --prometheus URL"
    )]
    NoneFound,
    #[error(
        "no --prometheus, and only OpenShift's monitoring runs here, whose API wants a token: give --prometheus https://<the thanos-querier route of openshift-monitoring> --prometheus-token \"$(oc whoami -t)\""
    )]
    OpenShift,
    #[error(
        "no --prometheus, and several Prometheus run here ({0}): name one with --prometheus-object NAMESPACE/NAME, or give --prometheus URL"
    )]
    Several(String),
    #[error("--prometheus-object {0}: no such Prometheus (found: {1})")]
    NoSuchObject(String, String),
    #[error(
        "Prometheus {0} has a spec.routePrefix that is not a plain path: give --prometheus URL"
    )]
    RoutePrefix(String),
}

/// One prometheus-operator `Prometheus`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub namespace: String,
    pub name: String,
    /// `spec.routePrefix`: where its HTTP API is served.
    pub route_prefix: Option<String>,
}

impl std::fmt::Display for Candidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The one to use: `wanted` (`NAMESPACE/NAME`) when given, else the only one outside OpenShift's
/// monitoring namespaces.
pub fn choose<'a>(
    candidates: &'a [Candidate],
    wanted: Option<&str>,
) -> Result<&'a Candidate, DiscoverError> {
    let names = || {
        candidates
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(wanted) = wanted {
        return candidates
            .iter()
            .find(|c| c.to_string() == wanted)
            .ok_or_else(|| DiscoverError::NoSuchObject(wanted.to_owned(), names()));
    }
    let usable: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| !OPENSHIFT_MONITORING.contains(&c.namespace.as_str()))
        .collect();
    match usable.as_slice() {
        [one] => Ok(one),
        [] if candidates.is_empty() => Err(DiscoverError::NoneFound),
        [] => Err(DiscoverError::OpenShift),
        _ => Err(DiscoverError::Several(names())),
    }
}

/// The service proxy's path to the candidate's HTTP API.
pub fn proxy_path(candidate: &Candidate) -> Result<String, DiscoverError> {
    let prefix = candidate.route_prefix.as_deref().unwrap_or("");
    let plain = prefix.is_empty()
        || (prefix.starts_with('/')
            && !prefix.contains("..")
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b)));
    if !plain {
        return Err(DiscoverError::RoutePrefix(candidate.to_string()));
    }
    Ok(format!(
        "/api/v1/namespaces/{}/services/prometheus-operated:web/proxy{}",
        candidate.namespace,
        prefix.trim_end_matches('/')
    ))
}

/// Lists the cluster's Prometheus objects and returns the one to query.
pub async fn find(
    cluster: &Cluster,
    wanted: Option<&str>,
    time: &str,
    max_bytes: u64,
) -> Result<Prometheus, DiscoverError> {
    let candidates = list(cluster).await?;
    let chosen = choose(&candidates, wanted)?;
    let path = proxy_path(chosen)?;
    let shown = format!(
        "Prometheus {chosen} (through the API server at {})",
        cluster.url
    );
    Ok(Prometheus::through_api_server(
        cluster.client.clone(),
        path,
        shown,
        time,
        max_bytes,
    ))
}

async fn list(cluster: &Cluster) -> Result<Vec<Candidate>, DiscoverError> {
    let gvk = GroupVersionKind::gvk("monitoring.coreos.com", "v1", "Prometheus");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "prometheuses");
    let api: Api<DynamicObject> = Api::all_with(cluster.client.clone(), &resource);
    let call = Call {
        verb: "list",
        resource: "prometheuses.monitoring.coreos.com",
        namespace: None,
        name: "",
    };
    let objects = match api.list(&ListParams::default()).await {
        Ok(list) => list.items,
        Err(e) => {
            return Err(match call.error(&cluster.url, e) {
                ClusterError::NotFound { .. } => DiscoverError::NoneFound,
                other => DiscoverError::Unlisted(other.to_string()),
            });
        }
    };
    let mut candidates: Vec<Candidate> = objects
        .iter()
        .map(|o| Candidate {
            namespace: o.metadata.namespace.clone().unwrap_or_default(),
            name: o.metadata.name.clone().unwrap_or_default(),
            route_prefix: o.data["spec"]["routePrefix"].as_str().map(str::to_owned),
        })
        .collect();
    candidates.sort_by_key(ToString::to_string);
    Ok(candidates)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(ns: &str, name: &str) -> Candidate {
        Candidate {
            namespace: ns.into(),
            name: name.into(),
            route_prefix: None,
        }
    }

    #[test]
    fn choices() {
        let monitoring = candidate("monitoring", "k8s");
        let platform = candidate("openshift-monitoring", "k8s");
        let other = candidate("team-a", "apps");
        type Case<'a> = (
            Vec<Candidate>,
            Option<&'a str>,
            Result<&'a str, DiscoverError>,
        );
        let cases: [Case<'_>; 6] = [
            (vec![monitoring.clone()], None, Ok("monitoring/k8s")),
            (
                vec![platform.clone(), monitoring.clone()],
                None,
                Ok("monitoring/k8s"),
            ),
            (vec![], None, Err(DiscoverError::NoneFound)),
            (vec![platform.clone()], None, Err(DiscoverError::OpenShift)),
            (
                vec![monitoring.clone(), other.clone()],
                None,
                Err(DiscoverError::Several("monitoring/k8s, team-a/apps".into())),
            ),
            (
                vec![monitoring.clone(), other.clone()],
                Some("team-a/apps"),
                Ok("team-a/apps"),
            ),
        ];
        for (candidates, wanted, want) in cases {
            let got = choose(&candidates, wanted).map(ToString::to_string);
            assert_eq!(got, want.map(str::to_owned), "{candidates:?} {wanted:?}");
        }
        assert_eq!(
            choose(&[monitoring], Some("x/y")),
            Err(DiscoverError::NoSuchObject(
                "x/y".into(),
                "monitoring/k8s".into()
            ))
        );
    }

    #[test]
    fn proxy_paths() {
        let mut c = candidate("monitoring", "k8s");
        assert_eq!(
            proxy_path(&c).unwrap(),
            "/api/v1/namespaces/monitoring/services/prometheus-operated:web/proxy"
        );
        c.route_prefix = Some("/prom/".into());
        assert_eq!(
            proxy_path(&c).unwrap(),
            "/api/v1/namespaces/monitoring/services/prometheus-operated:web/proxy/prom"
        );
        for hostile in ["/../../secrets", "/p?x=1", "prom", "/p#f"] {
            c.route_prefix = Some(hostile.into());
            assert!(proxy_path(&c).is_err(), "{hostile}");
        }
    }
}
