//! A throwaway kustomize overlay over one of the repository's variants, as an admin writes one to
//! change a value the manifests make replaceable (the runbook base, kube-prometheus-stack's
//! `release`), rendered with `kubectl kustomize`.

use crate::manifests;
use anyhow::{Context as _, Result};
use serde_json::Value;
use std::path::{Component, Path, PathBuf};

/// Renders a kustomization whose only resource is `variant` (relative to `manifests/`) and whose
/// other fields are `rest` (YAML, appended as is).
pub fn render(variant: &str, rest: &str) -> Result<Vec<Value>> {
    let dir = tempfile::tempdir()?;
    let target = crate::workspace()
        .join("manifests")
        .join(variant)
        .canonicalize()?;
    // kustomize refuses absolute resource paths: go up to / and down again.
    let resource = relative_to(dir.path().canonicalize()?.as_path(), &target);
    let kustomization = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - {}\n{rest}",
        resource.display()
    );
    std::fs::write(dir.path().join("kustomization.yaml"), kustomization)?;
    manifests::kustomize(dir.path()).with_context(|| format!("overlay over {variant}"))
}

/// `to` as a path relative to `from`, both absolute: `../..` up to the root, then `to`.
fn relative_to(from: &Path, to: &Path) -> PathBuf {
    let ups = from
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count();
    let mut path: PathBuf = std::iter::repeat_n("..", ups).collect();
    path.extend(
        to.components()
            .filter(|c| matches!(c, Component::Normal(_))),
    );
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_to_the_root() {
        assert_eq!(
            relative_to(Path::new("/tmp/x"), Path::new("/work/m/o")),
            PathBuf::from("../../work/m/o")
        );
    }
}
