//! Table tests of the checklist's outcomes and its overall result.

use super::checklist::*;
use super::facts::*;
use super::line::*;
use super::render::{Overall, Summary};
use super::{labels, platform};
use crate::recommend::target;

fn healthy() -> Facts {
    Facts {
        webhook_name: "kube-metrics-collector".into(),
        webhook: Some(Webhook {
            ca_bundle_set: true,
            service: Some((
                "kube-metrics-collector".into(),
                "kube-metrics-webhook".into(),
            )),
            url: None,
            excluded_namespaces: vec!["kube-system".into()],
        }),
        endpoints: Some(Endpoints {
            slices: 1,
            ready: 2,
            not_ready: 0,
        }),
        namespace: Namespace {
            name: "vms".into(),
            labels: Some(labels(&[(INJECT_LABEL, "enabled")])),
        },
        vm: Some(Vm {
            name: "vm1".into(),
            pod: Some(Pod {
                name: "virt-launcher-vm1-abcde".into(),
                node: "node-1".into(),
                annotations: labels(&[(STATUS_ANNOTATION, "injected"), (SOURCE_ANNOTATION, "vmi")]),
                labels: labels(&[(SCRAPE_LABEL, "relay")]),
            }),
        }),
        series: Probe::Answered([("vms".to_owned(), "virt-launcher-vm1-abcde".to_owned())].into()),
        platform: platform::Facts {
            install_namespace: "kube-metrics-collector".into(),
            relay: Ok(Some(platform::DaemonSet {
                desired: 1,
                ready: 1,
                sccs: Default::default(),
            })),
            kubevirt: target::Facts {
                kubevirt: Ok(target::KubeVirt {
                    object: target::Object {
                        namespace: "kubevirt".into(),
                        name: "kubevirt".into(),
                    },
                    ratio: None,
                }),
                hyperconverged: Err("no HyperConverged CR in the cluster".into()),
            },
            ..platform::Facts::default()
        },
        relayed_exported: false,
    }
}

/// The texts of the failed lines.
fn failures(facts: &Facts) -> Vec<String> {
    checklist(facts)
        .into_iter()
        .flat_map(|s| s.lines)
        .filter(|l| l.outcome == Outcome::Failed)
        .map(|l| l.text)
        .collect()
}

fn pod(facts: &mut Facts) -> &mut Pod {
    facts.vm.as_mut().and_then(|v| v.pod.as_mut()).expect("pod")
}

#[test]
fn verdicts() {
    type Edit = fn(&mut Facts);
    let cases: [(&str, Edit, &[&str]); 12] = [
        ("healthy", |_| {}, &[]),
        (
            "no webhook",
            |f| f.webhook = None,
            &["MutatingWebhookConfiguration kube-metrics-collector exists"],
        ),
        (
            "empty caBundle",
            |f| f.webhook.as_mut().expect("webhook").ca_bundle_set = false,
            &["its caBundle is set"],
        ),
        (
            "no endpoints",
            |f| {
                f.endpoints = Some(Endpoints {
                    slices: 1,
                    ready: 0,
                    not_ready: 1,
                })
            },
            &["Service kube-metrics-collector/kube-metrics-webhook has ready endpoints"],
        ),
        (
            "namespace not labelled",
            |f| f.namespace.labels = Some(labels(&[])),
            &["namespace vms opted in (kube-metrics-collector.io/inject=enabled)"],
        ),
        (
            "namespace excluded",
            |f| f.namespace.name = "kube-system".into(),
            &[
                "namespace kube-system opted in (kube-metrics-collector.io/inject=enabled)",
                "Prometheus has its series (kubevirt_pod_infra_pod_info)",
            ],
        ),
        (
            "namespace missing",
            |f| f.namespace.labels = None,
            &["namespace vms opted in (kube-metrics-collector.io/inject=enabled)"],
        ),
        (
            "no pod",
            |f| f.vm.as_mut().expect("vm").pod = None,
            &["the VM has a launcher pod"],
        ),
        (
            "never seen",
            |f| pod(f).annotations.clear(),
            &["the webhook saw the pod"],
        ),
        (
            "skipped",
            |f| {
                pod(f).annotations = labels(&[
                    (STATUS_ANNOTATION, "skipped"),
                    (REASON_ANNOTATION, "vfio-device"),
                    (SOURCE_ANNOTATION, "vmi"),
                ]);
            },
            &["skipped: vfio-device (decided from the VMI)"],
        ),
        (
            "no scrape label",
            |f| pod(f).labels.clear(),
            &["the pod has a scrape path"],
        ),
        (
            "series missing",
            |f| f.series = Probe::Answered(Default::default()),
            &[
                "Prometheus has the collectors' series (kubevirt_pod_infra_pod_info)",
                "Prometheus has its series (kubevirt_pod_infra_pod_info)",
            ],
        ),
    ];
    for (name, edit, want) in cases {
        let mut facts = healthy();
        edit(&mut facts);
        assert_eq!(failures(&facts), want, "{name}");
        let verdict = Summary::of(&checklist(&facts)).overall();
        assert_eq!(verdict == Overall::Passed, want.is_empty(), "{name}");
    }
}

#[test]
fn passed_lines_of_an_injected_vm() {
    let mut facts = healthy();
    facts.series = Probe::NotAsked("no --prometheus".into());
    let sections = checklist(&facts);
    let vm = sections.last().expect("the VM's section");
    let texts: Vec<&str> = vm.lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "launcher pod virt-launcher-vm1-abcde",
            "injected (decided from the VMI)",
            "scraped through the node relay on node-1 (PodMonitor kube-metrics-collector-relay)",
            "Prometheus has its series (kubevirt_pod_infra_pod_info)",
        ]
    );
    assert_eq!(vm.lines[3].outcome, Outcome::NotChecked);
    assert_eq!(
        Summary::of(&sections).overall(),
        Overall::Passed,
        "lines not checked by choice do not fail the checklist"
    );
}

#[test]
fn prometheus_out_of_reach_leaves_the_checklist_incomplete() {
    let mut facts = healthy();
    facts.series = Probe::Failed("Prometheus at http://p is unreachable: refused".into());
    let sections = checklist(&facts);
    let summary = Summary::of(&sections);
    assert_eq!((summary.unknown, summary.failed), (2, 0));
    assert_eq!(summary.overall(), Overall::Incomplete);
}

#[test]
fn a_webhook_reached_by_url_is_not_failed() {
    let mut facts = healthy();
    let webhook = facts.webhook.as_mut().expect("webhook");
    webhook.service = None;
    webhook.url = Some("https://10.0.0.7:8443/mutate".into());
    facts.endpoints = None;
    let lines = &checklist(&facts)[0].lines;
    assert_eq!(
        lines[2].text,
        "its clientConfig names the URL https://10.0.0.7:8443/mutate"
    );
    assert_eq!(lines[3].outcome, Outcome::NotChecked);
    assert!(failures(&facts).is_empty());
}

#[test]
fn direct_scrape_and_pod_fallback() {
    let mut facts = healthy();
    let p = pod(&mut facts);
    p.labels = labels(&[(SCRAPE_LABEL, "direct")]);
    p.annotations = labels(&[
        (STATUS_ANNOTATION, "injected"),
        (SOURCE_ANNOTATION, "pod-fallback"),
    ]);
    facts.series = Probe::Answered(Default::default());
    let sections = checklist(&facts);
    let lines = &sections.last().expect("the VM's section").lines;
    assert_eq!(
        lines[1].text,
        "injected (decided from the pod: the VMI was not read)"
    );
    assert_eq!(
        lines[1].detail,
        ["the webhook could not read the VMI; the scrape path is relay by default"]
    );
    assert_eq!(
        lines[2].text,
        "scraped directly (podIP:port, PodMonitor kube-metrics-collector-direct)"
    );
    assert_eq!(lines[3].outcome, Outcome::Failed);
    assert!(lines[3].detail[1].contains("PodMonitor kube-metrics-collector-direct"));
}

#[test]
fn a_skip_the_node_collector_covers_passes() {
    let mut facts = healthy();
    pod(&mut facts).annotations = labels(&[
        (STATUS_ANNOTATION, "skipped"),
        (REASON_ANNOTATION, "vfio-device"),
        (SOURCE_ANNOTATION, "vmi"),
        (COVERAGE_ANNOTATION, COVERAGE_NODE_COLLECTOR),
    ]);
    let sections = checklist(&facts);
    let line = &sections.last().expect("the VM's section").lines[1];
    assert_eq!(line.outcome, Outcome::Passed, "{line:?}");
    assert_eq!(
        line.text,
        "skipped: vfio-device (decided from the VMI), reported by the node collector"
    );
}

#[test]
fn skipped_from_the_pod_says_to_check_the_vmi_lookup() {
    let mut facts = healthy();
    pod(&mut facts).annotations = labels(&[
        (STATUS_ANNOTATION, "skipped"),
        (REASON_ANNOTATION, "dedicated-cpus"),
        (SOURCE_ANNOTATION, "pod-fallback"),
    ]);
    let sections = checklist(&facts);
    let line = &sections.last().expect("the VM's section").lines[1];
    assert_eq!(
        line.text,
        "skipped: dedicated-cpus (decided from the pod: the VMI was not read)"
    );
    assert_eq!(line.detail.len(), 4);
    assert_eq!(line.detail[3], "then: virtctl restart -n vms vm1");
}
