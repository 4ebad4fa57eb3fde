//! The concrete sidecar for one pod: port, user, resources, per-pod overrides. No I/O.
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use kube_metrics_contract::metrics::Profile;
use kube_metrics_contract::pod::{CPU_LIMIT, LOG_LEVEL, MEMORY_LIMIT, METRICS_PROFILE};
use std::collections::BTreeSet;

use super::all_containers;
use crate::policy::{Bounds, EPHEMERAL_PORTS, Mode, Policy, Scrape};
use crate::quantity::{self, Quantity};
use crate::vmi::{PathDecision, PathReason, ScrapePath, Source, Verdict};
use kube_metrics_contract::kubevirt::COMPUTE_CONTAINER;

/// The collector's log levels that an annotation may select (passed as `KMC_LOG_LEVEL`).
pub const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];

/// Everything the patch needs to render the sidecar for one pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub image: String,
    pub mode: Mode,
    /// How Prometheus reaches the sidecar, and why: the pod's `scrape` label.
    pub scrape: PathDecision,
    /// Who found the VM safe: the VMI, or the pod's signals when the VMI was not read.
    pub source: Source,
    /// Free in the pod (no container or host port of any container uses it) and not one the VM's
    /// passt interface lists.
    pub port: u16,
    pub run_as: RunAs,
    pub cpu: Bounds,
    pub memory: Bounds,
    /// From the log-level annotation, when valid.
    pub log_level: Option<String>,
    /// The cluster's KubeVirt release, when the webhook was told it.
    pub kubevirt_release: Option<kube_metrics_contract::estimate::Release>,
    /// From the metrics-profile annotation when valid, else the webhook's `--metrics-profile`.
    pub metrics_profile: Option<Profile>,
    /// Overrides that were ignored, one sentence each; returned to the client as warnings.
    pub warnings: Vec<String>,
    /// The annotation of each ignored override, in the order of `warnings`: counted and logged.
    pub ignored: Vec<&'static str>,
}

/// The user the sidecar runs as: compute's, so it may read the /proc entries of the pod's processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunAs {
    pub uid: i64,
    pub gid: Option<i64>,
}

// === impl RunAs ===

impl RunAs {
    /// `runAsNonRoot` is set when the pod is non-root; in KubeVirt's root mode it stays unset.
    pub fn non_root(self) -> bool {
        self.uid != 0
    }
}

/// The sidecar for a pod whose VM `verdict` found safe, on `port`. `None` when the pod cannot be
/// read with confidence (no user id, a quantity we cannot parse).
pub(super) fn plan(pod: &Pod, policy: &Policy, port: u16, verdict: &Verdict) -> Option<Plan> {
    let spec = pod.spec.as_ref()?;
    let compute = spec
        .containers
        .first()
        .filter(|c| c.name == COMPUTE_CONTAINER)?;
    let run_as = run_as(spec, compute)?;
    let guaranteed = is_guaranteed(spec)?;
    let annotations = pod.metadata.annotations.as_ref();
    let annotation = |key: &str| annotations.and_then(|a| a.get(key)).map(String::as_str);
    let mut warnings = Vec::new();
    let mut ignored = Vec::new();

    let mut cpu = policy.cpu.clone();
    let mut memory = policy.memory.clone();
    if let Some(value) = annotation(CPU_LIMIT) {
        override_limit(
            &mut cpu,
            CPU_LIMIT,
            value,
            &policy.max_cpu_limit,
            (&mut warnings, &mut ignored),
        );
    }
    if let Some(value) = annotation(MEMORY_LIMIT) {
        override_limit(
            &mut memory,
            MEMORY_LIMIT,
            value,
            &policy.max_memory_limit,
            (&mut warnings, &mut ignored),
        );
    }
    // docs/kubevirt.md §3.5: a pod with dedicated CPUs fails unless it stays Guaranteed.
    if guaranteed {
        cpu.request = cpu.limit.clone();
        memory.request = memory.limit.clone();
    }
    let log_level = annotation(LOG_LEVEL).and_then(|value| {
        let valid = LOG_LEVELS.contains(&value);
        if !valid {
            let levels = LOG_LEVELS.join(", ");
            warnings.push(format!(
                "ignored {LOG_LEVEL}={:?}: must be one of {levels}",
                shown(value)
            ));
            ignored.push(LOG_LEVEL);
        }
        valid.then(|| value.to_owned())
    });
    // A profile the collector does not know would stop it at start: never passed on.
    let chosen = annotation(METRICS_PROFILE).and_then(|value| match value.parse::<Profile>() {
        Ok(profile) => Some(profile),
        Err(_) => {
            let names: Vec<&str> = Profile::ALL.iter().map(|p| p.as_str()).collect();
            warnings.push(format!(
                "ignored {METRICS_PROFILE}={:?}: must be one of {}",
                shown(value),
                names.join(", ")
            ));
            ignored.push(METRICS_PROFILE);
            None
        }
    });
    let scrape = scrape_path(policy, verdict);
    Some(Plan {
        image: policy.image.clone(),
        mode: policy.mode,
        scrape,
        source: verdict.source,
        port,
        run_as,
        cpu,
        memory,
        log_level,
        kubevirt_release: policy.kubevirt_release,
        metrics_profile: chosen.or(policy.metrics_profile),
        warnings,
        ignored,
    })
}

/// The verdict's scrape path, unless `--scrape relay` rules `direct` out.
pub(super) fn scrape_path(policy: &Policy, verdict: &Verdict) -> PathDecision {
    match policy.scrape {
        Scrape::Relay if verdict.scrape.path == ScrapePath::Direct => {
            PathDecision::relay(PathReason::RelayOnly)
        }
        Scrape::Auto | Scrape::Relay => verdict.scrape,
    }
}

/// Accepts a limit between the policy's request and `max`, so request <= limit still holds.
fn override_limit(
    bounds: &mut Bounds,
    key: &'static str,
    value: &str,
    max: &Quantity,
    (warnings, ignored): (&mut Vec<String>, &mut Vec<&'static str>),
) {
    match quantity::parse(value) {
        Some(q) if q.nano() >= bounds.request.nano() && q.nano() <= max.nano() => bounds.limit = q,
        _ => {
            warnings.push(format!(
                "ignored {key}={:?}: must be a quantity from {} to {}",
                shown(value),
                bounds.request.as_str(),
                max.as_str()
            ));
            ignored.push(key);
        }
    }
}

/// At most 32 characters of a user's value: the API server truncates long warnings, and a
/// megabyte annotation must not become a megabyte warning.
fn shown(value: &str) -> String {
    const MAX: usize = 32;
    match value.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", value.get(..cut).unwrap_or_default()),
        None => value.to_owned(),
    }
}

/// Compute's effective user and group (container settings override the pod's).
fn run_as(spec: &PodSpec, compute: &Container) -> Option<RunAs> {
    let container = compute.security_context.as_ref();
    let pod = spec.security_context.as_ref();
    let uid = container
        .and_then(|s| s.run_as_user)
        .or(pod.and_then(|s| s.run_as_user))?;
    let gid = container
        .and_then(|s| s.run_as_group)
        .or(pod.and_then(|s| s.run_as_group));
    (uid >= 0 && gid.is_none_or(|g| g >= 0)).then_some(RunAs { uid, gid })
}

/// Guaranteed QoS as Kubernetes computes it: every container, init containers included, has CPU and
/// memory limits, and requests that are absent (defaulted to the limit) or equal to them. `None`
/// when a quantity does not parse.
fn is_guaranteed(spec: &PodSpec) -> Option<bool> {
    let mut guaranteed = true;
    for container in all_containers(spec) {
        let resources = container.resources.as_ref();
        let requests = resources.and_then(|r| r.requests.as_ref());
        let limits = resources.and_then(|r| r.limits.as_ref());
        for name in ["cpu", "memory"] {
            let limit = limits.and_then(|l| l.get(name));
            let request = requests.and_then(|r| r.get(name));
            let parse =
                |q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>| match q {
                    Some(q) => quantity::parse(&q.0).map(|q| Some(q.nano())),
                    None => Some(None),
                };
            let (limit, request) = (parse(limit)?, parse(request)?);
            guaranteed &= limit.is_some() && (request.is_none() || request == limit);
        }
    }
    Some(guaranteed)
}

/// The first port from `wanted` up that no container uses (as container or host port) and that is
/// not `taken`, wrapping around inside the ephemeral range.
pub(super) fn free_port(spec: &PodSpec, wanted: u16, taken: impl Fn(u16) -> bool) -> u16 {
    let used: BTreeSet<i32> = all_containers(spec)
        .flat_map(|c| c.ports.iter().flatten())
        .flat_map(|p| [Some(p.container_port), p.host_port].into_iter().flatten())
        .collect();
    let start = wanted.clamp(*EPHEMERAL_PORTS.start(), *EPHEMERAL_PORTS.end());
    (start..=*EPHEMERAL_PORTS.end())
        .chain(*EPHEMERAL_PORTS.start()..start)
        .find(|p| !used.contains(&i32::from(*p)) && !taken(*p))
        // 28,232 ports in use: impossible for a pod; keep the wanted one rather than fail.
        .unwrap_or(start)
}
