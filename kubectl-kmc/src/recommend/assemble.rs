//! Prometheus' answers -> one history per VM: what KubeVirt does not vouch for is left out and
//! counted, each VM's values reduced over its vouched pods. No I/O.

use std::collections::{BTreeMap, BTreeSet};

use kube_metrics_contract::estimate::Component;

use super::math::{Fleet, OomKill, OverBudget, Screened, Trend, VmHistory};
use super::release;
use crate::fleet::{VmKey, vm_key};
use crate::prom::{Sample, Series};
use crate::vouch::{self, Ignored, Screen, Vouchers};

/// Every answer, in scope, as Prometheus gave it.
#[derive(Clone, Debug, Default)]
pub struct Answers {
    /// `kubevirt_vmi_info`'s VMIs and pods (not filtered: a VM out of scope is left out anyway).
    pub vouchers: Vec<Sample>,
    pub pods: Vec<Sample>,
    pub first: Vec<Sample>,
    pub last: Vec<Sample>,
    pub peak: Vec<Sample>,
    pub estimate: Vec<Sample>,
    pub allowance: Vec<Sample>,
    pub kills: Vec<Sample>,
    pub trends: Vec<Series>,
    pub over_budget: Vec<Sample>,
    pub budget: Vec<Sample>,
    pub guest_memory: Vec<Sample>,
    pub vcpus: Vec<Sample>,
    pub instancetypes: Vec<Sample>,
    pub budget_releases: Vec<Sample>,
    /// Not filtered: KubeVirt runs in its own namespace.
    pub kubevirt_releases: Vec<Sample>,
}

/// The answers screened: what KubeVirt does not vouch for is left out and counted, and so is a
/// value that is not a finite, non-negative number; the VM of such a value is told why.
struct Screening {
    screen: Screen,
    /// Per VM, the values refused: `peak: the value is NaN`.
    refused: BTreeMap<VmKey, Vec<String>>,
}

impl Screening {
    /// The samples of `what` that count.
    fn take<'a>(&mut self, what: &str, samples: &'a [Sample]) -> Vec<&'a Sample> {
        let mut kept = Vec::new();
        for s in samples {
            match self
                .screen
                .vouchers
                .judge(&s.labels)
                .and_then(|()| vouch::vet(s.value).map(drop))
            {
                Ok(()) => kept.push(s),
                Err(why) => {
                    self.screen.tally.add(why);
                    if !matches!(why, Ignored::NoVmi | Ignored::NotTheVmisPod) {
                        let refused = self.refused.entry(vm_key(s)).or_default();
                        refused.push(format!("{what}: {}", why.describe()));
                    }
                }
            }
        }
        kept
    }
}

/// The answers to one history per VM.
pub fn assemble(a: &Answers) -> Fleet {
    let vouchers = Vouchers::from_samples(&a.vouchers).unwrap_or(Vouchers::Unvouched);
    let mut screening = Screening {
        screen: Screen::new(vouchers),
        refused: BTreeMap::new(),
    };
    let mut fleet: BTreeMap<VmKey, VmHistory> = BTreeMap::new();
    let mut pod_vm: BTreeMap<(String, String), VmKey> = BTreeMap::new();
    for s in screening.take("pod", &a.pods) {
        let key = vm_key(s);
        pod_vm.insert((key.0.clone(), s.label("pod").to_owned()), key.clone());
        let vm = fleet.entry(key.clone()).or_insert_with(|| VmHistory {
            namespace: key.0.clone(),
            vm: key.1.clone(),
            ..VmHistory::default()
        });
        vm.pods += 1;
    }
    // A pod's own answer, where it names the pod: only the vouched pods of a VM.
    let of_vouched_pod = |s: &Sample| {
        let pod = (s.label("namespace").to_owned(), s.label("pod").to_owned());
        s.label("pod").is_empty() || pod_vm.get(&pod) == Some(&vm_key(s))
    };
    let mut with = |s: &Sample, f: &mut dyn FnMut(&mut VmHistory)| {
        if !of_vouched_pod(s) {
            return;
        }
        if let Some(vm) = fleet.get_mut(&vm_key(s)) {
            f(vm);
        }
    };
    for s in screening.take("peak", &a.peak) {
        with(s, &mut |v| {
            v.peak = Some(v.peak.map_or(s.value, |p| p.max(s.value)))
        });
    }
    for s in screening.take("estimate", &a.estimate) {
        with(s, &mut |v| {
            v.estimate = Some(v.estimate.map_or(s.value, |e| e.min(s.value)))
        });
    }
    for s in screening.take("guest memory", &a.guest_memory) {
        with(s, &mut |v| {
            v.guest_memory = Some(v.guest_memory.map_or(s.value, |g| g.max(s.value)))
        });
    }
    for s in screening.take("vCPUs", &a.vcpus) {
        with(s, &mut |v| v.vcpus = Some(s.value as u32));
    }
    for s in screening.take("instancetype", &a.instancetypes) {
        with(s, &mut |v| {
            v.instancetype = Some(s.label("instance_type").to_owned())
        });
    }
    let budget = screening.take("budget", &a.budget);
    for s in screening.take("over budget", &a.over_budget) {
        let same = |b: &&&Sample| {
            vm_key(b) == vm_key(s)
                && b.label("pod") == s.label("pod")
                && b.label("component") == s.label("component")
        };
        let budget = budget.iter().find(same).map_or(0.0, |b| b.value);
        with(s, &mut |v| {
            let component = s.label("component");
            let over = OverBudget {
                component: component.to_owned(),
                peak: budget + s.value,
                budget,
            };
            match v.over_budget.iter_mut().find(|o| o.component == component) {
                Some(o) if o.peak - o.budget < over.peak - over.budget => *o = over,
                Some(_) => {}
                None => v.over_budget.push(over),
            }
        });
    }
    for vm in fleet.values_mut() {
        vm.over_budget
            .sort_by_key(|o| component_order(&o.component));
    }
    let of_pod = |s: &&Sample| {
        let pod = (s.label("namespace").to_owned(), s.label("pod").to_owned());
        pod_vm.get(&pod) == Some(&vm_key(s))
    };
    let first: Vec<&Sample> = a.first.iter().filter(of_pod).collect();
    let last: Vec<&Sample> = a.last.iter().filter(of_pod).collect();
    spans(&mut fleet, &first, &last);
    kills(&mut fleet, &pod_vm, a);
    for s in &a.trends {
        let labels = &s.labels;
        let pod = (s.label("namespace").to_owned(), s.label("pod").to_owned());
        let key: VmKey = (s.label("namespace").into(), s.label("name").into());
        if pod_vm.get(&pod) != Some(&key) {
            continue;
        }
        if !screening
            .screen
            .admit(labels, s.points.iter().map(|(_, v)| *v))
        {
            continue;
        }
        if let Some(vm) = fleet.get_mut(&key) {
            vm.trends.push(Trend {
                pod: s.label("pod").to_owned(),
                component: s.label("component").to_owned(),
                points: s.points.clone(),
            });
        }
    }
    for (key, refused) in screening.refused {
        if let Some(vm) = fleet.get_mut(&key) {
            vm.refused = refused;
        }
    }
    let vouched = screening.screen.vouched();
    Fleet {
        vms: fleet.into_values().collect(),
        release: releases(a, &pod_vm),
        screen: Screened {
            vouched,
            left_out: screening.screen.tally,
        },
    }
}

/// Components in the contract's order (the collector's roles, QEMU, swtpm), others after.
fn component_order(name: &str) -> (usize, String) {
    let known = Component::ALL.iter().position(|c| c.name() == name);
    (known.unwrap_or(Component::ALL.len()), name.to_owned())
}

/// Each VM's history: from its pods' first measured overhead to their last.
fn spans(fleet: &mut BTreeMap<VmKey, VmHistory>, first: &[&Sample], last: &[&Sample]) {
    let mut bounds: BTreeMap<VmKey, (f64, f64)> = BTreeMap::new();
    for s in first.iter().filter(|s| s.value.is_finite()) {
        let b = bounds.entry(vm_key(s)).or_insert((s.value, s.value));
        b.0 = b.0.min(s.value);
    }
    for s in last.iter().filter(|s| s.value.is_finite()) {
        let b = bounds.entry(vm_key(s)).or_insert((s.value, s.value));
        b.1 = b.1.max(s.value);
    }
    for (key, (from, to)) in bounds {
        if let Some(vm) = fleet.get_mut(&key) {
            vm.span_seconds = (to - from).max(0.0);
        }
    }
}

/// The OOM kills of the VMs' pods, each with its pod's allowance.
fn kills(
    fleet: &mut BTreeMap<VmKey, VmHistory>,
    pod_vm: &BTreeMap<(String, String), VmKey>,
    a: &Answers,
) {
    for s in a.kills.iter().filter(|s| s.value.is_finite()) {
        let pod = (s.label("namespace").to_owned(), s.label("pod").to_owned());
        let Some(vm) = pod_vm.get(&pod).and_then(|key| fleet.get_mut(key)) else {
            continue;
        };
        let allowance = a
            .allowance
            .iter()
            .find(|x| x.label("namespace") == pod.0 && x.label("pod") == pod.1)
            .map(|x| x.value)
            .filter(|v| vouch::vet(*v).is_ok());
        vm.oom_kills.push(OomKill {
            pod: pod.1,
            at: s.value,
            allowance,
        });
    }
}

/// The releases of the vouched pods' budgets, and KubeVirt's own.
fn releases(a: &Answers, pod_vm: &BTreeMap<(String, String), VmKey>) -> release::Facts {
    let budgets: BTreeSet<(String, String)> = a
        .budget_releases
        .iter()
        .filter(|s| {
            let pod = (s.label("namespace").to_owned(), s.label("pod").to_owned());
            pod_vm.contains_key(&pod)
        })
        .map(|s| {
            (
                s.label("kubevirt_release").to_owned(),
                s.label("source").to_owned(),
            )
        })
        .collect();
    let cluster: BTreeSet<String> = a
        .kubevirt_releases
        .iter()
        .map(|s| s.label("kubeversion").to_owned())
        .collect();
    release::Facts {
        budgets: budgets.into_iter().collect(),
        cluster: cluster.into_iter().collect(),
    }
}
