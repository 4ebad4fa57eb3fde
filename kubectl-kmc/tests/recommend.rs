//! The golden output of `recommend` for a generated fleet of 300 VMs. Backfilling 300 VMs into
//! Prometheus takes minutes on two cores, so their histories are read by hand from the model that
//! generates them and fed to the method and the renderer directly; tests/prometheus.rs holds that
//! reading to Prometheus' on the 12-VM fleet. The YAML's commands, pasted into a shell, give a
//! fake `kubectl` exactly the argv meant.

mod fleet;
mod paste;

use fleet::{DAY, END, HOUR, Vm, expect, golden, golden_file};
use http::{Method, StatusCode};
use kube_metrics_fake_api::{Answer, FakeApi};
use kubectl_kmc::cli::RecommendOutput;
use kubectl_kmc::recommend::target::{self, Manager, Target};
use kubectl_kmc::recommend::{math, render};

#[test]
fn three_hundred_vms() {
    let vms = golden::fleet(300, "fleet", DAY + 6 * HOUR);
    let refs: Vec<&Vm> = vms.iter().collect();
    let advice = expect::advice(&refs, END);
    let table =
        render::render(&advice, &expect::settings(), RecommendOutput::Table).expect("render");
    golden_file("recommend-300.txt", &table);
}

/// Every printed command parses and passes kubectl exactly its words; names with dots (a
/// DNS-1123 subdomain) included.
#[test]
fn pasted_commands_pass_exactly_the_meant_argv() {
    let mut vms = golden::fleet(12, "fleet-a", DAY + 6 * HOUR);
    for vm in &mut vms {
        vm.name = format!("{}.example", vm.name);
    }
    let refs: Vec<&Vm> = vms.iter().collect();
    let advice = expect::advice(&refs, END);
    let yaml = render::render(&advice, &expect::settings(), RecommendOutput::Yaml).expect("render");
    let commands = paste::commands(&yaml);
    let added: Vec<_> = advice
        .vms
        .iter()
        .filter_map(|v| Some((v, v.added_overhead_mi?)))
        .collect();
    assert!(!added.is_empty(), "{yaml}");
    assert_eq!(commands.len(), 1 + added.len(), "{yaml}");
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(
        paste::argv(&commands[0], dir.path()),
        paste::ratio_patch(&render::ratio_text(advice.ratio))
    );
    for (command, (vm, mi)) in commands[1..].iter().zip(added) {
        assert_eq!(
            paste::argv(command, dir.path()),
            paste::vm_patch(&vm.namespace, &vm.vm, mi),
            "{command}"
        );
    }
}

/// The fake API server (it stands in for kube-apiserver, which cannot run here), with no objects.
fn start() -> FakeApi {
    FakeApi::start().expect("fake API server")
}

/// The cluster as `recommend` reads it from the fake API server, and the advice rendered for it.
fn target_from(api: &FakeApi) -> Target {
    let config = kube::Config::new(api.url().parse().expect("url"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let facts = runtime.block_on(async {
        let cluster = kubectl_kmc::cluster::from_config(config).expect("client");
        target::gather(&cluster).await
    });
    target::decide(&facts, None).expect("decide")
}

const KUBEVIRTS: &str = "/apis/kubevirt.io/v1/kubevirts";
const HYPERCONVERGEDS: &str = "/apis/hco.kubevirt.io/v1/hyperconvergeds";

fn kubevirt(namespace: &str, name: &str, ratio: Option<&str>) -> serde_json::Value {
    let mut object = serde_json::json!({
        "apiVersion": "kubevirt.io/v1", "kind": "KubeVirt",
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"configuration": {}},
    });
    if let Some(ratio) = ratio {
        object["spec"]["configuration"]["additionalGuestMemoryOverheadRatio"] = ratio.into();
    }
    object
}

fn twelve() -> (kubectl_kmc::recommend::math::Advice, Vec<Vm>) {
    let vms = golden::fleet(12, "fleet-a", DAY + 6 * HOUR);
    let refs: Vec<&Vm> = vms.iter().collect();
    (expect::advice(&refs, END), vms)
}

/// No HyperConverged (its API is not served: 404): the KubeVirt CR the cluster has is patched,
/// and the current ratio is the one it sets.
#[test]
fn without_hyperconverged_the_kubevirt_cr_is_patched() {
    let api = start();
    api.set(
        KUBEVIRTS,
        vec![kubevirt("kubevirt", "kubevirt", Some("1.0"))],
    );
    let target = target_from(&api);
    assert_eq!(
        target.current_from, "the KubeVirt CR kubevirt/kubevirt",
        "{target:?}"
    );
    let (advice, _) = twelve();
    let settings = expect::settings();
    let table =
        render::render_for(&advice, &settings, &target, RecommendOutput::Table).expect("render");
    assert!(
        table.contains("  set in the KubeVirt CR kubevirt/kubevirt: no HyperConverged manages it (the API serves no hyperconvergeds.hco.kubevirt.io (v1, v1beta1))\n"),
        "{table}"
    );
    let yaml =
        render::render_for(&advice, &settings, &target, RecommendOutput::Yaml).expect("render");
    golden_file("recommend-kubevirt.yaml", &yaml);
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(
        paste::argv(&paste::commands(&yaml)[0], dir.path()),
        paste::ratio_patch(&render::ratio_text(advice.ratio))
    );
}

/// A HyperConverged CR owns KubeVirt: each VM's addedOverhead at the current ratio first, then
/// the ratio through HCO's jsonpatch annotation, its other operations kept.
#[test]
fn with_hyperconverged_added_overhead_first_then_the_annotation() {
    let existing =
        r#"[{"op":"add","path":"/spec/configuration/migrations","value":{"allowPostCopy":true}}]"#;
    let api = start();
    api.set(
        KUBEVIRTS,
        vec![kubevirt(
            "openshift-cnv",
            "kubevirt-kubevirt-hyperconverged",
            None,
        )],
    );
    api.set(
        HYPERCONVERGEDS,
        vec![serde_json::json!({
            "apiVersion": "hco.kubevirt.io/v1", "kind": "HyperConverged",
            "metadata": {"namespace": "openshift-cnv", "name": "kubevirt-hyperconverged",
                         "annotations": {target::HCO_JSONPATCH: existing}},
        })],
    );
    let target = target_from(&api);
    let (advice, _) = twelve();
    let settings = expect::settings();
    let table =
        render::render_for(&advice, &settings, &target, RecommendOutput::Table).expect("render");
    golden_file("recommend-hco.txt", &table);
    let yaml =
        render::render_for(&advice, &settings, &target, RecommendOutput::Yaml).expect("render");
    golden_file("recommend-hco.yaml", &yaml);
    assert!(!yaml.contains("kubectl patch kubevirt"), "{yaml}");
    let commands = paste::commands(&yaml);
    let added: Vec<_> = advice
        .vms
        .iter()
        .filter_map(|v| {
            let mi = math::added_overhead_mi(v, advice.current_ratio, settings.margin)?;
            Some(paste::vm_patch(&v.namespace, &v.vm, mi))
        })
        .collect();
    assert!(!added.is_empty(), "{yaml}");
    assert_eq!(commands.len(), added.len() + 1, "{yaml}");
    let dir = tempfile::tempdir().expect("tempdir");
    for (command, meant) in commands.iter().zip(&added) {
        assert_eq!(&paste::argv(command, dir.path()), meant, "{command}");
    }
    let ratio = render::ratio_text(advice.ratio);
    let annotation = format!(
        r#"kubevirt.kubevirt.io/jsonpatch=[{{"op":"add","path":"/spec/configuration/migrations","value":{{"allowPostCopy":true}}}},{{"op":"add","path":"/spec/configuration/additionalGuestMemoryOverheadRatio","value":"{ratio}"}}]"#
    );
    assert_eq!(
        paste::argv(commands.last().expect("annotate"), dir.path()),
        [
            "annotate",
            "--overwrite",
            "hyperconverged",
            "kubevirt-hyperconverged",
            "-n",
            "openshift-cnv",
            &annotation,
        ]
    );
}

/// Not allowed to list HyperConverged CRs (403): taken as none, and said.
#[test]
fn a_forbidden_hyperconverged_is_taken_as_none_and_said() {
    let api = start();
    api.set(
        KUBEVIRTS,
        vec![kubevirt("kubevirt", "kubevirt", Some("1.25"))],
    );
    let forbidden = r#"hyperconvergeds.hco.kubevirt.io is forbidden: User "alice" cannot list resource "hyperconvergeds""#;
    api.answer(
        Method::GET,
        HYPERCONVERGEDS,
        Answer::status(StatusCode::FORBIDDEN, forbidden),
    );
    let target = target_from(&api);
    assert_eq!(target.current_ratio, 1.25);
    let Manager::KubeVirt { no_hco, .. } = &target.manager else {
        panic!("{target:?}");
    };
    assert!(
        no_hco.starts_with("no permission to list hyperconvergeds: "),
        "{no_hco}"
    );
}

/// An HCO older than its v1 API serves v1beta1 only: still found.
#[test]
fn a_hyperconverged_of_v1beta1_only_is_found() {
    let api = start();
    api.set(
        "/apis/hco.kubevirt.io/v1beta1/hyperconvergeds",
        vec![serde_json::json!({
            "apiVersion": "hco.kubevirt.io/v1beta1", "kind": "HyperConverged",
            "metadata": {"namespace": "kubevirt-hyperconverged", "name": "kubevirt-hyperconverged"},
        })],
    );
    let target = target_from(&api);
    let Manager::HyperConverged { object, existing } = &target.manager else {
        panic!("{target:?}");
    };
    assert_eq!(
        object.to_string(),
        "kubevirt-hyperconverged/kubevirt-hyperconverged"
    );
    assert_eq!(existing, &None);
}
