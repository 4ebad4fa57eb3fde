//! A release's manifests as `scripts/release` renders them (through
//! `scripts/release.kustomization.yaml`, the same file), the kept manifests of earlier releases
//! (`tests/fixtures/release-<version>/`), and what an upgrade from one to the other or an
//! uninstall would run into: pure functions over the rendered objects.

use crate::{manifests, process};
use anyhow::{Context as _, Result};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

/// The variants a release ships, relative to `manifests/`, and the stem of each one's file in a
/// release and in a fixture (`kube-metrics-collector-<stem>.yaml`, the default install without
/// a suffix). bring-your-own is not among them: its Secret is the admin's own key.
pub const VARIANTS: &[(&str, &str)] = &[
    (".", "default"),
    ("overlays/certgen", "certgen"),
    ("overlays/certgen-minimal", "certgen-minimal"),
    ("overlays/minimal", "minimal"),
    ("overlays/kube-prometheus-stack", "kube-prometheus-stack"),
    ("overlays/node-collector", "node-collector"),
    ("overlays/openshift", "openshift"),
];

/// Where a release's image lives unless `scripts/release` is told otherwise.
pub const REPOSITORY: &str = "ghcr.io/kube-metrics-collector/kube-metrics-collector";

/// `variant` rendered as release `version` would ship it, with the image pinned to `digest`.
pub fn render(variant: &str, version: &str, digest: &str) -> Result<Vec<Value>> {
    let dir = tempfile::tempdir()?;
    process::output(
        Command::new("cp")
            .arg("-r")
            .arg(crate::workspace().join("manifests"))
            .arg(dir.path()),
    )?;
    let template =
        std::fs::read_to_string(crate::workspace().join("scripts/release.kustomization.yaml"))?;
    let kustomization = template
        .replace("@VARIANT@", variant)
        .replace("@REPOSITORY@", REPOSITORY)
        .replace("@DIGEST@", digest)
        .replace("@VERSION@", version);
    let release = dir.path().join("release");
    std::fs::create_dir(&release)?;
    std::fs::write(release.join("kustomization.yaml"), kustomization)?;
    manifests::kustomize(&release).with_context(|| format!("release {version} of {variant}"))
}

/// Where release `version`'s variant `stem` is kept (`tests/fixtures/release-<version>/<stem>/`):
/// its manifests, and beside them the tests of its alerts.
pub fn fixture_dir(version: &str, stem: &str) -> PathBuf {
    crate::workspace()
        .join("tests/fixtures")
        .join(format!("release-{version}"))
        .join(stem)
}

/// The objects of one variant as release `version` shipped it.
pub fn fixture(version: &str, stem: &str) -> Result<Vec<Value>> {
    let path = fixture_dir(version, stem).join("manifests.yaml");
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    manifests::parse_documents(&text)
}

/// `Kind namespace/name` (or `Kind name` when cluster-scoped): what `kubectl apply` matches
/// objects by, with the API group, since two groups may use one kind name.
pub fn identity(doc: &Value) -> String {
    let api = doc["apiVersion"].as_str().unwrap_or("");
    let group = api.rsplit_once('/').map_or("", |(group, _)| group);
    let meta = &doc["metadata"];
    let name = meta["name"].as_str().unwrap_or("");
    match meta["namespace"].as_str() {
        Some(ns) => format!("{}.{group} {ns}/{name}", manifests::kind(doc)),
        None => format!("{}.{group} {name}", manifests::kind(doc)),
    }
}

/// Every field an API server refuses to change that `new` changes on an object `old` has too:
/// `kubectl apply -f new` over `old` would fail on each. One line per field.
pub fn immutable_changes(old: &[Value], new: &[Value]) -> Vec<String> {
    let mut changes = Vec::new();
    for before in old {
        let id = identity(before);
        let Some(after) = new.iter().find(|doc| identity(doc) == id) else {
            continue;
        };
        for pointer in immutable_fields(before) {
            if before.pointer(pointer) != after.pointer(pointer) {
                changes.push(format!("{id}: {pointer}"));
            }
        }
    }
    changes
}

/// The immutable fields of an object of `doc`'s kind (Kubernetes' validation of updates).
fn immutable_fields(doc: &Value) -> Vec<&'static str> {
    let immutable_data = doc["immutable"] == true;
    match manifests::kind(doc) {
        "Deployment" | "DaemonSet" | "StatefulSet" | "ReplicaSet" => vec!["/spec/selector"],
        // A Job's pod template, selector and completions are fixed once it exists.
        "Job" => vec![
            "/spec/template",
            "/spec/selector",
            "/spec/completions",
            "/spec/completionMode",
        ],
        "Service" => vec!["/spec/clusterIP", "/spec/clusterIPs"],
        "RoleBinding" | "ClusterRoleBinding" => vec!["/roleRef"],
        "Secret" if immutable_data => vec!["/type", "/data", "/stringData"],
        "Secret" => vec!["/type"],
        "ConfigMap" if immutable_data => vec!["/data", "/binaryData"],
        _ => Vec::new(),
    }
}

/// The objects of `old` that `new` no longer has: `kubectl apply -f new` leaves them in the
/// cluster (it prunes nothing unless told), so an upgrade must say what to delete.
pub fn left_behind(old: &[Value], new: &[Value]) -> BTreeSet<String> {
    let kept: BTreeSet<String> = new.iter().map(identity).collect();
    old.iter()
        .map(identity)
        .filter(|id| !kept.contains(id))
        .collect()
}

/// What would still make the API server call out, or refuse something, after an uninstall that
/// deletes the webhook configurations named in `deleted_first` and then every object of `docs`,
/// while those objects are being deleted: admission objects that `deleted_first` misses, webhooks
/// that fail closed, and policies that could refuse a pod.
pub fn uninstall_hazards(docs: &[Value], deleted_first: &BTreeSet<String>) -> Vec<String> {
    let mut hazards = Vec::new();
    for doc in docs {
        let id = identity(doc);
        match manifests::kind(doc) {
            "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration" => {
                let name = doc["metadata"]["name"].as_str().unwrap_or("");
                if !deleted_first.contains(name) {
                    hazards.push(format!("{id}: not deleted first"));
                }
                for hook in doc["webhooks"].as_array().into_iter().flatten() {
                    // Unset means Fail since admissionregistration.k8s.io/v1.
                    if hook["failurePolicy"] != "Ignore" {
                        hazards.push(format!("{id}: {} fails closed", hook["name"]));
                    }
                }
            }
            "ValidatingAdmissionPolicy" => {
                let rules = &doc["spec"]["matchConstraints"]["resourceRules"];
                let touches_pods = rules.as_array().into_iter().flatten().any(|rule| {
                    rule["resources"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|r| r == "pods" || r == "*")
                });
                if touches_pods {
                    hazards.push(format!("{id}: matches pods"));
                }
            }
            _ => {}
        }
    }
    hazards
}

#[cfg(test)]
mod tests;
