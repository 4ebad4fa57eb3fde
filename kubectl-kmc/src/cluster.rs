//! The Kubernetes API the way kubectl reaches it (kubeconfig, context, in-cluster config), and its
//! errors said in kubectl's terms: which verb on which resource was refused.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube_metrics_runtime::log::error_chain;

/// Why the cluster could not answer; callers branch only on [`ClusterError::NotFound`].
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("no cluster: {0} (set KUBECONFIG, pass --kubeconfig, or run inside a pod)")]
    NoCluster(String),
    #[error("the API server at {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("no permission to {verb} {resource}{scope}: {message}")]
    Forbidden {
        verb: &'static str,
        resource: &'static str,
        scope: String,
        message: String,
    },
    #[error("the API server refused the credentials of the kubeconfig (401 Unauthorized)")]
    Unauthorized,
    #[error("{resource} {name:?} not found{scope}")]
    NotFound {
        resource: &'static str,
        name: String,
        scope: String,
    },
    #[error("{verb} {resource}{scope}: {reason}")]
    Other {
        verb: &'static str,
        resource: &'static str,
        scope: String,
        reason: String,
    },
}

/// A client and the namespace the kubeconfig's context names (`default` when none).
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    pub url: String,
    pub default_namespace: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("url", &self.url)
            .field("default_namespace", &self.default_namespace)
            .finish_non_exhaustive()
    }
}

/// What one API call was, to name it in an error.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    pub verb: &'static str,
    pub resource: &'static str,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
}

impl Call<'_> {
    fn scope(&self) -> String {
        self.namespace
            .map(|ns| format!(" in namespace {ns}"))
            .unwrap_or_default()
    }

    /// The API's error, named after this call.
    pub fn error(&self, url: &str, error: kube::Error) -> ClusterError {
        match error {
            kube::Error::Api(status) if status.code == 403 => ClusterError::Forbidden {
                verb: self.verb,
                resource: self.resource,
                scope: self.scope(),
                message: status.message.clone(),
            },
            kube::Error::Api(status) if status.code == 401 => ClusterError::Unauthorized,
            kube::Error::Api(status) if status.code == 404 => ClusterError::NotFound {
                resource: self.resource,
                name: self.name.to_owned(),
                scope: self.scope(),
            },
            kube::Error::HyperError(_) | kube::Error::Service(_) => ClusterError::Unreachable {
                url: url.to_owned(),
                reason: error_chain(&error),
            },
            other => ClusterError::Other {
                verb: self.verb,
                resource: self.resource,
                scope: self.scope(),
                reason: error_chain(&other),
            },
        }
    }
}

/// The client kubectl would use: `--kubeconfig` (else `KUBECONFIG`, `~/.kube/config`, in-cluster),
/// with `--context` when given.
pub async fn connect(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<Cluster, ClusterError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let config = match (kubeconfig, context) {
        (Some(path), _) => {
            let file = Kubeconfig::read_from(path).map_err(|e| {
                ClusterError::NoCluster(format!(
                    "cannot read {}: {}",
                    path.display(),
                    error_chain(&e)
                ))
            })?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| ClusterError::NoCluster(error_chain(&e)))?
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| ClusterError::NoCluster(error_chain(&e)))?,
        (None, None) => kube::Config::infer()
            .await
            .map_err(|e| ClusterError::NoCluster(error_chain(&e)))?,
    };
    from_config(config)
}

/// A client for an explicit configuration (tests point it at a fake API server).
pub fn from_config(config: kube::Config) -> Result<Cluster, ClusterError> {
    let url = config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_owned();
    let default_namespace = config.default_namespace.clone();
    let client =
        kube::Client::try_from(config).map_err(|e| ClusterError::NoCluster(error_chain(&e)))?;
    Ok(Cluster {
        client,
        url,
        default_namespace,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, message: &str) -> kube::Error {
        let status = kube::core::Status::failure(message, "Forbidden").with_code(code);
        kube::Error::Api(Box::new(status))
    }

    #[test]
    fn api_errors_name_the_call() {
        let call = Call {
            verb: "list",
            resource: "pods",
            namespace: Some("vms"),
            name: "",
        };
        let message = r#"pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "vms""#;
        let error = call.error("http://x", status(403, message));
        assert_eq!(
            error.to_string(),
            format!("no permission to list pods in namespace vms: {message}")
        );
        let get = Call {
            verb: "get",
            resource: "mutatingwebhookconfigurations",
            namespace: None,
            name: "kube-metrics-collector",
        };
        let error = get.error("http://x", status(404, "not found"));
        assert!(matches!(error, ClusterError::NotFound { .. }));
        assert_eq!(
            error.to_string(),
            r#"mutatingwebhookconfigurations "kube-metrics-collector" not found"#
        );
        assert!(matches!(
            get.error("http://x", status(401, "")),
            ClusterError::Unauthorized
        ));
    }
}
