//! The release checks on small objects: identities, Jobs, webhook configurations.

use super::*;
use serde_json::json;

fn deployment(name: &str, app: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"selector": {"matchLabels": {"app": app}}, "replicas": 2}})
}

fn job(name: &str, image: &str) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "ns"},
        "spec": {"backoffLimit": 6, "template": {"spec": {"containers": [{"image": image}]}}}})
}

fn webhook_config(name: &str, failure: Option<&str>) -> Value {
    let mut hook = json!({"name": "inject.example.io"});
    if let Some(policy) = failure {
        hook["failurePolicy"] = json!(policy);
    }
    json!({"apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration", "metadata": {"name": name}, "webhooks": [hook]})
}

#[test]
fn identities_carry_group_namespace_and_name() {
    assert_eq!(identity(&deployment("w", "a")), "Deployment.apps ns/w");
    assert_eq!(
        identity(&webhook_config("kmc", None)),
        "MutatingWebhookConfiguration.admissionregistration.k8s.io kmc"
    );
    assert_eq!(
        identity(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}})),
        "Namespace. n"
    );
}

#[test]
fn immutable_changes_name_each_refused_field_and_only_those() {
    let old = [deployment("w", "a"), job("certgen", "img@sha256:1")];
    // Replicas may change; the selector may not.
    let mut scaled = deployment("w", "a");
    scaled["spec"]["replicas"] = json!(3);
    assert!(immutable_changes(&old, &[scaled, job("certgen", "img@sha256:1")]).is_empty());
    assert_eq!(
        immutable_changes(
            &old,
            &[deployment("w", "b"), job("certgen", "img@sha256:2")]
        ),
        [
            "Deployment.apps ns/w: /spec/selector",
            "Job.batch ns/certgen: /spec/template"
        ]
    );
    // A Job under a new name is a new object: nothing to refuse.
    assert!(immutable_changes(&old, &[job("certgen-0.2.0", "img@sha256:2")]).is_empty());
    let binding = |role: &str| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "b"}, "roleRef": {"kind": "ClusterRole", "name": role}})
    };
    assert_eq!(
        immutable_changes(&[binding("r")], &[binding("s")]),
        ["ClusterRoleBinding.rbac.authorization.k8s.io b: /roleRef"]
    );
}

#[test]
fn left_behind_lists_what_the_new_release_no_longer_has() {
    let old = [job("certgen", "i"), deployment("w", "a")];
    let new = [job("certgen-0.2.0", "i"), deployment("w", "a")];
    assert_eq!(
        left_behind(&old, &new),
        BTreeSet::from(["Job.batch ns/certgen".to_owned()])
    );
    assert!(left_behind(&new, &new).is_empty());
}

#[test]
fn uninstall_hazards_are_missed_configurations_closed_webhooks_and_pod_policies() {
    let first = BTreeSet::from(["kmc".to_owned()]);
    assert!(uninstall_hazards(&[webhook_config("kmc", Some("Ignore"))], &first).is_empty());
    assert_eq!(
        uninstall_hazards(&[webhook_config("other", Some("Ignore"))], &first),
        ["MutatingWebhookConfiguration.admissionregistration.k8s.io other: not deleted first"]
    );
    // No failurePolicy is Fail in admissionregistration.k8s.io/v1.
    assert_eq!(
        uninstall_hazards(&[webhook_config("kmc", None)], &first),
        [
            "MutatingWebhookConfiguration.admissionregistration.k8s.io kmc: \"inject.example.io\" fails closed"
        ]
    );
    let policy = |resource: &str| {
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": "p"}, "spec": {"failurePolicy": "Fail", "matchConstraints":
            {"resourceRules": [{"resources": [resource]}]}}})
    };
    assert!(uninstall_hazards(&[policy("secrets")], &first).is_empty());
    assert_eq!(
        uninstall_hazards(&[policy("pods")], &first),
        ["ValidatingAdmissionPolicy.admissionregistration.k8s.io p: matches pods"]
    );
}
