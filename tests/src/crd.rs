//! Custom resources checked against the schemas their CustomResourceDefinitions publish
//! (`tests/fixtures/crds/`, copied as their projects publish them), as the API server checks a
//! structural schema ([`schema`]). Unknown fields are errors: the server would prune them, and
//! `kubectl apply` with its default strict field validation refuses them, so a misspelt
//! `jobLabel` fails here rather than doing nothing on a cluster.

use anyhow::{Context as _, Result, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub mod schema;

/// The CRDs under `tests/fixtures/crds/`.
pub fn fixtures() -> PathBuf {
    crate::workspace().join("tests/fixtures/crds")
}

/// Every CRD in [`fixtures`], by (`group/version`, kind), as its `openAPIV3Schema`.
pub fn schemas() -> Result<BTreeMap<(String, String), Value>> {
    let mut out = BTreeMap::new();
    let mut paths: Vec<_> = std::fs::read_dir(fixtures())?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.sort();
    for path in paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
    {
        let text = std::fs::read_to_string(path)?;
        for crd in crate::manifests::parse_documents(&text)? {
            if crd["kind"] != "CustomResourceDefinition" {
                continue;
            }
            let group = crd["spec"]["group"].as_str().context("CRD without group")?;
            let kind = crd["spec"]["names"]["kind"]
                .as_str()
                .context("CRD without kind")?;
            for version in crd["spec"]["versions"].as_array().into_iter().flatten() {
                let name = version["name"].as_str().context("version without name")?;
                let schema = schema::schema(&crd, name)?.clone();
                out.insert((format!("{group}/{name}"), kind.to_owned()), schema);
            }
        }
    }
    Ok(out)
}

/// Validates every object of `docs` whose kind one of the CRDs in [`fixtures`] defines; returns
/// how many were validated. Fails with every violation, named by kind and object name.
pub fn validate(docs: &[Value]) -> Result<usize> {
    let schemas = schemas()?;
    let (mut count, mut errors) = (0, Vec::new());
    for doc in docs {
        let key = (
            doc["apiVersion"].as_str().unwrap_or_default().to_owned(),
            doc["kind"].as_str().unwrap_or_default().to_owned(),
        );
        let Some(schema) = schemas.get(&key) else {
            continue;
        };
        let name = doc["metadata"]["name"].as_str().unwrap_or_default();
        errors.extend(
            schema::violations(schema, doc)
                .into_iter()
                .map(|v| format!("{} {name}: {v}", key.1)),
        );
        count += 1;
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn monitor(spec: Value) -> Value {
        json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
            "metadata": {"name": "m"}, "spec": spec})
    }

    #[test]
    fn schemas_accept_good_and_reject_misspelt_or_mistyped_fields() {
        let good = monitor(
            json!({"selector": {}, "jobLabel": "app", "podMetricsEndpoints": [{"port": "p"}]}),
        );
        let other = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}});
        assert_eq!(validate(&[good, other]).unwrap(), 1);
        let misspelt = monitor(json!({"selector": {}, "jobLable": "app"}));
        let error = validate(&[misspelt]).unwrap_err();
        assert!(format!("{error:#}").contains("jobLable"), "{error:#}");
        let mistyped = monitor(json!({"selector": {}, "podMetricsEndpoints": [{"port": 8080}]}));
        assert!(validate(&[mistyped]).is_err());
    }

    #[test]
    fn every_fixture_crd_is_loaded() {
        let kinds: Vec<String> = schemas()
            .unwrap()
            .into_keys()
            .map(|(_, kind)| kind)
            .collect();
        for kind in ["PodMonitor", "PrometheusRule", "SecurityContextConstraints"] {
            assert!(kinds.iter().any(|k| k == kind), "{kinds:?}");
        }
    }
}
