//! The fleet as the recording rules define it (`kube_metrics_contract::rules`): `top`, `recommend`
//! and `check` read every per-VM value through [`rule`], the rule's PromQL inlined over raw
//! history, so that they need no recorded history and agree with the PrometheusRule: a pod that two
//! targets scrape counts once, and a VM is `(namespace, name)`, the VMI's name that
//! `kubevirt_pod_infra_pod_info` carries and every rule keeps, not the collector's `domain`.
//!
//! A namespace or a VM is chosen by the answers' labels ([`Scope`]), not in PromQL: an expression
//! takes no label matcher, and a join with a filtered series (`and on (namespace) …`) is evaluated
//! at the query's instant, where it drops a VM whose pods ended earlier in a range, or at every step
//! of a subquery, where it costs a join per step; Prometheus evaluates the whole expression either
//! way, since it does not push a join's filter down into the selectors. Every answer carries
//! `namespace` and `name`, so filtering them here is exact and costs Prometheus nothing more. No I/O.

use kube_metrics_contract::{rules, user_workload};

use crate::prom::Sample;

/// Where the manifests install the add-on, and so its relay.
pub const INSTALL_NAMESPACE: &str = "kube-metrics-collector";

/// How Prometheus stores the series the node relay forwards.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Relayed {
    /// With the launcher pod's `namespace` and `pod`, as the relay labels them (`honorLabels`).
    #[default]
    Labelled,
    /// As OpenShift's user-workload monitoring keeps them: the relay's own `namespace` and `pod`,
    /// the launcher pod's in `exported_namespace`/`exported_pod`
    /// (`kube_metrics_contract::user_workload`).
    Exported { install_namespace: String },
}

// === impl Relayed ===

impl Relayed {
    /// `expr` reading the collector's families where this route puts them.
    pub fn read(&self, expr: &str) -> Result<String, user_workload::RewriteError> {
        match self {
            Self::Labelled => Ok(expr.to_owned()),
            Self::Exported { install_namespace } => user_workload::rewrite(expr, install_namespace),
        }
    }
}

/// What to add to Prometheus' refusal `error` of a fleet query: relayed series stored as
/// user-workload monitoring stores them, read without `--user-workload-monitoring`, make two VMs of
/// one node one pod of the relay with two names, and every join on the pod's info fails.
pub fn hint(error: &str, relayed: &Relayed) -> Option<&'static str> {
    (*relayed == Relayed::Labelled && error.contains("many-to-many matching not allowed")).then_some(
        "on OpenShift's user-workload monitoring, where relayed VMs share the relay's namespace and pod, pass --user-workload-monitoring",
    )
}

/// A VM: its namespace and its VMI's name.
pub type VmKey = (String, String);

/// Which VMs a command looks at: all, a namespace's, or one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    pub namespace: Option<String>,
    /// The VMI's name (the `name` label).
    pub vm: Option<String>,
}

// === impl Scope ===

impl Scope {
    /// Whether an answer's `namespace` and `name` labels are in scope. An answer without `name`
    /// (a series of the whole namespace) is kept when the namespace is.
    pub fn keeps(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        let label = |name: &str| labels.get(name).map(String::as_str);
        let namespace = self
            .namespace
            .as_deref()
            .is_none_or(|ns| label("namespace") == Some(ns));
        let vm = self
            .vm
            .as_deref()
            .is_none_or(|vm| label("name").is_none_or(|name| name == vm));
        namespace && vm
    }

    /// The samples in scope.
    pub fn filter(&self, samples: Vec<Sample>) -> Vec<Sample> {
        samples
            .into_iter()
            .filter(|s| self.keeps(&s.labels))
            .collect()
    }
}

/// The VM of a sample that carries the rules' labels.
pub fn vm_key(sample: &Sample) -> VmKey {
    (
        sample.label("namespace").to_owned(),
        sample.label("name").to_owned(),
    )
}

/// `record`'s PromQL over raw series, in parentheses so that it can take an operator, a range or
/// a function. Every record this crate names is the contract's (a test holds it); were one not,
/// its recorded series would still be the right answer where the PrometheusRule is installed.
pub fn rule(record: &str) -> String {
    let expr = rules::expand(record).unwrap_or_else(|| record.to_owned());
    format!("({expr})")
}

/// `record` at every `step` over the last `range` (both in PromQL's duration syntax): a subquery.
pub fn over(record: &str, range: &str, step: &str) -> String {
    format!("{}[{range}:{step}]", rule(record))
}

/// A raw per-pod series that has no rule of its own, reduced and labelled as the rules reduce
/// theirs: `max by (namespace, pod)` first, then the VMI's `name` and `node` from the pod's info.
pub fn per_pod(selector: &str) -> String {
    format!(
        "(max by (namespace, pod) ({selector}) * on (namespace, pod) group_left (name, node) {})",
        rule(rules::POD_INFO)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn every_record_this_crate_reads_is_the_contracts() {
        for record in [
            rules::POD_INFO,
            rules::PROCESS_RESIDENT,
            rules::PROCESS_CPU,
            rules::COMPONENT_OVERHEAD,
            rules::COMPONENT_BUDGET,
            rules::COMPONENT_OVER_BUDGET,
            rules::OVERHEAD,
            rules::ESTIMATE,
            rules::ALLOWANCE,
        ] {
            let expr = rule(record);
            assert!(
                rules::expand(record).is_some() && !expr.contains(":max") && !expr.contains(":sum"),
                "{record}: {expr}"
            );
        }
        assert_eq!(rule("vmi:unknown:max"), "(vmi:unknown:max)");
    }

    #[test]
    fn subqueries_and_per_pod_series_read_raw_history() {
        assert_eq!(
            over(rules::POD_INFO, "7d", "1m"),
            "(max by (namespace, pod, name, node) (kubevirt_pod_infra_pod_info))[7d:1m]"
        );
        assert_eq!(
            per_pod("x{type=\"size\"}"),
            "(max by (namespace, pod) (x{type=\"size\"}) * on (namespace, pod) group_left (name, node) (max by (namespace, pod, name, node) (kubevirt_pod_infra_pod_info)))"
        );
    }

    #[test]
    fn relayed_series_are_read_where_the_route_puts_them() {
        let expr = per_pod("kubevirt_pod_infra_qemu_own_memory_bytes");
        assert_eq!(Relayed::Labelled.read(&expr).as_deref(), Ok(expr.as_str()));
        let exported = Relayed::Exported {
            install_namespace: "kmc".to_owned(),
        }
        .read(&expr)
        .unwrap_or_default();
        // The raw read and the pod info's, each in both halves.
        assert_eq!(
            exported.matches(r#"namespace!="kmc""#).count(),
            2,
            "{exported}"
        );
        assert_eq!(
            exported.matches(r#"namespace="kmc""#).count(),
            2,
            "{exported}"
        );
        assert!(
            Relayed::Exported {
                install_namespace: "kmc".to_owned()
            }
            .read(r#"kubevirt_pod_infra_memory_amount_bytes{type="resident"}[5m]"#)
            .is_err()
        );
    }

    #[test]
    fn a_many_to_many_refusal_without_the_flag_suggests_it() {
        let refusal = "422 Unprocessable Entity found duplicate series for the match group {namespace=\"kube-metrics-collector\", pod=\"relay\"} on the right hand-side of the operation: [...];many-to-many matching not allowed: matching labels must be unique on one side";
        let exported = Relayed::Exported {
            install_namespace: INSTALL_NAMESPACE.to_owned(),
        };
        assert!(
            hint(refusal, &Relayed::Labelled)
                .is_some_and(|h| h.contains("--user-workload-monitoring"))
        );
        assert_eq!(hint(refusal, &exported), None);
        assert_eq!(hint("connection refused", &Relayed::Labelled), None);
    }

    #[test]
    fn scopes_keep_their_namespace_and_vm() {
        let vm = labels(&[("namespace", "a"), ("name", "vm1"), ("pod", "p")]);
        let whole_namespace = labels(&[("namespace", "a")]);
        let other = labels(&[("namespace", "b"), ("name", "vm1")]);
        let scope = |ns: Option<&str>, vm: Option<&str>| Scope {
            namespace: ns.map(str::to_owned),
            vm: vm.map(str::to_owned),
        };
        let cases = [
            (scope(None, None), [true, true, true]),
            (scope(Some("a"), None), [true, true, false]),
            (scope(Some("a"), Some("vm1")), [true, true, false]),
            (scope(Some("a"), Some("vm2")), [false, true, false]),
            (scope(None, Some("vm1")), [true, true, true]),
        ];
        for (scope, want) in cases {
            let got = [&vm, &whole_namespace, &other].map(|l| scope.keeps(l));
            assert_eq!(got, want, "{scope:?}");
        }
    }
}
