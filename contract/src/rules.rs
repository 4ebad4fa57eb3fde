//! The per-VM recording rules: one definition that the PrometheusRule
//! (`manifests/components/monitoring/prometheusrule.yaml`, held to this list by a test) and
//! `kubectl kmc` (which inlines them with [`expand`], so that it needs no recorded history) both
//! use. Reading the fleet any other way would count a pod twice when two targets scrape it.
//!
//! Every raw series is first reduced with `max by (namespace, pod, ...)`: two targets scraping
//! one pod (a native sidecar's port can be selected twice) give the same values under different
//! `instance` labels, and must count once. Every result carries `namespace`, `pod`, `name` (the VMI)
//! and `node`, joined from `kubevirt_pod_infra_pod_info` as on KubeVirt's own `kubevirt_vmi_*`.

/// One recording rule: the series it records and its PromQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recording {
    pub record: &'static str,
    pub expr: &'static str,
}

pub const POD_INFO: &str = "vmi:kubevirt_pod_infra_pod_info:max";
pub const PROCESS_RESIDENT: &str = "vmi_process:kubevirt_pod_infra_memory_resident_bytes:max";
pub const PROCESS_CPU: &str = "vmi_process:kubevirt_pod_infra_cpu_seconds:rate5m";
pub const INFRA_RESIDENT: &str = "vmi:kubevirt_pod_infra_memory_resident_bytes:sum";
pub const INFRA_CPU: &str = "vmi:kubevirt_pod_infra_cpu_seconds:rate5m";
pub const COMPONENT_OVERHEAD: &str = "vmi_component:kubevirt_pod_infra_memory_overhead_bytes:max";
pub const COMPONENT_BUDGET: &str =
    "vmi_component:kubevirt_pod_infra_memory_overhead_budget_bytes:max";
pub const COMPONENT_OVER_BUDGET: &str =
    "vmi_component:kubevirt_pod_infra_memory_over_budget_bytes:max";
pub const COMPONENT_BUDGET_RATIO: &str =
    "vmi_component:kubevirt_pod_infra_memory_overhead_budget:ratio";
pub const OVERHEAD: &str = "vmi:kubevirt_pod_infra_memory_overhead_bytes:sum";
pub const ESTIMATE: &str = "vmi:kubevirt_pod_infra_memory_overhead_estimate_bytes:max";
pub const HEADROOM: &str = "vmi:kubevirt_pod_infra_memory_overhead_headroom_bytes:max";
pub const OVERHEAD_RATIO: &str = "vmi:kubevirt_pod_infra_memory_overhead:ratio";
pub const ALLOWANCE: &str = "vmi:kubevirt_pod_infra_compute_memory_allowance_bytes:max";
pub const ALLOWANCE_USED: &str = "vmi:kubevirt_pod_infra_compute_memory_allowance_used_bytes:max";
pub const ALLOWANCE_RATIO: &str = "vmi:kubevirt_pod_infra_compute_memory_allowance:ratio";

/// Every recording rule of the group `kube-metrics-collector.rules`, in the file's order; a rule
/// reads only raw series and the records above it.
pub const RECORDINGS: [Recording; 16] = [
    Recording {
        record: POD_INFO,
        expr: "max by (namespace, pod, name, node) (kubevirt_pod_infra_pod_info)",
    },
    // Per process role of each VM.
    Recording {
        record: PROCESS_RESIDENT,
        expr: r#"max by (namespace, pod, process) (kubevirt_pod_infra_memory_amount_bytes{type="resident"})
* on (namespace, pod) group_left (name, node) vmi:kubevirt_pod_infra_pod_info:max"#,
    },
    Recording {
        record: PROCESS_CPU,
        expr: r#"sum by (namespace, pod, process) (
  max by (namespace, pod, process, type) (rate(kubevirt_pod_infra_cpu_seconds_total[5m]))
)
* on (namespace, pod) group_left (name, node) vmi:kubevirt_pod_infra_pod_info:max"#,
    },
    // Every process in the pod but QEMU, whose RSS is mostly guest RAM.
    Recording {
        record: INFRA_RESIDENT,
        expr: r#"sum by (namespace, pod) (
  max by (namespace, pod, process) (kubevirt_pod_infra_memory_amount_bytes{type="resident", process!="qemu"})
)
* on (namespace, pod) group_left (name, node) vmi:kubevirt_pod_infra_pod_info:max"#,
    },
    // Every process of the pod but the guest's vCPUs: QEMU's CPU time less its vCPU threads', which
    // also keeps the CPU of QEMU's worker threads that exited. Read from the per-process record
    // above rather than from the raw counters again; a pod without QEMU keeps all of its CPU.
    Recording {
        record: INFRA_CPU,
        expr: r#"sum by (namespace, pod, name, node) (vmi_process:kubevirt_pod_infra_cpu_seconds:rate5m)
- on (namespace, pod) group_left ()
sum by (namespace, pod) (max by (namespace, pod, type) (rate(kubevirt_pod_infra_qemu_thread_cpu_seconds_total{class="vcpu"}[5m])))
or
sum by (namespace, pod, name, node) (vmi_process:kubevirt_pod_infra_cpu_seconds:rate5m)"#,
    },
    // What each process costs the pod's memory cgroup beyond guest RAM (contract::estimate): its
    // resident memory and page tables; QEMU's resident memory outside guest RAM (from smaps, so
    // right under overcommit, on hugepages and before the guest touched its RAM) and its page
    // tables, which hold the guest's.
    Recording {
        record: COMPONENT_OVERHEAD,
        expr: r#"(
  max by (namespace, pod, component) (
    label_replace(
      sum by (namespace, pod, process) (
        max by (namespace, pod, process, type) (kubevirt_pod_infra_memory_amount_bytes{type=~"resident|page_tables", process!="qemu"})
      ),
      "component", "$1", "process", "(.*)"
    )
  )
  or
  label_replace(
      max by (namespace, pod) (kubevirt_pod_infra_qemu_own_memory_bytes)
    + on (namespace, pod)
      max by (namespace, pod) (kubevirt_pod_infra_memory_amount_bytes{type="page_tables", process="qemu"}),
    "component", "qemu", "", ""
  )
)
* on (namespace, pod) group_left (name, node) vmi:kubevirt_pod_infra_pod_info:max"#,
    },
    // KubeVirt's budget for each component, as the collector computed it (contract::estimate).
    Recording {
        record: COMPONENT_BUDGET,
        expr: r#"max by (namespace, pod, component) (kubevirt_pod_infra_memory_overhead_budget_bytes)
* on (namespace, pod) group_left (name, node) vmi:kubevirt_pod_infra_pod_info:max"#,
    },
    // Only the components above their budget: which process, or which constant, is wrong.
    Recording {
        record: COMPONENT_OVER_BUDGET,
        expr: r#"vmi_component:kubevirt_pod_infra_memory_overhead_bytes:max
- vmi_component:kubevirt_pod_infra_memory_overhead_budget_bytes:max
> 0"#,
    },
    // Each component's share of its budget, for the dashboard's fullest components: dividing the two
    // records above at every step of a six-hour graph took seconds at 2,000 VMs, once per 30 s here
    // takes milliseconds.
    Recording {
        record: COMPONENT_BUDGET_RATIO,
        expr: "vmi_component:kubevirt_pod_infra_memory_overhead_bytes:max / vmi_component:kubevirt_pod_infra_memory_overhead_budget_bytes:max",
    },
    // The measured overhead of a VM; absent until QEMU's own memory is known, rather than too low.
    Recording {
        record: OVERHEAD,
        expr: r#"sum by (namespace, pod, name, node) (vmi_component:kubevirt_pod_infra_memory_overhead_bytes:max)
and on (namespace, pod)
max by (namespace, pod) (kubevirt_pod_infra_qemu_own_memory_bytes)"#,
    },
    // KubeVirt's estimate: virt-controller's kubevirt_vmi_launcher_memory_overhead_bytes (KubeVirt
    // v1.3+, labels namespace and name) for every pod of the VMI, else the pod's
    // kubevirt.io/memory-overhead-bytes annotation (v1.9+).
    Recording {
        record: ESTIMATE,
        expr: r#"max by (namespace, name) (kubevirt_vmi_launcher_memory_overhead_bytes)
* on (namespace, name) group_right ()
vmi:kubevirt_pod_infra_pod_info:max
or
max by (namespace, pod) (kubevirt_pod_infra_memory_overhead_estimate_bytes)
* on (namespace, pod) group_left (name, node)
vmi:kubevirt_pod_infra_pod_info:max"#,
    },
    // Positive: the estimate still covers what was measured.
    Recording {
        record: HEADROOM,
        expr: "vmi:kubevirt_pod_infra_memory_overhead_estimate_bytes:max - vmi:kubevirt_pod_infra_memory_overhead_bytes:sum",
    },
    Recording {
        record: OVERHEAD_RATIO,
        expr: "vmi:kubevirt_pod_infra_memory_overhead_bytes:sum / vmi:kubevirt_pod_infra_memory_overhead_estimate_bytes:max",
    },
    // What the compute container's memory limit leaves for everything but guest RAM: the limit
    // minus the guest RAM the memory cgroup charges (the collector's type="guest": hugetlbfs pages
    // are charged elsewhere). KubeVirt sets limit = guest RAM + estimate when it sets one.
    Recording {
        record: ALLOWANCE,
        expr: r#"(
    max by (namespace, pod) (kubevirt_pod_infra_compute_memory_bytes{type="limit"})
  - on (namespace, pod)
    max by (namespace, pod) (kubevirt_pod_infra_compute_memory_bytes{type="guest"})
)
* on (namespace, pod) group_left (name, node) vmi:kubevirt_pod_infra_pod_info:max"#,
    },
    // How much of it is used: the container's working set without the guest RAM in it. Guest RAM
    // in QEMU's RSS is QEMU's RSS (read at every scrape) minus its own memory (read from smaps,
    // minutes apart, but it moves slowly): a guest touching its RAM moves both sides alike.
    Recording {
        record: ALLOWANCE_USED,
        expr: r#"(
    max by (namespace, pod) (container_memory_working_set_bytes{container="compute"})
  - on (namespace, pod)
    max by (namespace, pod) (kubevirt_pod_infra_memory_amount_bytes{type="resident", process="qemu"})
  + on (namespace, pod)
    max by (namespace, pod) (kubevirt_pod_infra_qemu_own_memory_bytes)
)
* on (namespace, pod) group_left (name, node) vmi:kubevirt_pod_infra_pod_info:max"#,
    },
    Recording {
        record: ALLOWANCE_RATIO,
        expr: "vmi:kubevirt_pod_infra_compute_memory_allowance_used_bytes:max / vmi:kubevirt_pod_infra_compute_memory_allowance_bytes:max",
    },
];

/// The group of [`RECORDINGS`], evaluated at Prometheus' own interval.
pub const GROUP: &str = "kube-metrics-collector.rules";

/// The group that records [`TRENDS`] and alerts on them (`KubevirtInfraProcessMemoryGrowing`),
/// every [`TRENDS_INTERVAL`]. Reading a day of raw series sampled every 30 s at every evaluation
/// was the costliest rule of all; a day of a 5-minute average holds a tenth of the samples and is
/// read a tenth as often (docs/metrics.md, "What the rules cost").
pub const TRENDS_GROUP: &str = "kube-metrics-collector.trends";
/// The evaluation interval of [`TRENDS_GROUP`], as the PrometheusRule spells it.
pub const TRENDS_INTERVAL: &str = "5m";
pub const COMPONENT_RESIDENT_TREND: &str =
    "vmi_component:kubevirt_pod_infra_memory_resident_bytes:avg5m";

/// Every recording rule of [`TRENDS_GROUP`], in the file's order; they read raw series and
/// [`RECORDINGS`].
pub const TRENDS: [Recording; 1] = [
    // What each process holds, averaged over the group's interval: the resident memory of each
    // process but QEMU, and QEMU's own memory (its RSS less guest RAM, which a guest grows at
    // will). Page tables are left out: QEMU's hold the guest's, which grow as the guest touches
    // its RAM and are no leak.
    Recording {
        record: COMPONENT_RESIDENT_TREND,
        expr: r#"sum by (namespace, pod, component) (
    label_replace(
      max by (namespace, pod, process) (avg_over_time(kubevirt_pod_infra_memory_amount_bytes{type="resident", process!="qemu"}[5m])),
      "component", "$1", "process", "(.*)"
    )
  or
    label_replace(max by (namespace, pod) (avg_over_time(kubevirt_pod_infra_qemu_own_memory_bytes[5m])), "component", "qemu", "", "")
)
* on (namespace, pod) group_left (name, node) vmi:kubevirt_pod_infra_pod_info:max"#,
    },
];

/// Every recording rule of both groups.
fn all() -> impl Iterator<Item = &'static Recording> {
    RECORDINGS.iter().chain(TRENDS.iter())
}

/// The recording rule of `record`.
fn recording(record: &str) -> Option<&'static Recording> {
    all().find(|r| r.record == record)
}

/// `record`'s PromQL with every record it reads replaced by that record's PromQL in parentheses,
/// recursively, so that it can be evaluated over raw history where the rule never ran. `None` for
/// an unknown record. Records are read bare, never with a selector: `(expr){...}` is not PromQL
/// (a test holds the rules to this).
pub fn expand(record: &str) -> Option<String> {
    recording(record).map(|rule| inline(rule.expr))
}

fn inline(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some((at, rule)) = next_record(rest) {
        out.push_str(&rest[..at]);
        out.push('(');
        out.push_str(&inline(rule.expr));
        out.push(')');
        rest = &rest[at + rule.record.len()..];
    }
    out.push_str(rest);
    out
}

/// The first record named in `expr` as a whole word, and where.
fn next_record(expr: &str) -> Option<(usize, &'static Recording)> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    all()
        .filter_map(|rule| {
            expr.match_indices(rule.record)
                .find(|(at, _)| {
                    let before = expr[..*at].chars().next_back().is_some_and(word);
                    let after = expr[at + rule.record.len()..]
                        .chars()
                        .next()
                        .is_some_and(word);
                    !before && !after
                })
                .map(|(at, _)| (at, rule))
        })
        .min_by_key(|(at, _)| *at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_unique_and_read_only_records_above_them_and_bare() {
        for (i, rule) in RECORDINGS.iter().enumerate() {
            assert!(
                RECORDINGS[..i].iter().all(|r| r.record != rule.record),
                "{} twice",
                rule.record
            );
            let mut rest = rule.expr;
            while let Some((at, used)) = next_record(rest) {
                let position = RECORDINGS.iter().position(|r| r.record == used.record);
                assert!(
                    position < Some(i),
                    "{} reads {} below it",
                    rule.record,
                    used.record
                );
                rest = &rest[at + used.record.len()..];
                assert!(
                    !rest.starts_with(['{', '[']),
                    "{} reads {} with a selector or range",
                    rule.record,
                    used.record
                );
            }
        }
    }

    #[test]
    fn trends_are_unique_and_read_raw_series_and_records_bare() {
        for (i, rule) in TRENDS.iter().enumerate() {
            assert!(
                all().filter(|r| r.record == rule.record).count() == 1
                    && TRENDS[..i].iter().all(|r| r.record != rule.record),
                "{} twice",
                rule.record
            );
            let mut rest = rule.expr;
            while let Some((at, used)) = next_record(rest) {
                assert!(
                    RECORDINGS.iter().any(|r| r.record == used.record),
                    "{} reads {}, no record of {GROUP}",
                    rule.record,
                    used.record
                );
                rest = &rest[at + used.record.len()..];
                assert!(!rest.starts_with(['{', '[']), "{}", rule.record);
            }
        }
    }

    #[test]
    fn expand_inlines_every_record_down_to_raw_series() {
        for rule in all() {
            let expanded = expand(rule.record).unwrap_or_default();
            assert_eq!(next_record(&expanded), None, "{}: {expanded}", rule.record);
            assert_eq!(
                expanded.matches('(').count(),
                expanded.matches(')').count(),
                "{}",
                rule.record
            );
        }
        assert_eq!(
            expand(POD_INFO).as_deref(),
            Some("max by (namespace, pod, name, node) (kubevirt_pod_infra_pod_info)")
        );
        let headroom = expand(HEADROOM).unwrap_or_default();
        assert!(headroom.starts_with(
            "(max by (namespace, name) (kubevirt_vmi_launcher_memory_overhead_bytes)"
        ));
        assert!(headroom.contains(") - (sum by (namespace, pod, name, node) (("));
        assert_eq!(expand("vmi:unknown:max"), None);
    }

    #[test]
    fn a_record_inside_a_longer_name_is_not_inlined() {
        assert_eq!(
            next_record("vmi:kubevirt_pod_infra_pod_info:max_total"),
            None
        );
        assert_eq!(next_record("x_vmi:kubevirt_pod_infra_pod_info:max"), None);
        assert_eq!(
            next_record("a + vmi:kubevirt_pod_infra_pod_info:max").map(|(at, r)| (at, r.record)),
            Some((4, POD_INFO))
        );
    }
}
