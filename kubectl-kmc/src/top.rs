//! `kubectl kmc top`: memory and CPU per VM and per process role, from Prometheus.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use serde::Serialize;

use crate::cli::{SortBy, TopOutput};
use crate::prom::{Prometheus, Sample, quote};
use crate::table;
use crate::units::{mebibytes, millicores};

/// Which series to look at.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub namespace: Option<String>,
    pub vm: Option<String>,
}

impl Filter {
    /// A selector's braces: `fixed` matchers, then the filter's.
    pub fn selector(&self, fixed: &[&str]) -> String {
        let mut matchers: Vec<String> = fixed.iter().map(|m| (*m).to_owned()).collect();
        if let Some(ns) = &self.namespace {
            matchers.push(format!("namespace={}", quote(ns)));
        }
        if let Some(vm) = &self.vm {
            matchers.push(format!("domain={}", quote(vm)));
        }
        format!("{{{}}}", matchers.join(","))
    }
}

/// One process role of one VM's pod.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RoleUsage {
    pub role: String,
    pub cpu_cores: f64,
    pub resident_bytes: f64,
    /// QEMU only: its RSS outside guest RAM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qemu_own_bytes: Option<f64>,
    /// QEMU only: guest RAM in its RSS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_resident_bytes: Option<f64>,
}

/// One VM's launcher pod.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct VmUsage {
    pub namespace: String,
    pub vm: String,
    pub pod: String,
    pub cpu_cores: f64,
    pub resident_bytes: f64,
    pub roles: Vec<RoleUsage>,
}

/// The four instant queries, straight from Prometheus.
#[derive(Clone, Debug, Default)]
pub struct Raw {
    pub resident: Vec<Sample>,
    pub cpu: Vec<Sample>,
    pub qemu_own: Vec<Sample>,
    pub guest_resident: Vec<Sample>,
}

const BY_ROLE: &str = "namespace, pod, domain, process";
const BY_POD: &str = "namespace, pod, domain";

/// Queries Prometheus; fails when no VM matches.
pub async fn fetch(prometheus: &Prometheus, filter: &Filter) -> Result<Vec<VmUsage>> {
    let resident = filter.selector(&["type=\"resident\""]);
    let all = filter.selector(&[]);
    let raw = Raw {
        resident: prometheus
            .query(&format!(
                "sum by ({BY_ROLE}) (kubevirt_pod_infra_memory_amount_bytes{resident})"
            ))
            .await?,
        cpu: prometheus
            .query(&format!(
                "sum by ({BY_ROLE}) (rate(kubevirt_pod_infra_cpu_seconds_total{all}[5m]))"
            ))
            .await?,
        qemu_own: prometheus
            .query(&format!(
                "sum by ({BY_POD}) (kubevirt_pod_infra_qemu_own_memory_bytes{all})"
            ))
            .await?,
        guest_resident: prometheus
            .query(&format!(
                "sum by ({BY_POD}) (kubevirt_pod_infra_guest_memory_bytes{resident})"
            ))
            .await?,
    };
    let usage = assemble(&raw);
    if usage.is_empty() {
        match (&filter.namespace, &filter.vm) {
            (ns, Some(vm)) => bail!(
                "Prometheus has no kubevirt_pod_infra_memory_amount_bytes for VM {}{vm}: is it injected and scraped? (kubectl kmc check {vm})",
                ns.as_ref().map(|n| format!("{n}/")).unwrap_or_default()
            ),
            (Some(ns), None) => {
                bail!("Prometheus has no kubevirt_pod_infra_memory_amount_bytes in namespace {ns}")
            }
            (None, None) => bail!(
                "Prometheus has no kubevirt_pod_infra_memory_amount_bytes series: is the collector installed and scraped?"
            ),
        }
    }
    Ok(usage)
}

type PodKey = (String, String, String);

fn pod_key(sample: &Sample) -> PodKey {
    (
        sample.label("namespace").to_owned(),
        sample.label("domain").to_owned(),
        sample.label("pod").to_owned(),
    )
}

type Pods = BTreeMap<PodKey, BTreeMap<String, RoleUsage>>;

fn role<'a>(pods: &'a mut Pods, sample: &Sample, name: &str) -> &'a mut RoleUsage {
    let entry = pods.entry(pod_key(sample)).or_default();
    entry.entry(name.to_owned()).or_insert_with(|| RoleUsage {
        role: name.to_owned(),
        ..RoleUsage::default()
    })
}

/// Samples to one entry per pod and role; QEMU's memory split lands on its `qemu` role.
pub fn assemble(raw: &Raw) -> Vec<VmUsage> {
    let mut pods = Pods::new();
    for s in &raw.resident {
        role(&mut pods, s, s.label("process")).resident_bytes = s.value;
    }
    for s in &raw.cpu {
        role(&mut pods, s, s.label("process")).cpu_cores = s.value;
    }
    for s in &raw.qemu_own {
        role(&mut pods, s, "qemu").qemu_own_bytes = Some(s.value);
    }
    for s in &raw.guest_resident {
        role(&mut pods, s, "qemu").guest_resident_bytes = Some(s.value);
    }
    pods.into_iter()
        .map(|((namespace, vm, pod), roles)| {
            let roles: Vec<RoleUsage> = roles.into_values().collect();
            VmUsage {
                namespace,
                vm,
                pod,
                cpu_cores: roles.iter().map(|r| r.cpu_cores).sum(),
                resident_bytes: roles.iter().map(|r| r.resident_bytes).sum(),
                roles,
            }
        })
        .collect()
}

/// Largest first, VMs and the roles within each; ties by name.
pub fn sort(usage: &mut [VmUsage], by: SortBy) {
    let vm_key = |v: &VmUsage| match by {
        SortBy::Memory => v.resident_bytes,
        SortBy::Cpu => v.cpu_cores,
    };
    let role_key = |r: &RoleUsage| match by {
        SortBy::Memory => r.resident_bytes,
        SortBy::Cpu => r.cpu_cores,
    };
    usage.sort_by(|a, b| {
        vm_key(b)
            .total_cmp(&vm_key(a))
            .then_with(|| (&a.namespace, &a.vm, &a.pod).cmp(&(&b.namespace, &b.vm, &b.pod)))
    });
    for vm in usage.iter_mut() {
        vm.roles.sort_by(|a, b| {
            role_key(b)
                .total_cmp(&role_key(a))
                .then_with(|| a.role.cmp(&b.role))
        });
    }
}

/// The sorted table or JSON.
pub fn render(usage: &[VmUsage], output: TopOutput, by: SortBy) -> Result<String> {
    let mut usage = usage.to_vec();
    sort(&mut usage, by);
    if output == TopOutput::Json {
        return Ok(serde_json::to_string_pretty(&usage)? + "\n");
    }
    let optional = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), mebibytes);
    let mut rows = Vec::new();
    for vm in &usage {
        rows.push(vec![
            vm.namespace.clone(),
            vm.vm.clone(),
            "(all)".into(),
            millicores(vm.cpu_cores),
            mebibytes(vm.resident_bytes),
            "".into(),
            "".into(),
        ]);
        for role in &vm.roles {
            rows.push(vec![
                vm.namespace.clone(),
                vm.vm.clone(),
                role.role.clone(),
                millicores(role.cpu_cores),
                mebibytes(role.resident_bytes),
                optional(role.qemu_own_bytes),
                optional(role.guest_resident_bytes),
            ]);
        }
    }
    Ok(table::render(
        &[
            "NAMESPACE",
            "VM",
            "ROLE",
            "CPU(cores)",
            "RESIDENT",
            "QEMU-OWN",
            "GUEST-RAM",
        ],
        &rows,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ns: &str, vm: &str, process: &str, value: f64) -> Sample {
        let mut labels: BTreeMap<String, String> =
            [("namespace", ns), ("domain", vm), ("pod", "p")]
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
        if !process.is_empty() {
            labels.insert("process".into(), process.into());
        }
        Sample { labels, value }
    }

    const MI: f64 = crate::units::MI;

    fn raw() -> Raw {
        Raw {
            resident: vec![
                sample("a", "small", "qemu", 600.0 * MI),
                sample("a", "small", "virt-launcher", 60.0 * MI),
                sample("a", "big", "qemu", 2000.0 * MI),
                sample("a", "big", "virtqemud", 30.0 * MI),
            ],
            cpu: vec![
                sample("a", "small", "qemu", 0.5),
                sample("a", "big", "qemu", 0.1),
                sample("a", "big", "virtqemud", 0.2),
            ],
            qemu_own: vec![sample("a", "big", "", 40.0 * MI)],
            guest_resident: vec![sample("a", "big", "", 1960.0 * MI)],
        }
    }

    #[test]
    fn assembles_and_sorts_by_memory() {
        let mut usage = assemble(&raw());
        sort(&mut usage, SortBy::Memory);
        let order: Vec<(&str, Vec<&str>)> = usage
            .iter()
            .map(|v| {
                (
                    v.vm.as_str(),
                    v.roles.iter().map(|r| r.role.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            order,
            [
                ("big", vec!["qemu", "virtqemud"]),
                ("small", vec!["qemu", "virt-launcher"])
            ]
        );
        assert_eq!(usage[0].resident_bytes, 2030.0 * MI);
        assert!((usage[0].cpu_cores - 0.3).abs() < 1e-9);
        assert_eq!(usage[0].roles[0].qemu_own_bytes, Some(40.0 * MI));
        assert_eq!(usage[1].roles[0].qemu_own_bytes, None);
    }

    #[test]
    fn sorts_by_cpu() {
        let mut usage = assemble(&raw());
        sort(&mut usage, SortBy::Cpu);
        assert_eq!(usage[0].vm, "small");
        assert_eq!(usage[1].roles[0].role, "virtqemud");
    }

    #[test]
    fn table() {
        let text = render(&assemble(&raw()), TopOutput::Table, SortBy::Memory).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "NAMESPACE   VM      ROLE            CPU(cores)   RESIDENT   QEMU-OWN   GUEST-RAM"
        );
        assert_eq!(
            lines[1],
            "a           big     (all)           300m         2030.0Mi"
        );
        assert_eq!(
            lines[2],
            "a           big     qemu            100m         2000.0Mi   40.0Mi     1960.0Mi"
        );
        assert_eq!(lines.len(), 7);
    }
}
