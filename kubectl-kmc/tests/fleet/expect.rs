//! What Prometheus answers about a generated VM, computed by hand from the same model that wrote
//! its samples: the test's own reading of the fleet, to compare the command with, and to feed the
//! method directly with a fleet too large to backfill.

use std::time::Duration;

use kubectl_kmc::recommend::math::{
    self, Advice, Fleet, OomKill, OverBudget, Screened, Settings, Trend, VmHistory,
};
use kubectl_kmc::recommend::release;

use super::{Ending, HOUR, MI, Pod, STEP, Vm};

/// The largest measured overhead of one pod over its scrapes, bytes.
pub fn pod_peak(vm: &Vm, pod: &Pod, end: i64) -> f64 {
    let start = end + pod.from;
    vm.times(pod, end)
        .iter()
        .map(|t| vm.overhead_mi(pod, t - start) * MI)
        .fold(f64::NEG_INFINITY, f64::max)
}

/// The VM's peak: the largest of its pods', each on its own.
pub fn peak(vm: &Vm, end: i64) -> f64 {
    vm.pods
        .iter()
        .map(|p| pod_peak(vm, p, end))
        .fold(f64::NEG_INFINITY, f64::max)
}

/// From the first scrape of its first pod to the last of its last.
pub fn span(vm: &Vm) -> f64 {
    let from = vm.pods.iter().map(|p| p.from).min().unwrap_or(0);
    let to = vm.pods.iter().map(|p| p.to).max().unwrap_or(0);
    (to - from) as f64
}

/// The compute container's limit minus the guest RAM its cgroup charges, bytes.
pub fn allowance(vm: &Vm) -> f64 {
    (vm.limit_mi() - vm.guest_charged_mi()) * MI
}

/// The first subquery step, at `resolution` seconds, at which kube-state-metrics had reported
/// the kill: its first scrape comes 30s after the pod's last.
pub fn killed_at(pod: &Pod, end: i64, resolution: i64) -> f64 {
    let reported = end + pod.to + 30;
    (reported + resolution - 1).div_euclid(resolution) as f64 * resolution as f64
}

/// One component's overhead per pod, as hourly means of its scrapes.
fn trend(vm: &Vm, pod: &Pod, component: &str, end: i64) -> Trend {
    let start = end + pod.from;
    let times = vm.times(pod, end);
    let first_hour = (times[0] + HOUR - 1).div_euclid(HOUR) * HOUR;
    let last = *times.last().unwrap_or(&start);
    let points = (0..)
        .map(|i| first_hour + i * HOUR)
        .take_while(|h| *h <= last + HOUR)
        .filter_map(|h| {
            let values: Vec<f64> = times
                .iter()
                .filter(|t| **t > h - HOUR && **t <= h)
                .map(|t| vm.component_mi(pod, component, t - start) * MI)
                .collect();
            (!values.is_empty())
                .then(|| (h as f64, values.iter().sum::<f64>() / values.len() as f64))
        })
        .collect();
    Trend {
        pod: pod.name.clone(),
        component: component.to_owned(),
        points,
    }
}

/// Every component past its budget, by its largest overhead.
fn over_budget(vm: &Vm, end: i64) -> Vec<OverBudget> {
    let mut out = Vec::new();
    for (component, budget) in vm.budgets() {
        let name = component.name();
        let peak = vm
            .pods
            .iter()
            .flat_map(|p| {
                let start = end + p.from;
                vm.times(p, end).into_iter().map(move |t| (p, t - start))
            })
            .map(|(p, since)| vm.component_mi(p, name, since) * MI)
            .fold(0.0, f64::max);
        if peak > budget {
            out.push(OverBudget {
                component: name.to_owned(),
                peak,
                budget,
            });
        }
    }
    out
}

/// The VM's history as `recommend` reads it from Prometheus.
pub fn history(vm: &Vm, end: i64, resolution: i64) -> VmHistory {
    let components: Vec<&str> = vm.roles.iter().map(|r| r.name).chain(["qemu"]).collect();
    let trends = vm
        .pods
        .iter()
        .flat_map(|p| components.iter().map(move |c| trend(vm, p, c, end)))
        .collect();
    let oom_kills = vm
        .pods
        .iter()
        .filter(|p| p.ending == Ending::OomKilled)
        .map(|p| OomKill {
            pod: p.name.clone(),
            at: killed_at(p, end, resolution),
            allowance: Some(allowance(vm)),
        })
        .collect();
    VmHistory {
        namespace: vm.namespace.clone(),
        vm: vm.name.clone(),
        pods: vm.pods.len(),
        peak: Some(peak(vm, end)),
        estimate: (vm.annotation || vm.kubevirt_metric).then_some(vm.estimate_mi * MI),
        span_seconds: span(vm),
        vcpus: Some(vm.vcpus),
        guest_memory: Some(vm.guest_mi * MI),
        instancetype: vm.instancetype.map(str::to_owned),
        over_budget: over_budget(vm, end),
        oom_kills,
        trends,
        refused: Vec::new(),
    }
}

/// `recommend`'s defaults, with the tests' resolution: the scrapes' step.
pub fn settings() -> Settings {
    Settings {
        range: Duration::from_secs(7 * 86_400),
        quantile: 0.9,
        margin: 0.1,
        min_history: Duration::from_secs(86_400),
        min_vms: 3,
        resolution: Duration::from_secs(STEP as u64),
        current_ratio: 1.0,
    }
}

/// The recommendation for `vms`, their histories read by hand, on KubeVirt v1.9.0 with the
/// collector's assumed budgets, as `generate` writes them.
pub fn advice(vms: &[&Vm], end: i64) -> Advice {
    let fleet = Fleet {
        vms: vms.iter().map(|v| history(v, end, STEP)).collect(),
        release: release::Facts {
            budgets: vec![("1.9".into(), "assumed".into())],
            cluster: vec!["v1.9.0".into()],
        },
        screen: Screened {
            vouched: true,
            ..Screened::default()
        },
    };
    math::recommend(&fleet, &settings()).expect("enough VMs")
}
