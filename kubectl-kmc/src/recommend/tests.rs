//! Table tests of the recommendation's queries and how it reads their answers.

use super::queries::Queries;
use super::*;
use crate::prom::Sample;
use crate::vouch::{self, Ignored};
use math::{OomKill, OverBudget};

fn sample(pairs: &[(&str, &str)], value: f64) -> Sample {
    Sample::new(pairs, value)
}

fn pod(ns: &str, pod: &str, name: &str, value: f64) -> Sample {
    sample(&[("namespace", ns), ("pod", pod), ("name", name)], value)
}

#[test]
fn vms_are_namespace_and_name_and_their_pods_are_joined_by_pod() {
    let answers = Answers {
        pods: vec![
            pod("a", "p1", "vm", 1.0),
            pod("a", "p2", "vm", 1.0),
            pod("b", "p3", "vm", 1.0),
        ],
        first: vec![pod("a", "p1", "vm", 100.0), pod("a", "p2", "vm", 500.0)],
        last: vec![pod("a", "p1", "vm", 400.0), pod("a", "p2", "vm", 900.0)],
        peak: vec![
            sample(&[("namespace", "a"), ("name", "vm")], 7.0),
            sample(&[("namespace", "b"), ("name", "vm")], 9.0),
        ],
        kills: vec![
            sample(&[("namespace", "a"), ("pod", "p1")], 401.0),
            sample(&[("namespace", "a"), ("pod", "elsewhere")], 1.0),
        ],
        allowance: vec![pod("a", "p1", "vm", 280.0), pod("a", "p2", "vm", 300.0)],
        over_budget: vec![sample(
            &[("namespace", "b"), ("name", "vm"), ("component", "qemu")],
            5.0,
        )],
        budget: vec![sample(
            &[("namespace", "b"), ("name", "vm"), ("component", "qemu")],
            78.0,
        )],
        budget_releases: vec![
            sample(
                &[
                    ("namespace", "a"),
                    ("pod", "p1"),
                    ("kubevirt_release", "1.9"),
                    ("source", "assumed"),
                ],
                1.0,
            ),
            // A pod of no VM: its release is not the fleet's.
            sample(
                &[
                    ("namespace", "t"),
                    ("pod", "x"),
                    ("kubevirt_release", "0.1"),
                    ("source", "assumed"),
                ],
                1.0,
            ),
        ],
        kubevirt_releases: vec![sample(&[("kubeversion", "v1.9.0")], 1.0)],
        ..Answers::default()
    };
    let fleet = assemble(&answers);
    assert_eq!(fleet.vms.len(), 2);
    let (a, b) = (&fleet.vms[0], &fleet.vms[1]);
    assert_eq!((a.namespace.as_str(), a.pods, a.peak), ("a", 2, Some(7.0)));
    assert_eq!(a.span_seconds, 800.0);
    assert_eq!(
        a.oom_kills,
        [OomKill {
            pod: "p1".into(),
            at: 401.0,
            allowance: Some(280.0)
        }]
    );
    assert_eq!((b.namespace.as_str(), b.pods, b.peak), ("b", 1, Some(9.0)));
    assert_eq!(
        b.over_budget,
        [OverBudget {
            component: "qemu".into(),
            peak: 83.0,
            budget: 78.0
        }]
    );
    assert_eq!(
        fleet.release,
        release::Facts {
            budgets: vec![("1.9".into(), "assumed".into())],
            cluster: vec!["v1.9.0".into()],
        }
    );
}

fn vmi(ns: &str, name: &str, pod: &str) -> Sample {
    sample(&[("namespace", ns), ("name", name), ("vmi_pod", pod)], 1.0)
}

fn per_pod(ns: &str, name: &str, pod: &str, value: f64) -> Sample {
    sample(&[("namespace", ns), ("name", name), ("pod", pod)], value)
}

#[test]
fn only_what_kubevirt_vouches_for_counts_and_bad_values_say_why() {
    let hostile = "vm;touch /tmp/x;#\n\u{1b}[2J";
    let answers = Answers {
        vouchers: vec![
            vmi("a", "vm", "p1"),
            vmi("a", "vm", "p2"),
            vmi("a", "nan", "<none>"),
        ],
        pods: vec![
            pod("a", "p1", "vm", 1.0),
            pod("a", "p2", "vm", 1.0),
            // Claims the VM's name from a pod KubeVirt does not name.
            pod("a", "fake", "vm", 1.0),
            pod("tenant", "fake", hostile, 1.0),
            pod("a", "p3", "nan", 1.0),
        ],
        peak: vec![
            per_pod("a", "vm", "p1", 7.0),
            per_pod("a", "vm", "p2", 9.0),
            per_pod("a", "vm", "fake", 1e12),
            per_pod("tenant", hostile, "fake", 1e12),
            per_pod("a", "nan", "p3", f64::NAN),
        ],
        estimate: vec![
            per_pod("a", "vm", "p1", 5.0),
            per_pod("a", "vm", "p2", 6.0),
            per_pod("a", "vm", "fake", 1.0),
            per_pod("a", "nan", "p3", -1.0),
        ],
        ..Answers::default()
    };
    let fleet = assemble(&answers);
    let names: Vec<&str> = fleet.vms.iter().map(|v| v.vm.as_str()).collect();
    assert_eq!(names, ["nan", "vm"]);
    let vm = &fleet.vms[1];
    assert_eq!((vm.pods, vm.peak, vm.estimate), (2, Some(9.0), Some(5.0)));
    assert_eq!(
        fleet.vms[0].refused,
        ["peak: the value is NaN", "estimate: the value is negative"]
    );
    assert!(fleet.screen.vouched);
    let left_out: Vec<(Ignored, usize)> = fleet.screen.left_out.0.clone().into_iter().collect();
    assert_eq!(
        left_out,
        [
            (Ignored::NoVmi, 2),
            (Ignored::NotTheVmisPod, 3),
            (Ignored::NotANumber, 1),
            (Ignored::Negative, 1),
        ]
    );
}

#[test]
fn queries_read_the_rules_over_the_range() {
    let q = Queries {
        r: "7d".into(),
        s: "1m".into(),
        job: vouch::KUBEVIRT_JOB.into(),
    };
    assert!(q.peak().starts_with(
        "max by (namespace, name, pod) (max_over_time((sum by (namespace, pod, name, node) ("
    ));
    assert_eq!(
        q.kubevirt_releases(),
        "group by (kubeversion) (max_over_time(kubevirt_info{job=\"kubevirt-prometheus-metrics\",kubeversion!=\"\"}[7d]))"
    );
    assert!(q.peak().ends_with(")[7d:1m]))"), "{}", q.peak());
    assert!(q.trends().starts_with("avg_over_time(("), "{}", q.trends());
    assert!(q.trends().ends_with(")[1h:1m])[7d:1h]"), "{}", q.trends());
    assert_eq!(
        q.kills(),
        "min by (namespace, pod) (min_over_time(timestamp(max by (namespace, pod) (kube_pod_container_status_terminated_reason{container=\"compute\",reason=\"OOMKilled\"} > 0 or kube_pod_container_status_last_terminated_reason{container=\"compute\",reason=\"OOMKilled\"} > 0))[7d:1m]))"
    );
}
