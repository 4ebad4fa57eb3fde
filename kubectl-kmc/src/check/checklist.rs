//! Facts about the cluster to checklist lines; no I/O. The facts hold text from the cluster
//! (annotations a tenant wrote, names): [`super::render`] escapes every line, and a name in a printed
//! command is shell-quoted.

use super::facts::{Endpoints, Namespace, Pod, Probe, Vm, Webhook};
use super::line::{Line, Outcome, Section};
use super::{advice, platform};
use crate::text::shell_quote;

pub use kube_metrics_contract::pod::{
    COVERAGE as COVERAGE_ANNOTATION, COVERAGE_NODE_COLLECTOR, INJECT as INJECT_LABEL,
    REASON as REASON_ANNOTATION, REASON_SOURCE as SOURCE_ANNOTATION, SCRAPE as SCRAPE_LABEL,
    STATUS as STATUS_ANNOTATION,
};

/// Everything `check` looked at, as plain data.
#[derive(Clone, Debug)]
pub struct Facts {
    /// The MutatingWebhookConfiguration's name, as asked for.
    pub webhook_name: String,
    /// `None`: it does not exist.
    pub webhook: Option<Webhook>,
    /// Ready endpoints of the webhook's Service; `None` when the configuration names no Service.
    pub endpoints: Option<Endpoints>,
    pub namespace: Namespace,
    pub vm: Option<Vm>,
    /// The launcher pods whose series Prometheus has.
    pub series: Probe,
    /// The add-on's node agents, KubeVirt and OpenShift.
    pub platform: platform::Facts,
    /// Relayed series are read as user-workload monitoring stores them (`--user-workload-monitoring`).
    pub relayed_exported: bool,
}

/// The whole checklist, in order.
pub fn checklist(facts: &Facts) -> Vec<Section> {
    let mut sections = vec![
        Section {
            title: "kube-metrics-webhook".into(),
            lines: webhook_lines(facts),
        },
        Section {
            title: format!("namespace {}", facts.namespace.name),
            lines: vec![namespace_line(facts)],
        },
    ];
    // Which relayed series the Prometheus lines read matters only when they read any.
    let reading = match facts.series {
        Probe::NotAsked(_) => None,
        _ => Some(facts.relayed_exported),
    };
    sections.extend(platform::sections(
        &facts.platform,
        &facts.namespace,
        reading,
    ));
    sections.push(Section {
        title: "Prometheus".into(),
        lines: vec![prometheus_line(facts)],
    });
    if let Some(vm) = &facts.vm {
        sections.push(Section {
            title: format!("VM {}/{}", facts.namespace.name, vm.name),
            lines: vm_lines(&facts.namespace.name, vm, &facts.series),
        });
    }
    sections
}

fn webhook_lines(facts: &Facts) -> Vec<Line> {
    let name = &facts.webhook_name;
    let Some(webhook) = &facts.webhook else {
        return vec![Line::fail(
            format!("MutatingWebhookConfiguration {name} exists"),
            vec![
                "it is not installed: nothing injects the collector".into(),
                "fix: kubectl apply -k manifests/ (or the overlay you use)".into(),
            ],
        )];
    };
    let mut lines = vec![Line::pass(format!(
        "MutatingWebhookConfiguration {name} exists"
    ))];
    lines.push(if webhook.ca_bundle_set {
        Line::pass("its caBundle is set")
    } else {
        Line::fail(
            "its caBundle is set",
            vec![
                "caBundle is empty: the API server cannot verify the webhook and, with failurePolicy Ignore, admits every pod without the collector".into(),
                "fix: the certificate variant sets it: check cert-manager's cainjector, the certgen Job's log, or set it yourself (bring-your-own)".into(),
            ],
        )
    });
    let Some((ns, svc)) = &webhook.service else {
        if let Some(url) = &webhook.url {
            lines.push(Line::pass(format!("its clientConfig names the URL {url}")));
            lines.push(Line::not_checked(
                "the webhook answers at that URL",
                "a webhook reached by URL has no Service whose endpoints could be looked at: check that the URL answers from the API server's network",
            ));
            return lines;
        }
        lines.push(Line::fail(
            "its clientConfig names a Service or a URL",
            vec!["clientConfig has neither; reapply manifests/base".into()],
        ));
        return lines;
    };
    let text = format!("Service {ns}/{svc} has ready endpoints");
    let endpoints = facts.endpoints.clone().unwrap_or_default();
    lines.push(if endpoints.ready > 0 {
        Line::pass(text)
    } else {
        let found = if endpoints.slices == 0 {
            "no EndpointSlice for the Service".to_owned()
        } else {
            format!(
                "{} endpoint(s), none ready, in {} EndpointSlice(s)",
                endpoints.not_ready, endpoints.slices
            )
        };
        Line::fail(
            text,
            vec![
                format!("{found}: pods are admitted without the collector (failurePolicy Ignore)"),
                format!(
                    "fix: kubectl -n {ns} rollout status {}; kubectl -n {ns} describe pods -l {}",
                    shell_quote(&format!("deployment/{svc}")),
                    shell_quote(&format!("app.kubernetes.io/name={svc}")),
                    ns = shell_quote(ns),
                ),
            ],
        )
    });
    lines
}

fn namespace_line(facts: &Facts) -> Line {
    let ns = &facts.namespace.name;
    let text = format!("namespace {ns} opted in ({INJECT_LABEL}=enabled)");
    let Some(labels) = &facts.namespace.labels else {
        return Line::fail(text, vec![format!("namespace {ns} does not exist")]);
    };
    let excluded = facts
        .webhook
        .as_ref()
        .is_some_and(|w| w.excluded_namespaces.iter().any(|n| n == ns));
    if excluded {
        return Line::fail(
            text,
            vec![format!(
                "the webhook's namespaceSelector excludes {ns} whatever its labels; run VMs in another namespace"
            )],
        );
    }
    match labels.get(INJECT_LABEL).map(String::as_str) {
        Some("enabled") => Line::pass(text),
        other => Line::fail(
            text,
            vec![
                match other {
                    Some(value) => format!("the label is {INJECT_LABEL}={value}"),
                    None => "the namespace has no such label".into(),
                },
                format!(
                    "fix: kubectl label namespace {} {INJECT_LABEL}=enabled --overwrite, then restart its VMs",
                    shell_quote(ns)
                ),
            ],
        ),
    }
}

fn vm_lines(ns: &str, vm: &Vm, series: &Probe) -> Vec<Line> {
    let Some(pod) = &vm.pod else {
        return vec![Line::fail(
            "the VM has a launcher pod",
            vec![format!(
                "no pod labelled kubevirt.io=virt-launcher belongs to {ns}/{}: start it with virtctl start -n {} {}",
                vm.name,
                shell_quote(ns),
                shell_quote(&vm.name)
            )],
        )];
    };
    let restart = format!(
        "virtctl restart -n {} {}",
        shell_quote(ns),
        shell_quote(&vm.name)
    );
    let mut lines = vec![Line::pass(format!("launcher pod {}", pod.name))];
    let status = pod.annotations.get(STATUS_ANNOTATION).map(String::as_str);
    let source = pod.annotations.get(SOURCE_ANNOTATION).map(String::as_str);
    match status {
        Some("injected") => {
            let mut line = Line::pass(format!("injected ({})", decided_by(source)));
            if source == Some("pod-fallback") {
                line = line.with(
                    "the webhook could not read the VMI; the scrape path is relay by default",
                );
            }
            lines.push(line);
            lines.push(scrape_line(pod));
            lines.push(series_line(ns, pod, series));
        }
        Some("skipped") => {
            let reason = pod
                .annotations
                .get(REASON_ANNOTATION)
                .map_or("", String::as_str);
            let why = format!("why: {}", advice::meaning(reason));
            let covered = pod.annotations.get(COVERAGE_ANNOTATION).map(String::as_str)
                == Some(COVERAGE_NODE_COLLECTOR);
            if covered {
                lines.push(
                    Line::pass(format!(
                        "skipped: {reason} ({}), reported by the node collector",
                        decided_by(source)
                    ))
                    .with(why),
                );
            } else {
                let mut detail = vec![why];
                detail.extend(advice::fix(reason, source, &restart));
                lines.push(Line::fail(
                    format!("skipped: {reason} ({})", decided_by(source)),
                    detail,
                ));
            }
        }
        other => lines.push(Line::fail(
            "the webhook saw the pod",
            vec![
                match other {
                    Some(value) => format!("{STATUS_ANNOTATION} is {value:?}, not injected or skipped"),
                    None => format!("no {STATUS_ANNOTATION} annotation: the pod was created before its namespace opted in, or while the webhook was unreachable (failurePolicy Ignore)"),
                },
                format!("fix: once the checks above pass, {restart}"),
            ],
        )),
    }
    lines
}

fn decided_by(source: Option<&str>) -> &'static str {
    match source {
        Some("vmi") => "decided from the VMI",
        Some("pod-fallback") => "decided from the pod: the VMI was not read",
        _ => "decided from the pod alone",
    }
}

fn scrape_line(pod: &Pod) -> Line {
    match pod.labels.get(SCRAPE_LABEL).map(String::as_str) {
        Some("direct") => {
            Line::pass("scraped directly (podIP:port, PodMonitor kube-metrics-collector-direct)")
        }
        Some("relay") => Line::pass(format!(
            "scraped through the node relay on {} (PodMonitor kube-metrics-collector-relay)",
            pod.node
        )),
        other => Line::fail(
            "the pod has a scrape path",
            vec![format!(
                "label {SCRAPE_LABEL} is {}: neither PodMonitor selects the pod",
                other.map_or("missing".into(), |v| format!("{v:?}"))
            )],
        ),
    }
}

/// The collectors' series in Prometheus, over the whole cluster.
fn prometheus_line(facts: &Facts) -> Line {
    let text = "Prometheus has the collectors' series (kubevirt_pod_infra_pod_info)";
    let pods = match &facts.series {
        Probe::NotAsked(why) => return Line::not_checked(text, format!("not checked: {why}")),
        Probe::Failed(error) => return Line::new(Outcome::Unknown, text, vec![error.clone()]),
        Probe::Answered(pods) => pods,
    };
    let ns = &facts.namespace.name;
    let here = pods.iter().filter(|(n, _)| n == ns).count();
    if pods.is_empty() {
        return Line::fail(
            text,
            vec![
                "no launcher pod's series at all: Prometheus selects neither PodMonitor, or no VM runs injected yet".into(),
                "fix: check that Prometheus selects the PodMonitors of the install namespace (docs/kubectl-kmc.md, check)".into(),
            ],
        );
    }
    Line::pass(format!(
        "Prometheus has the series of {} launcher pod(s), {here} in namespace {ns}",
        pods.len()
    ))
}

fn series_line(ns: &str, pod: &Pod, series: &Probe) -> Line {
    let text = "Prometheus has its series (kubevirt_pod_infra_pod_info)";
    let path_fix = match pod.labels.get(SCRAPE_LABEL).map(String::as_str) {
        Some("direct") => "fix: check that Prometheus selects PodMonitor kube-metrics-collector-direct and that its targets page shows the pod's podIP:port up".to_owned(),
        _ => format!(
            "fix: check that DaemonSet kube-metrics-collector-relay runs on node {} (kubectl -n kube-metrics-collector get pods -o wide) and that Prometheus selects PodMonitor kube-metrics-collector-relay",
            pod.node
        ),
    };
    match series {
        Probe::NotAsked(why) => Line::not_checked(text, format!("not checked: {why}")),
        Probe::Failed(error) => Line::new(Outcome::Unknown, text, vec![error.clone()]),
        Probe::Answered(pods) if pods.contains(&(ns.to_owned(), pod.name.clone())) => {
            Line::pass(text)
        }
        Probe::Answered(_) => Line::fail(
            text,
            vec![
                "no kubevirt_pod_infra_pod_info for this pod (scrapes may take a minute after the VM starts)".into(),
                path_fix,
            ],
        ),
    }
}
