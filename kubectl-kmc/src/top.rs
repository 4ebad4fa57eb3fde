//! `kubectl kmc top`: memory and CPU per VM and per process role, from Prometheus, read through
//! the recording rules ([`crate::fleet`]), of the pods KubeVirt vouches for ([`crate::vouch`]).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Result, bail};
use kube_metrics_contract::rules;
use serde::Serialize;

use crate::cli::{SortBy, TopOutput, VouchArgs};
use crate::fleet::{Relayed, Scope, rule};
use crate::prom::{Prometheus, Sample};
use crate::table;
use crate::text;
use crate::units::{mebibytes, millicores};
use crate::vouch::{self, NoVouchers, Screen, Vouchers};

/// The warning when `--allow-unvouched` counted every series.
pub const UNVOUCHED: &str = "warning: no kubevirt_vmi_info vouches for any VM (--allow-unvouched): every pod that serves the collector's families is counted, a tenant's pod posing as a VM included";

/// One process role of one VM's pod.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RoleUsage {
    pub role: String,
    pub cpu_cores: f64,
    pub resident_bytes: f64,
    /// What the role costs the pod beyond guest RAM: resident memory and page tables (QEMU: its
    /// memory outside guest RAM and its page tables).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overhead_bytes: Option<f64>,
    /// KubeVirt's budget for it, from the collector's budget series.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_bytes: Option<f64>,
}

/// One VM's launcher pod.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct VmUsage {
    pub namespace: String,
    pub vm: String,
    pub pod: String,
    pub cpu_cores: f64,
    pub resident_bytes: f64,
    /// The measured overhead, the sum of the roles'; absent until QEMU's own memory is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overhead_bytes: Option<f64>,
    /// KubeVirt's estimate of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate_bytes: Option<f64>,
    pub roles: Vec<RoleUsage>,
}

/// The instant queries' answers, one per rule, straight from Prometheus.
#[derive(Clone, Debug, Default)]
pub struct Raw {
    pub resident: Vec<Sample>,
    pub cpu: Vec<Sample>,
    pub component_overhead: Vec<Sample>,
    pub component_budget: Vec<Sample>,
    pub overhead: Vec<Sample>,
    pub estimate: Vec<Sample>,
}

/// Queries Prometheus, reading relayed series where `relayed` says they are; fails when no VM
/// matches, or when nothing vouches for any VM and `--allow-unvouched` was not given. Returns the
/// usage and what was left out.
pub async fn fetch(
    prometheus: &Prometheus,
    scope: &Scope,
    vouch: &VouchArgs,
    relayed: &Relayed,
) -> Result<(Vec<VmUsage>, Screen)> {
    let ask = |expr: String| async move { prometheus.query(&expr).await.map(|s| scope.filter(s)) };
    let read = |record: &str| relayed.read(&rule(record));
    let vouchers_query = vouch::query(&vouch.kubevirt_job, None);
    let (vouchers, resident, cpu, component_overhead, component_budget, overhead, estimate) = tokio::try_join!(
        prometheus.query(&vouchers_query),
        ask(read(rules::PROCESS_RESIDENT)?),
        ask(read(rules::PROCESS_CPU)?),
        ask(read(rules::COMPONENT_OVERHEAD)?),
        ask(read(rules::COMPONENT_BUDGET)?),
        ask(read(rules::OVERHEAD)?),
        ask(read(rules::ESTIMATE)?),
    )?;
    let vouchers = match (Vouchers::from_samples(&vouchers), vouch.allow_unvouched) {
        (Some(vouchers), _) => vouchers,
        (None, true) => Vouchers::Unvouched,
        (None, false) => {
            return Err(NoVouchers {
                job: vouch.kubevirt_job.clone(),
                range: String::new(),
            }
            .into());
        }
    };
    let mut screen = Screen::new(vouchers);
    let raw = Raw {
        resident: screen.samples(resident),
        cpu: screen.samples(cpu),
        component_overhead: screen.samples(component_overhead),
        component_budget: screen.samples(component_budget),
        overhead: screen.samples(overhead),
        estimate: screen.samples(estimate),
    };
    let usage = assemble(&raw);
    if usage.is_empty() {
        let left_out = match screen.tally.total() {
            0 => String::new(),
            n => format!(" ({n} series left out: not vouched for by KubeVirt, or not a number)"),
        };
        match (&scope.namespace, &scope.vm) {
            (ns, Some(vm)) => bail!(
                "Prometheus has no kubevirt_pod_infra_memory_amount_bytes for VM {}{vm}{left_out}: is it injected and scraped? (kubectl kmc check {})",
                ns.as_ref().map(|n| format!("{n}/")).unwrap_or_default(),
                text::shell_quote(vm)
            ),
            (Some(ns), None) => {
                bail!(
                    "Prometheus has no kubevirt_pod_infra_memory_amount_bytes in namespace {ns}{left_out}"
                )
            }
            (None, None) => bail!(
                "Prometheus has no kubevirt_pod_infra_memory_amount_bytes series{left_out}: is the collector installed and scraped?"
            ),
        }
    }
    Ok((usage, screen))
}

/// What to say on stderr about the series left out, and about vouching.
pub fn notes(screen: &Screen) -> Vec<String> {
    let mut notes = Vec::new();
    if !screen.vouched() {
        notes.push(UNVOUCHED.to_owned());
    }
    notes.extend(
        screen
            .tally
            .lines()
            .into_iter()
            .map(|l| format!("note: {l}")),
    );
    notes
}

/// A VM's pod: namespace, VMI name, pod.
type PodKey = (String, String, String);

fn pod_key(sample: &Sample) -> PodKey {
    (
        sample.label("namespace").to_owned(),
        sample.label("name").to_owned(),
        sample.label("pod").to_owned(),
    )
}

/// Per pod, its own values and its roles'.
type Pods = BTreeMap<PodKey, (VmUsage, BTreeMap<String, RoleUsage>)>;

fn pod<'a>(pods: &'a mut Pods, sample: &Sample) -> &'a mut (VmUsage, BTreeMap<String, RoleUsage>) {
    pods.entry(pod_key(sample)).or_default()
}

fn role<'a>(pods: &'a mut Pods, sample: &Sample, name: &str) -> &'a mut RoleUsage {
    pod(pods, sample)
        .1
        .entry(name.to_owned())
        .or_insert_with(|| RoleUsage {
            role: name.to_owned(),
            ..RoleUsage::default()
        })
}

/// Answers to one entry per pod and role. Only pods with resident memory count: a budget alone
/// (a pod whose processes were not read yet) is no usage.
pub fn assemble(raw: &Raw) -> Vec<VmUsage> {
    let mut pods = Pods::new();
    for s in &raw.resident {
        role(&mut pods, s, s.label("process")).resident_bytes = s.value;
    }
    let keys: BTreeSet<PodKey> = pods.keys().cloned().collect();
    let known = |s: &&Sample| keys.contains(&pod_key(s));
    for s in raw.cpu.iter().filter(known) {
        role(&mut pods, s, s.label("process")).cpu_cores = s.value;
    }
    for s in raw.component_overhead.iter().filter(known) {
        role(&mut pods, s, s.label("component")).overhead_bytes = Some(s.value);
    }
    for s in raw.component_budget.iter().filter(known) {
        role(&mut pods, s, s.label("component")).budget_bytes = Some(s.value);
    }
    for s in raw.overhead.iter().filter(known) {
        pod(&mut pods, s).0.overhead_bytes = Some(s.value);
    }
    for s in raw.estimate.iter().filter(known) {
        pod(&mut pods, s).0.estimate_bytes = Some(s.value);
    }
    pods.into_iter()
        .map(|((namespace, vm, pod), (usage, roles))| {
            let roles: Vec<RoleUsage> = roles.into_values().collect();
            VmUsage {
                namespace,
                vm,
                pod,
                cpu_cores: roles.iter().map(|r| r.cpu_cores).sum(),
                resident_bytes: roles.iter().map(|r| r.resident_bytes).sum(),
                roles,
                ..usage
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
        return Ok(text::to_json(&usage)?);
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
            optional(vm.overhead_bytes),
            optional(vm.estimate_bytes),
        ]);
        for role in &vm.roles {
            rows.push(vec![
                vm.namespace.clone(),
                vm.vm.clone(),
                role.role.clone(),
                millicores(role.cpu_cores),
                mebibytes(role.resident_bytes),
                optional(role.overhead_bytes),
                optional(role.budget_bytes),
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
            "OVERHEAD",
            "BUDGET",
        ],
        &rows,
    ))
}

#[cfg(test)]
mod tests;
