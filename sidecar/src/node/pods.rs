//! One node scrape: list the host's processes, group them by the pod their cgroup names, keep
//! the launcher pods the webhook did not inject whose identity the kubelet attests, collect each
//! with its own `Collector`, and merge the pods' expositions as the relay does. Blocking.

use std::collections::{HashMap, HashSet};
use std::io::Read as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use kube_metrics_contract::relay::{EMPTY_DIR, VOLUMES_DIR};
use kube_metrics_relay::merge::{Identity, merge};

use super::cgroup;
use crate::classify::{Class, Roles, SELF_NAME};
use crate::collect::Collector;
use crate::exposition::{self, Format, Metrics, Scope};
use crate::proc::{ProcRoot, Reader};
use crate::scrape::ScrapeConfig;

/// Where the kubelet's facts about pods are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// `<kubelet root>/pods`: one directory per pod uid.
    pub kubelet_pods: PathBuf,
    /// `/var/log/pods`: `<namespace>_<name>_<uid>` per pod.
    pub pod_logs: PathBuf,
    /// The collector's socket emptyDir: its presence means the webhook injected the pod.
    pub socket_volume: String,
}

/// What a process's `cmdline` says about its pod, cached per (pid, pod uid).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// A role only launcher pods run: virt-launcher(-monitor), virtqemud/libvirtd or QEMU.
    Launcher,
    /// The collector: the pod was injected.
    Collector,
    Other,
}

/// What one scrape did with the pods of the node, for the node collector's own families.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PodCounts {
    pub collected: u64,
    pub injected: u64,
    /// Launcher pods whose pods directory could not be read (left out: they may be injected).
    pub unverified: u64,
    /// Launcher pods without an attested identity (no single log directory for the uid).
    pub unattested: u64,
    /// Processes of unattested pods, left out.
    pub unattested_processes: u64,
    /// Collected pods whose QEMU gave no usable guest name (none, or past `MAX_GUEST_NAME`):
    /// their `domain` is the pod's name.
    pub domain_fallbacks: u64,
}

/// One pod's processes at this scrape, and what their command lines say.
#[derive(Debug, Default)]
struct Seen {
    /// Sorted: the listing is.
    pids: Vec<i32>,
    launcher: bool,
    collector: bool,
}

/// One pod under collection.
#[derive(Debug)]
struct Pod {
    collector: Collector,
    generation: u64,
}

/// Owns the per-pod collectors between scrapes.
#[derive(Debug)]
pub struct NodeScraper {
    config: ScrapeConfig,
    layout: Layout,
    host: String,
    node: Option<String>,
    listing: Reader,
    pids: Vec<i32>,
    buf: Vec<u8>,
    verdicts: HashMap<(i32, Arc<str>), (Verdict, u64)>,
    pods: HashMap<Arc<str>, Pod>,
    generation: u64,
    exclude: Arc<crate::exposition::Exclusions>,
    pub last: PodCounts,
}

// === impl NodeScraper ===

impl NodeScraper {
    pub fn new(config: ScrapeConfig, layout: Layout, node: Option<String>) -> Self {
        let mut listing = Reader::new(config.proc_root.clone());
        let host = node
            .clone()
            .or_else(|| listing.hostname())
            .unwrap_or_else(|| "unknown".to_owned());
        let exclude = Arc::new(config.exclude.clone());
        Self {
            exclude,
            config,
            layout,
            host,
            node,
            listing,
            pids: Vec::new(),
            buf: Vec::with_capacity(1024),
            verdicts: HashMap::new(),
            pods: HashMap::new(),
            generation: 0,
            last: PodCounts::default(),
        }
    }

    /// The whole `/metrics` body: every reported pod's families, then the node collector's own.
    pub fn scrape(&mut self) -> String {
        let started = Instant::now();
        let by_pod = self.group_by_pod();
        let identities = match kube_metrics_relay::logs::read(&self.layout.pod_logs) {
            Ok(ids) => ids,
            Err(error) => {
                tracing::warn!(%error, dir = %self.layout.pod_logs.display(), "Cannot list pod log directories");
                HashMap::new()
            }
        };
        let mut counts = PodCounts::default();
        let mut bodies: Vec<(Identity, String)> = Vec::new();
        let mut uids: Vec<&Arc<str>> = by_pod.keys().collect();
        uids.sort();
        for uid in uids {
            let Some(seen) = by_pod.get(uid) else {
                continue;
            };
            let pids = &seen.pids;
            match self.decide(uid, seen, &identities) {
                Decision::NotLauncher => continue,
                Decision::Injected => counts.injected += 1,
                Decision::Unverified => counts.unverified += 1,
                Decision::Unattested => {
                    counts.unattested += 1;
                    counts.unattested_processes += pids.len() as u64;
                }
                Decision::Collect(identity) => {
                    counts.collected += 1;
                    let (body, fell_back) = self.collect_pod(uid, pids, &identity);
                    counts.domain_fallbacks += u64::from(fell_back);
                    bodies.push((identity, body));
                }
            }
        }
        let generation = self.generation;
        self.pods.retain(|_, pod| pod.generation == generation);
        self.verdicts.retain(|_, (_, g)| *g == generation);
        self.generation += 1;
        self.last = counts;
        let merged = merge(&bodies);
        for (report, (identity, _)) in merged.targets.iter().zip(&bodies) {
            if let Err(rejected) = &report.identity {
                tracing::warn!(namespace = %identity.namespace, pod = %identity.pod, reason = rejected.reason(), "Pod left out of the merge");
            }
        }
        merged.text + &own_families(&counts, started.elapsed().as_secs_f64())
    }

    /// Every pod on the node with its processes.
    fn group_by_pod(&mut self) -> HashMap<Arc<str>, Seen> {
        let mut pids = std::mem::take(&mut self.pids);
        let mut by_pod: HashMap<Arc<str>, Seen> = HashMap::new();
        if let Err(error) = self.listing.pids(&mut pids) {
            tracing::warn!(%error, "Cannot list processes");
        }
        let root = self.config.proc_root.path().to_owned();
        let mut interned: HashSet<Arc<str>> = HashSet::new();
        for &pid in &pids {
            self.buf.clear();
            let read = std::fs::File::open(root.join(pid.to_string()).join("cgroup"))
                .and_then(|mut f| f.read_to_end(&mut self.buf));
            if read.is_err() {
                continue;
            }
            let Some(uid) = cgroup::pod_uid(&self.buf) else {
                continue;
            };
            let uid = match interned.get(uid.as_str()) {
                Some(uid) => Arc::clone(uid),
                None => {
                    let uid: Arc<str> = uid.into();
                    interned.insert(Arc::clone(&uid));
                    uid
                }
            };
            let verdict = self.verdict(pid, &uid);
            let seen = by_pod.entry(uid).or_default();
            seen.pids.push(pid);
            seen.launcher |= verdict == Verdict::Launcher;
            seen.collector |= verdict == Verdict::Collector;
        }
        self.pids = pids;
        by_pod
    }

    /// The cached verdict of `pid` in pod `uid`, or a fresh one from its cmdline.
    fn verdict(&mut self, pid: i32, uid: &Arc<str>) -> Verdict {
        let generation = self.generation;
        let key = (pid, Arc::clone(uid));
        if let Some((verdict, seen)) = self.verdicts.get_mut(&key) {
            *seen = generation;
            return *verdict;
        }
        let verdict = match self.listing.cmdline(pid) {
            Ok(cmdline) => verdict_of(&self.config.roles, cmdline),
            Err(_) => Verdict::Other,
        };
        self.verdicts.insert(key, (verdict, generation));
        verdict
    }

    fn decide(&self, uid: &str, seen: &Seen, identities: &HashMap<String, Identity>) -> Decision {
        if !seen.launcher {
            return Decision::NotLauncher;
        }
        if seen.collector {
            return Decision::Injected;
        }
        let socket_dir = self
            .layout
            .kubelet_pods
            .join(uid)
            .join(VOLUMES_DIR)
            .join(EMPTY_DIR)
            .join(&self.layout.socket_volume);
        match std::fs::symlink_metadata(&socket_dir) {
            Ok(_) => return Decision::Injected,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            // Cannot tell (the pod directory is not readable): collecting could count it twice.
            Err(error) => {
                tracing::debug!(%error, pod_uid = uid, "Cannot check for the collector's volume");
                return Decision::Unverified;
            }
        }
        match identities.get(uid) {
            Some(identity) => Decision::Collect(identity.clone()),
            None => Decision::Unattested,
        }
    }

    /// One pod's exposition, text 0.0.4, stating its attested identity in `pod_info`, and whether
    /// its `domain` fell back to the pod's name.
    fn collect_pod(&mut self, uid: &Arc<str>, pids: &[i32], identity: &Identity) -> (String, bool) {
        let generation = self.generation;
        let config = &self.config;
        let pod = self.pods.entry(Arc::clone(uid)).or_insert_with(|| Pod {
            collector: Collector::new(
                ProcRoot::new(config.proc_root.path()),
                config.roles.clone(),
                config.pss,
                config.guest_memory,
            ),
            generation,
        });
        pod.generation = generation;
        let collection = pod.collector.collect_pids(pids);
        let fell_back = collection.guest_name.is_none();
        let domain = collection
            .guest_name
            .clone()
            .unwrap_or_else(|| identity.pod.clone());
        let scope = Scope {
            host: self.host.clone(),
            domain,
            namespace: Some(identity.namespace.clone()),
            pod: Some(identity.pod.clone()),
            node: self.node.clone(),
            memory_overhead: None,
            memory_request: None,
            memory_limit: None,
            kubevirt_release: config.kubevirt_release,
            pss: config.pss,
            exclude: Arc::clone(&self.exclude),
        };
        let mut out = Vec::with_capacity(32 * 1024);
        // The node collector's listener is its own, not the pod's: no connections of the pod.
        let metrics = Metrics {
            collection,
            scope,
            connections: Vec::new(),
        };
        match exposition::encode(&metrics, Format::Text, &mut out) {
            Ok(()) => {}
            Err(never) => match never {},
        }
        (String::from_utf8(out).unwrap_or_default(), fell_back)
    }
}

/// What a scrape does with one pod.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Decision {
    NotLauncher,
    Injected,
    /// Whether the webhook injected it cannot be read from the kubelet's pods directory.
    Unverified,
    Unattested,
    Collect(Identity),
}

/// Launcher roles: what only a virt-launcher pod runs.
fn verdict_of(roles: &Roles, cmdline: &[u8]) -> Verdict {
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    let base = argv0.rsplit(|&b| b == b'/').next().unwrap_or(argv0);
    if base == SELF_NAME.as_bytes() {
        return Verdict::Collector;
    }
    match roles.classify(cmdline, b"") {
        Class::Role(id)
            if id == Roles::QEMU
                || matches!(
                    roles.name(id),
                    "virt-launcher" | "virt-launcher-monitor" | "virtqemud" | "libvirtd"
                ) =>
        {
            Verdict::Launcher
        }
        _ => Verdict::Other,
    }
}

/// `kube_metrics_collector_node_*`: what the last scrape did.
fn own_families(counts: &PodCounts, duration: f64) -> String {
    let PodCounts {
        collected,
        injected,
        unverified,
        unattested,
        unattested_processes,
        domain_fallbacks,
    } = *counts;
    format!(
        "# HELP kube_metrics_collector_node_pods Launcher pods on this node by what the node collector did with them at its last scrape.\n\
         # TYPE kube_metrics_collector_node_pods gauge\n\
         kube_metrics_collector_node_pods{{state=\"collected\"}} {collected}\n\
         kube_metrics_collector_node_pods{{state=\"injected\"}} {injected}\n\
         kube_metrics_collector_node_pods{{state=\"unverified\"}} {unverified}\n\
         kube_metrics_collector_node_pods{{state=\"unattested\"}} {unattested}\n\
         # HELP kube_metrics_collector_node_unattested_processes Processes of launcher pods left out because the kubelet attests no identity for their pod.\n\
         # TYPE kube_metrics_collector_node_unattested_processes gauge\n\
         kube_metrics_collector_node_unattested_processes {unattested_processes}\n\
         # HELP kube_metrics_collector_node_domain_fallbacks Collected pods labelled with their pod name as domain, their QEMU giving no guest name of at most 253 characters.\n\
         # TYPE kube_metrics_collector_node_domain_fallbacks gauge\n\
         kube_metrics_collector_node_domain_fallbacks {domain_fallbacks}\n\
         # HELP kube_metrics_collector_node_scrape_duration_seconds Time the last node scrape took.\n\
         # TYPE kube_metrics_collector_node_scrape_duration_seconds gauge\n\
         kube_metrics_collector_node_scrape_duration_seconds {duration}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launcher_roles_and_the_collector() {
        let roles = Roles::new(&[]);
        for (cmdline, want) in [
            (
                &b"/usr/bin/virt-launcher-monitor\0--qemu-timeout\0"[..],
                Verdict::Launcher,
            ),
            (b"/usr/bin/virt-launcher\0", Verdict::Launcher),
            (b"/usr/sbin/virtqemud\0-f\0", Verdict::Launcher),
            (b"/usr/libexec/qemu-kvm\0-name\0", Verdict::Launcher),
            (b"/usr/bin/qemu-system-x86_64\0", Verdict::Launcher),
            (b"/usr/sbin/virtlogd\0", Verdict::Other),
            (b"/usr/bin/kube-metrics-collector\0", Verdict::Collector),
            (b"kube-metrics-collector\0-M\0", Verdict::Collector),
            (b"/pause\0", Verdict::Other),
            (b"nginx\0", Verdict::Other),
            (b"", Verdict::Other),
        ] {
            assert_eq!(verdict_of(&roles, cmdline), want, "{cmdline:?}");
        }
    }

    #[test]
    fn own_families_state_each_count() {
        let text = own_families(
            &PodCounts {
                collected: 2,
                injected: 1,
                unverified: 4,
                unattested: 3,
                unattested_processes: 7,
                domain_fallbacks: 5,
            },
            0.5,
        );
        for line in [
            "kube_metrics_collector_node_pods{state=\"collected\"} 2",
            "kube_metrics_collector_node_pods{state=\"injected\"} 1",
            "kube_metrics_collector_node_pods{state=\"unverified\"} 4",
            "kube_metrics_collector_node_pods{state=\"unattested\"} 3",
            "kube_metrics_collector_node_unattested_processes 7",
            "kube_metrics_collector_node_domain_fallbacks 5",
            "kube_metrics_collector_node_scrape_duration_seconds 0.5",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
    }
}
