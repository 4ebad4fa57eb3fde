//! Custom resources checked against the schemas their CustomResourceDefinitions publish
//! (`tests/fixtures/crds/`, copied as prometheus-operator publishes them), with Python's
//! `jsonschema` (installed with kubernetes-validate), as an API server would before pruning. Stricter than the API server in one way:
//! a field the schema does not name is an error instead of being dropped silently, so that a
//! misspelt `jobLabel` fails here rather than doing nothing on a cluster.

use anyhow::{Context as _, Result, bail};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// The CRDs under `tests/fixtures/crds/`.
pub fn fixtures() -> PathBuf {
    crate::workspace().join("tests/fixtures/crds")
}

/// Validates every object of `docs` whose kind one of the CRDs in [`fixtures`] defines; returns
/// how many were validated. Fails with every violation, named by kind and object name.
pub fn validate(docs: &[Value]) -> Result<usize> {
    let dir = tempfile::tempdir()?;
    let objects = dir.path().join("objects.json");
    std::fs::write(&objects, serde_json::to_vec(docs)?)?;
    let output = Command::new("python3")
        .arg("-c")
        .arg(VALIDATOR)
        .arg(fixtures())
        .arg(&objects)
        .output()
        .context("cannot run python3, which needs jsonschema and PyYAML (scripts/setup installs them with kubernetes-validate)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    }
    stdout
        .trim()
        .parse()
        .with_context(|| format!("validator printed {stdout:?}"))
}

/// Reads every CRD in argv[1], then validates the objects in argv[2] (a JSON list); prints the
/// count validated, or every error and exits 1.
const VALIDATOR: &str = r#"
import json, pathlib, sys, yaml, jsonschema

def strict(schema):
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
        for value in schema.values():
            strict(value)
    elif isinstance(schema, list):
        for value in schema:
            strict(value)

schemas = {}
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.yaml")):
    for crd in yaml.safe_load_all(path.read_text()):
        if not crd or crd.get("kind") != "CustomResourceDefinition":
            continue
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = version["schema"]["openAPIV3Schema"]
            # metadata is the API server's, not the CRD's, to check.
            schema.get("properties", {}).pop("metadata", None)
            strict(schema)
            schemas[(f"{group}/{version['name']}", kind)] = schema

errors, count = [], 0
for doc in json.loads(pathlib.Path(sys.argv[2]).read_text()):
    schema = schemas.get((doc.get("apiVersion"), doc.get("kind")))
    if schema is None:
        continue
    body = {k: v for k, v in doc.items() if k != "metadata"}
    for error in jsonschema.Draft7Validator(schema).iter_errors(body):
        path = "/".join(str(p) for p in error.absolute_path)
        errors.append(f"{doc['kind']} {doc['metadata'].get('name')}: {path}: {error.message}")
    count += 1
if errors:
    print("\n".join(errors))
    sys.exit(1)
print(count)
"#;

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
}
