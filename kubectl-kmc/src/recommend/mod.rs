//! `kubectl kmc recommend`: each VM's history from Prometheus (I/O here), the math in [`math`],
//! the table and the patches in [`render`].

pub mod math;
pub mod release;
pub mod render;

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use crate::prom::{Prometheus, Sample, quote};
use crate::units::promql_duration;
use math::{EstimateSource, Settings, VmHistory};

type VmKey = (String, String);

/// The PromQL of one fetch; `m` is the selector's extra matchers, `r` the range, `s` the step.
struct Queries {
    m: String,
    r: String,
    s: String,
}

impl Queries {
    /// A selector's braces: `fixed` matchers, then the namespace's.
    fn sel(&self, fixed: &str) -> String {
        let parts: Vec<&str> = [fixed, self.m.trim_start_matches(',')]
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect();
        format!("{{{}}}", parts.join(","))
    }

    /// Measured overhead of each pod at each step, its peak per pod, then per VM.
    fn peak(&self) -> String {
        let by = "namespace, pod, domain";
        format!(
            "max by (namespace, domain) (max_over_time((\
             sum by ({by}) (kubevirt_pod_infra_memory_amount_bytes{res})\
             + sum by ({by}) (kubevirt_pod_infra_qemu_own_memory_bytes{all})\
             + sum by ({by}) (kubevirt_pod_infra_memory_amount_bytes{pt})\
             )[{r}:{s}]))",
            res = self.sel("type=\"resident\",process!=\"qemu\""),
            all = self.sel(""),
            pt = self.sel("type=\"page_tables\""),
            r = self.r,
            s = self.s,
        )
    }

    fn span(&self) -> String {
        let own = format!("kubevirt_pod_infra_qemu_own_memory_bytes{}", self.sel(""));
        format!(
            "max by (namespace, domain) (max_over_time(timestamp({own})[{r}:{s}])) \
             - min by (namespace, domain) (min_over_time(timestamp({own})[{r}:{s}]))",
            r = self.r,
            s = self.s
        )
    }
}

/// Every VM with collector series in the range.
pub async fn fetch(
    prometheus: &Prometheus,
    namespace: Option<&str>,
    settings: &Settings,
) -> Result<Vec<VmHistory>> {
    let q = Queries {
        m: namespace
            .map(|ns| format!(",namespace={}", quote(ns)))
            .unwrap_or_default(),
        r: promql_duration(settings.range),
        s: promql_duration(settings.resolution),
    };
    let r = &q.r;
    let known = prometheus
        .query(&format!(
            "group by (namespace, domain) (max_over_time(kubevirt_pod_infra_memory_amount_bytes{}[{r}]))",
            q.sel("type=\"resident\",process=\"qemu\"")
        ))
        .await?;
    if known.is_empty() {
        bail!(
            "Prometheus has no kubevirt_pod_infra_memory_amount_bytes{{process=\"qemu\"}} in the last {r}: is the collector installed and scraped?"
        );
    }
    let by_vm = |s: &Sample| {
        (
            s.label("namespace").to_owned(),
            s.label("domain").to_owned(),
        )
    };
    let by_vmi = |s: &Sample| (s.label("namespace").to_owned(), s.label("name").to_owned());
    let mut fleet: BTreeMap<VmKey, VmHistory> = known
        .iter()
        .map(|s| {
            let (namespace, vm) = by_vm(s);
            (
                (namespace.clone(), vm.clone()),
                VmHistory {
                    namespace,
                    vm,
                    ..VmHistory::default()
                },
            )
        })
        .collect();
    let kubevirt_ns = namespace
        .map(|ns| format!(",namespace={}", quote(ns)))
        .unwrap_or_default();
    for s in prometheus.query(&q.peak()).await? {
        with(&mut fleet, by_vm(&s), |v| v.peak = Some(s.value));
    }
    for s in prometheus.query(&q.span()).await? {
        with(&mut fleet, by_vm(&s), |v| v.span_seconds = s.value);
    }
    let pod_estimates = format!(
        "min by (namespace, domain) (min_over_time(kubevirt_pod_infra_memory_overhead_estimate_bytes{}[{r}]))",
        q.sel("")
    );
    let kubevirt_estimates = format!(
        "min by (namespace, name) (min_over_time(kubevirt_vmi_launcher_memory_overhead_bytes{{name!=\"\"{kubevirt_ns}}}[{r}]))"
    );
    for s in prometheus.query(&kubevirt_estimates).await? {
        with(&mut fleet, by_vmi(&s), |v| {
            v.estimate = Some((s.value, EstimateSource::KubeVirt))
        });
    }
    // The pod's own annotation wins over KubeVirt's metric: it is the pod that was created.
    for s in prometheus.query(&pod_estimates).await? {
        with(&mut fleet, by_vm(&s), |v| {
            v.estimate = Some((s.value, EstimateSource::Pod))
        });
    }
    fetch_shapes(prometheus, &q, &kubevirt_ns, &mut fleet).await?;
    fetch_roles(prometheus, &q, &mut fleet).await?;
    Ok(fleet.into_values().collect())
}

async fn fetch_shapes(
    prometheus: &Prometheus,
    q: &Queries,
    kubevirt_ns: &str,
    fleet: &mut BTreeMap<VmKey, VmHistory>,
) -> Result<()> {
    let r = &q.r;
    let guest = format!(
        "max by (namespace, domain) (last_over_time(kubevirt_pod_infra_guest_memory_bytes{}[{r}]))",
        q.sel("type=\"size\"")
    );
    for s in prometheus.query(&guest).await? {
        let key = (
            s.label("namespace").to_owned(),
            s.label("domain").to_owned(),
        );
        with(fleet, key, |v| v.guest_memory = Some(s.value));
    }
    let vcpus = format!(
        "count by (namespace, name) (group by (namespace, name, id) (last_over_time(kubevirt_vmi_vcpu_seconds_total{{name!=\"\"{kubevirt_ns}}}[{r}])))"
    );
    for s in prometheus.query(&vcpus).await? {
        let key = (s.label("namespace").to_owned(), s.label("name").to_owned());
        with(fleet, key, |v| v.vcpus = Some(s.value as u32));
    }
    let instancetypes = format!(
        "group by (namespace, name, instance_type) (last_over_time(kubevirt_vmi_info{{instance_type!=\"\",instance_type!=\"<none>\"{kubevirt_ns}}}[{r}]))"
    );
    for s in prometheus.query(&instancetypes).await? {
        let key = (s.label("namespace").to_owned(), s.label("name").to_owned());
        with(fleet, key, |v| {
            v.instancetype = Some(s.label("instance_type").to_owned())
        });
    }
    Ok(())
}

async fn fetch_roles(
    prometheus: &Prometheus,
    q: &Queries,
    fleet: &mut BTreeMap<VmKey, VmHistory>,
) -> Result<()> {
    let (r, st) = (&q.r, &q.s);
    let roles = format!(
        "max by (namespace, domain, process) (max_over_time(kubevirt_pod_infra_memory_amount_bytes{}[{r}]))",
        q.sel("type=\"resident\",process!=\"qemu\"")
    );
    let qemu = format!(
        "max by (namespace, domain) (max_over_time(kubevirt_pod_infra_qemu_own_memory_bytes{}[{r}]))",
        q.sel("")
    );
    let page_tables = format!(
        "max by (namespace, domain) (max_over_time((sum by (namespace, pod, domain) (kubevirt_pod_infra_memory_amount_bytes{}))[{r}:{st}]))",
        q.sel("type=\"page_tables\"")
    );
    for s in prometheus.query(&roles).await? {
        let key = (
            s.label("namespace").to_owned(),
            s.label("domain").to_owned(),
        );
        let role = s.label("process").to_owned();
        with(fleet, key, |v| {
            v.role_peaks.insert(role, s.value);
        });
    }
    for s in prometheus.query(&qemu).await? {
        let key = (
            s.label("namespace").to_owned(),
            s.label("domain").to_owned(),
        );
        with(fleet, key, |v| {
            v.role_peaks.insert("qemu".into(), s.value);
        });
    }
    for s in prometheus.query(&page_tables).await? {
        let key = (
            s.label("namespace").to_owned(),
            s.label("domain").to_owned(),
        );
        with(fleet, key, |v| v.page_tables_peak = Some(s.value));
    }
    Ok(())
}

/// Applies `f` to a VM the collector knows; series of other VMs (KubeVirt's) are ignored.
fn with(fleet: &mut BTreeMap<VmKey, VmHistory>, key: VmKey, f: impl FnOnce(&mut VmHistory)) {
    if let Some(vm) = fleet.get_mut(&key) {
        f(vm);
    }
}
