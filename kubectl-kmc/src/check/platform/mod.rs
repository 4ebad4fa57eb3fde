//! The rest of the path a VM's series take, and what the cluster changes about it: the node
//! agents' DaemonSets, who manages KubeVirt, and on OpenShift the relay's SCC and user-workload
//! monitoring (docs/openshift.md). Facts are read in [`read`]; the lines here are pure.

pub mod read;

use std::collections::BTreeMap;

use super::facts::Namespace;
use super::line::{Line, Section};
use crate::recommend::target;
use crate::text::shell_quote;

/// The relay's DaemonSet, ServiceAccount and SCC share this name (manifests/base, manifests/components/openshift).
pub const RELAY: &str = "kube-metrics-collector-relay";
/// The opt-in node collector's DaemonSet (manifests/components/node-collector).
pub const NODE_COLLECTOR: &str = "kube-metrics-collector-node";
/// The namespace label with which OpenShift's user-workload monitoring leaves a namespace out.
pub const USER_MONITORING_LABEL: &str = "openshift.io/user-monitoring";
/// The pod annotation in which OpenShift records the SCC that admitted the pod.
pub const SCC_ANNOTATION: &str = "openshift.io/scc";

/// A read that may not have happened: `Err` says why (forbidden, not served).
pub type Read<T> = Result<T, String>;

/// Everything beyond the webhook and the VM.
#[derive(Clone, Debug)]
pub struct Facts {
    /// Where the add-on runs: the webhook Service's namespace.
    pub install_namespace: String,
    pub relay: Read<Option<DaemonSet>>,
    pub node_collector: Read<Option<DaemonSet>>,
    pub kubevirt: target::Facts,
    /// `Ok(None)`: not OpenShift (the API serves no `security.openshift.io`).
    pub openshift: Read<Option<OpenShift>>,
}

impl Default for Facts {
    fn default() -> Self {
        Self {
            install_namespace: String::new(),
            relay: Ok(None),
            node_collector: Ok(None),
            kubevirt: target::Facts::unread("not read"),
            openshift: Ok(None),
        }
    }
}

/// A DaemonSet's rollout and the SCCs its pods were admitted under.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DaemonSet {
    pub desired: i32,
    pub ready: i32,
    /// `openshift.io/scc` of each pod, counted; pods without it are not counted.
    pub sccs: BTreeMap<String, usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenShift {
    /// `enableUserWorkload` of openshift-monitoring/cluster-monitoring-config.
    pub user_workload: Read<bool>,
    /// The relay's SecurityContextConstraints exists.
    pub relay_scc: Read<bool>,
    /// The install namespace's labels.
    pub install_labels: Read<BTreeMap<String, String>>,
}

/// The node agents', KubeVirt's and, on OpenShift, OpenShift's sections; `reading` is whether the
/// Prometheus lines read relayed series as user-workload monitoring stores them (`None`: they read
/// none).
pub fn sections(facts: &Facts, vm_namespace: &Namespace, reading: Option<bool>) -> Vec<Section> {
    let mut agents = vec![relay_line(facts)];
    if let Ok(Some(node)) = &facts.node_collector {
        agents.push(rollout_line(&facts.install_namespace, NODE_COLLECTOR, node));
    }
    let mut sections = vec![
        Section {
            title: "node agents".into(),
            lines: agents,
        },
        Section {
            title: "KubeVirt".into(),
            lines: kubevirt_lines(&facts.kubevirt),
        },
    ];
    match &facts.openshift {
        Ok(None) => {}
        Ok(Some(openshift)) => sections.push(Section {
            title: "OpenShift".into(),
            lines: openshift_lines(facts, openshift, vm_namespace, reading),
        }),
        Err(why) => sections.push(Section {
            title: "OpenShift".into(),
            lines: vec![Line::not_checked("whether this is OpenShift", why.clone())],
        }),
    }
    sections
}

fn relay_line(facts: &Facts) -> Line {
    let ns = &facts.install_namespace;
    match &facts.relay {
        Ok(Some(relay)) => rollout_line(ns, RELAY, relay),
        Ok(None) => Line::fail(
            format!("DaemonSet {ns}/{RELAY} exists"),
            vec![
                "without it, VMs whose pod network belongs to the guest (passt, bridge, the usual case) are not scraped".into(),
                "fix: kubectl apply the manifests of your variant again".into(),
            ],
        ),
        Err(why) => Line::not_checked(format!("DaemonSet {ns}/{RELAY}"), why.clone()),
    }
}

fn rollout_line(ns: &str, name: &str, daemon_set: &DaemonSet) -> Line {
    let text = format!(
        "DaemonSet {ns}/{name} ready on {} of {} node(s)",
        daemon_set.ready, daemon_set.desired
    );
    if daemon_set.desired > 0 && daemon_set.ready >= daemon_set.desired {
        return Line::pass(text);
    }
    Line::fail(
        text,
        vec![
            "VMs on a node without a ready pod of it are not scraped".into(),
            format!(
                "fix: kubectl -n {} describe daemonset {name}; kubectl -n {} get events --field-selector involvedObject.name={name}",
                shell_quote(ns),
                shell_quote(ns)
            ),
        ],
    )
}

fn kubevirt_lines(facts: &target::Facts) -> Vec<Line> {
    let kubevirt = match &facts.kubevirt {
        Ok(kubevirt) => Line::pass(format!("KubeVirt CR {}", kubevirt.object)),
        Err(why) => return vec![Line::not_checked("the KubeVirt CR", why.clone())],
    };
    let manager = match &facts.hyperconverged {
        Ok(hco) => Line::pass(format!("managed by HyperConverged {}", hco.object)).with(
            "change KubeVirt's settings through the HyperConverged CR: it reverts a patch of the KubeVirt CR (kubectl kmc recommend prints the form it accepts)",
        ),
        Err(why) => Line::pass("not managed by HyperConverged").with(why.clone()),
    };
    vec![kubevirt, manager]
}

fn openshift_lines(
    facts: &Facts,
    openshift: &OpenShift,
    vm_namespace: &Namespace,
    reading: Option<bool>,
) -> Vec<Line> {
    let monitoring = "user-workload monitoring is enabled";
    let mut lines = vec![match openshift.user_workload {
        Ok(true) => Line::pass(monitoring),
        Ok(false) => Line::fail(
            monitoring,
            vec![
                "the add-on's PodMonitors and rules are user-workload monitoring's: without it no VM's series are scraped (docs/openshift.md)".into(),
                "fix: set enableUserWorkload: true in config.yaml of ConfigMap openshift-monitoring/cluster-monitoring-config".into(),
            ],
        ),
        Err(ref why) => Line::not_checked(monitoring, why.clone()),
    }];
    lines.push(user_monitoring_line(
        &facts.install_namespace,
        openshift.install_labels.as_ref(),
    ));
    if vm_namespace.name != facts.install_namespace
        && let Some(labels) = &vm_namespace.labels
    {
        lines.push(user_monitoring_line(&vm_namespace.name, Ok(labels)));
    }
    let scc = format!("SecurityContextConstraints {RELAY} exists");
    lines.push(match openshift.relay_scc {
        Ok(true) => Line::pass(scc),
        Ok(false) => Line::fail(
            scc,
            vec![
                "the relay's pods cannot be admitted without it (hostPath, UID 65533)".into(),
                "fix: kubectl apply the openshift overlay's manifests again".into(),
            ],
        ),
        Err(ref why) => Line::not_checked(scc, why.clone()),
    });
    if let Ok(Some(relay)) = &facts.relay {
        lines.push(scc_line(relay));
    }
    let exported = "relayed VMs' series are read as user-workload monitoring stores them";
    match reading {
        None => {}
        Some(true) => lines.push(Line::pass(exported)),
        Some(false) => lines.push(Line::fail(
            exported,
            vec![
                "user-workload monitoring keeps a relayed VM's namespace and pod in exported_namespace and exported_pod: read as they are, relayed VMs look missing (docs/openshift.md)".into(),
                "fix: run check again with --user-workload-monitoring".into(),
            ],
        )),
    }
    lines
}

/// A namespace that `openshift.io/user-monitoring=false` leaves out of user-workload monitoring.
fn user_monitoring_line(ns: &str, labels: Result<&BTreeMap<String, String>, &String>) -> Line {
    let text = format!("namespace {ns} is scraped by user-workload monitoring");
    let labels = match labels {
        Ok(labels) => labels,
        Err(why) => return Line::not_checked(text, why.clone()),
    };
    match labels.get(USER_MONITORING_LABEL).map(String::as_str) {
        Some("false") => Line::fail(
            text,
            vec![
                format!("it is labelled {USER_MONITORING_LABEL}=false"),
                format!(
                    "fix: kubectl label namespace {} {USER_MONITORING_LABEL}-",
                    shell_quote(ns)
                ),
            ],
        ),
        _ => Line::pass(text),
    }
}

fn scc_line(relay: &DaemonSet) -> Line {
    let text = format!("the relay's pods run under SCC {RELAY}");
    let others: Vec<String> = relay
        .sccs
        .iter()
        .filter(|(scc, _)| scc.as_str() != RELAY)
        .map(|(scc, n)| format!("{n} under {scc}"))
        .collect();
    if others.is_empty() {
        return Line::pass(text);
    }
    Line::fail(
        text,
        vec![
            format!(
                "{}: its ServiceAccount may use a broader SCC, which OpenShift prefers",
                others.join(", ")
            ),
            format!(
                "fix: remove the grant of that SCC to ServiceAccount {RELAY} and delete the relay's pods"
            ),
        ],
    )
}

#[cfg(test)]
mod tests;
