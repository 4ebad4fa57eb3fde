//! Table tests of the node agents', KubeVirt's and OpenShift's lines.

use std::collections::BTreeMap;

use super::*;
use crate::check::line::Outcome;

fn relay(desired: i32, ready: i32, sccs: &[(&str, usize)]) -> Read<Option<DaemonSet>> {
    Ok(Some(DaemonSet {
        desired,
        ready,
        sccs: sccs.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect(),
    }))
}

fn openshift() -> OpenShift {
    OpenShift {
        user_workload: Ok(true),
        relay_scc: Ok(true),
        install_labels: Ok(BTreeMap::new()),
    }
}

fn facts() -> Facts {
    Facts {
        install_namespace: "kube-metrics-collector".into(),
        relay: relay(3, 3, &[(RELAY, 3)]),
        openshift: Ok(Some(openshift())),
        ..Facts::default()
    }
}

fn vms(labels: &[(&str, &str)]) -> Namespace {
    Namespace {
        name: "vms".into(),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
    }
}

/// (section title, outcome, text) of every line that did not pass.
fn not_passed(facts: &Facts, ns: &Namespace) -> Vec<(String, Outcome, String)> {
    sections(facts, ns, None)
        .into_iter()
        .flat_map(|s| {
            let title = s.title.clone();
            s.lines
                .into_iter()
                .filter(|l| l.outcome != Outcome::Passed)
                .map(move |l| (title.clone(), l.outcome, l.text))
        })
        .collect()
}

#[test]
fn lines() {
    type Edit = fn(&mut Facts);
    type Want = Vec<(&'static str, Outcome, String)>;
    let kubevirt_unread = (
        "KubeVirt",
        Outcome::NotChecked,
        "the KubeVirt CR".to_owned(),
    );
    let cases: [(&str, Edit, Want); 8] = [
        ("healthy", |_| {}, vec![]),
        (
            "relay missing",
            |f| f.relay = Ok(None),
            vec![(
                "node agents",
                Outcome::Failed,
                "DaemonSet kube-metrics-collector/kube-metrics-collector-relay exists".into(),
            )],
        ),
        (
            "relay not ready",
            |f| f.relay = relay(3, 1, &[(RELAY, 1)]),
            vec![(
                "node agents",
                Outcome::Failed,
                "DaemonSet kube-metrics-collector/kube-metrics-collector-relay ready on 1 of 3 node(s)".into(),
            )],
        ),
        (
            "relay under a broader SCC",
            |f| f.relay = relay(2, 2, &[(RELAY, 1), ("privileged", 1)]),
            vec![(
                "OpenShift",
                Outcome::Failed,
                "the relay's pods run under SCC kube-metrics-collector-relay".into(),
            )],
        ),
        (
            "user-workload monitoring off",
            |f| {
                if let Ok(Some(o)) = &mut f.openshift {
                    o.user_workload = Ok(false);
                }
            },
            vec![(
                "OpenShift",
                Outcome::Failed,
                "user-workload monitoring is enabled".into(),
            )],
        ),
        (
            "monitoring config forbidden, SCC missing",
            |f| {
                if let Ok(Some(o)) = &mut f.openshift {
                    o.user_workload = Err("no permission".into());
                    o.relay_scc = Ok(false);
                }
            },
            vec![
                (
                    "OpenShift",
                    Outcome::NotChecked,
                    "user-workload monitoring is enabled".into(),
                ),
                (
                    "OpenShift",
                    Outcome::Failed,
                    "SecurityContextConstraints kube-metrics-collector-relay exists".into(),
                ),
            ],
        ),
        (
            "install namespace left out of user-workload monitoring",
            |f| {
                if let Ok(Some(o)) = &mut f.openshift {
                    o.install_labels =
                        Ok([(USER_MONITORING_LABEL.to_owned(), "false".to_owned())].into());
                }
            },
            vec![(
                "OpenShift",
                Outcome::Failed,
                "namespace kube-metrics-collector is scraped by user-workload monitoring".into(),
            )],
        ),
        (
            "not OpenShift",
            |f| f.openshift = Ok(None),
            vec![],
        ),
    ];
    for (name, edit, mut want) in cases {
        let mut facts = facts();
        edit(&mut facts);
        let agents = want
            .iter()
            .take_while(|(t, ..)| *t == "node agents")
            .count();
        want.insert(agents, kubevirt_unread.clone());
        let want: Vec<(String, Outcome, String)> = want
            .into_iter()
            .map(|(t, o, l)| (t.to_owned(), o, l))
            .collect();
        assert_eq!(not_passed(&facts, &vms(&[])), want, "{name}");
    }
}

#[test]
fn a_vm_namespace_left_out_of_user_workload_monitoring_fails() {
    let failed = not_passed(&facts(), &vms(&[(USER_MONITORING_LABEL, "false")]));
    assert_eq!(
        failed[1],
        (
            "OpenShift".to_owned(),
            Outcome::Failed,
            "namespace vms is scraped by user-workload monitoring".to_owned()
        )
    );
}

#[test]
fn hyperconverged_is_named_with_where_to_change_settings() {
    let mut facts = facts();
    let object = |ns: &str, name: &str| target::Object {
        namespace: ns.into(),
        name: name.into(),
    };
    facts.kubevirt = target::Facts {
        kubevirt: Ok(target::KubeVirt {
            object: object("openshift-cnv", "kubevirt-kubevirt-hyperconverged"),
            ratio: None,
        }),
        hyperconverged: Ok(target::HyperConverged {
            object: object("openshift-cnv", "kubevirt-hyperconverged"),
            jsonpatch: None,
        }),
    };
    let kubevirt = &sections(&facts, &vms(&[]), None)[1];
    assert_eq!(
        kubevirt.lines[1].text,
        "managed by HyperConverged openshift-cnv/kubevirt-hyperconverged"
    );
    assert!(kubevirt.lines[1].detail[0].contains("reverts a patch of the KubeVirt CR"));
}

#[test]
fn relayed_series_must_be_read_as_user_workload_monitoring_stores_them() {
    let line = |reading| {
        let openshift = sections(&facts(), &vms(&[]), reading)
            .pop()
            .expect("OpenShift");
        openshift.lines.last().map(|l| (l.outcome, l.text.clone()))
    };
    let text = "relayed VMs' series are read as user-workload monitoring stores them".to_owned();
    assert_eq!(line(Some(true)), Some((Outcome::Passed, text.clone())));
    assert_eq!(line(Some(false)), Some((Outcome::Failed, text.clone())));
    assert_ne!(line(None).map(|l| l.1), Some(text));
}
