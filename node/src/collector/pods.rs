//! One node scrape: list the host's processes, group them by the pod their cgroup names, keep
//! the launcher pods the webhook did not inject whose identity the kubelet attests, collect each
//! with its own `Collector`, and write every pod's families under the relay's rules for what one
//! node's answer may hold (`answer`). Blocking.

use std::collections::{HashMap, HashSet};
use std::io::Read as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use kube_metrics_collect::Config;
use kube_metrics_collect::classify::{Class, Roles, SELF_NAME};
use kube_metrics_collect::collect::Collector;
use kube_metrics_collect::families::{Metrics, PodLines, Scope, write_pods};
use kube_metrics_collect::proc::Reader;
use kube_metrics_contract::relay::{EMPTY_DIR, VOLUMES_DIR};

pub use super::answer::PodCounts;
use super::answer::{Weight, admit, own_families};
use crate::kubelet::{Identity, cgroup, logs};

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
enum Sign {
    /// A role only launcher pods run: virt-launcher(-monitor), virtqemud/libvirtd or QEMU.
    Launcher,
    /// The collector: the pod was injected.
    Collector,
    Other,
}

/// One pod's processes at this scrape, and what their command lines say.
#[derive(Debug, Default)]
struct Seen {
    /// Sorted: the listing is.
    pids: Vec<i32>,
    launcher: bool,
    collector: bool,
}

/// One pod under collection, and its lines of the last scrape.
#[derive(Debug)]
struct Pod {
    collector: Collector,
    lines: PodLines,
    generation: u64,
}

/// Owns the per-pod collectors between scrapes.
#[derive(Debug)]
pub struct NodeScraper {
    config: Config,
    layout: Layout,
    host: String,
    node: Option<String>,
    listing: Reader,
    pids: Vec<i32>,
    buf: Vec<u8>,
    signs: HashMap<(i32, Arc<str>), (Sign, u64)>,
    pods: HashMap<Arc<str>, Pod>,
    generation: u64,
    exclude: Arc<kube_metrics_collect::families::Exclusions>,
    pub last: PodCounts,
}

// === impl NodeScraper ===

impl NodeScraper {
    pub fn new(config: Config, layout: Layout, node: Option<String>) -> Self {
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
            signs: HashMap::new(),
            pods: HashMap::new(),
            generation: 0,
            last: PodCounts::default(),
        }
    }

    /// The whole `/metrics` body: every reported pod's families, then the node collector's own.
    pub fn scrape(&mut self) -> Vec<u8> {
        let started = Instant::now();
        let (counts, collected) = self.collect_pods();
        let generation = self.generation;
        self.pods.retain(|_, pod| pod.generation == generation);
        self.signs.retain(|_, (_, g)| *g == generation);
        self.generation += 1;
        self.last = counts;
        let mut out = self.answer(&collected);
        own_families(&counts, started.elapsed().as_secs_f64(), &mut out);
        out
    }

    /// Decides what to do with each pod on the node and collects the launcher pods to report, in
    /// uid order, with their attested identities.
    fn collect_pods(&mut self) -> (PodCounts, Vec<(Arc<str>, Identity)>) {
        let by_pod = self.group_by_pod();
        let identities = match logs::read(&self.layout.pod_logs) {
            Ok(ids) => ids,
            Err(error) => {
                tracing::warn!(%error, dir = %self.layout.pod_logs.display(), "Cannot list pod log directories");
                HashMap::new()
            }
        };
        let mut counts = PodCounts::default();
        let mut collected = Vec::new();
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
                    let fell_back = self.collect_pod(uid, pids, &identity);
                    counts.domain_fallbacks += u64::from(fell_back);
                    collected.push((Arc::clone(uid), identity));
                }
            }
        }
        (counts, collected)
    }

    /// The collected pods' lines that the answer admits, family by family; each pod left out is
    /// logged with why.
    fn answer(&self, collected: &[(Arc<str>, Identity)]) -> Vec<u8> {
        let weights: Vec<Weight<'_>> = collected
            .iter()
            .map(|(uid, identity)| {
                let lines = self.pods.get(uid).map(|pod| &pod.lines);
                Weight {
                    identity,
                    series: lines.map_or(0, PodLines::series),
                    bytes: lines.map_or(0, PodLines::bytes),
                }
            })
            .collect();
        let admissions = admit(&weights);
        let mut bytes = 0;
        for (weight, admission) in weights.iter().zip(&admissions) {
            match admission {
                Ok(()) => bytes += weight.bytes,
                Err(rejected) => {
                    let Identity { namespace, pod } = weight.identity;
                    tracing::warn!(%namespace, %pod, reason = rejected.reason(), "Pod left out of the answer");
                }
            }
        }
        let admitted = collected
            .iter()
            .zip(&admissions)
            .filter(|(_, admission)| admission.is_ok())
            .filter_map(|((uid, _), _)| self.pods.get(uid))
            .map(|pod| &pod.lines);
        // Room for the families' headers and the node collector's own.
        let mut out = Vec::with_capacity(bytes + bytes / 8 + 2048);
        write_pods(admitted, &mut out);
        out
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
            let sign = self.sign(pid, &uid);
            let seen = by_pod.entry(uid).or_default();
            seen.pids.push(pid);
            seen.launcher |= sign == Sign::Launcher;
            seen.collector |= sign == Sign::Collector;
        }
        self.pids = pids;
        by_pod
    }

    /// The cached sign of `pid` in pod `uid`, or a fresh one from its cmdline.
    fn sign(&mut self, pid: i32, uid: &Arc<str>) -> Sign {
        let generation = self.generation;
        let key = (pid, Arc::clone(uid));
        if let Some((sign, seen)) = self.signs.get_mut(&key) {
            *seen = generation;
            return *sign;
        }
        let sign = match self.listing.cmdline(pid) {
            Ok(cmdline) => sign_of(&self.config.roles, cmdline),
            Err(_) => Sign::Other,
        };
        self.signs.insert(key, (sign, generation));
        sign
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

    /// Collects one pod into its lines, stating its attested identity in `pod_info`; whether its
    /// `domain` fell back to the pod's name.
    fn collect_pod(&mut self, uid: &Arc<str>, pids: &[i32], identity: &Identity) -> bool {
        let generation = self.generation;
        let config = &self.config;
        let pod = self.pods.entry(Arc::clone(uid)).or_insert_with(|| Pod {
            collector: config.collector(),
            lines: PodLines::default(),
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
        // The node collector's listener is its own, not the pod's: no connections of the pod.
        let metrics = Metrics {
            collection,
            scope,
            connections: Vec::new(),
        };
        pod.lines.write(&metrics);
        fell_back
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
fn sign_of(roles: &Roles, cmdline: &[u8]) -> Sign {
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    let base = argv0.rsplit(|&b| b == b'/').next().unwrap_or(argv0);
    if base == SELF_NAME.as_bytes() {
        return Sign::Collector;
    }
    match roles.classify(cmdline, b"") {
        Class::Role(id)
            if id == Roles::QEMU
                || matches!(
                    roles.name(id),
                    "virt-launcher" | "virt-launcher-monitor" | "virtqemud" | "libvirtd"
                ) =>
        {
            Sign::Launcher
        }
        _ => Sign::Other,
    }
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
                Sign::Launcher,
            ),
            (b"/usr/bin/virt-launcher\0", Sign::Launcher),
            (b"/usr/sbin/virtqemud\0-f\0", Sign::Launcher),
            (b"/usr/libexec/qemu-kvm\0-name\0", Sign::Launcher),
            (b"/usr/bin/qemu-system-x86_64\0", Sign::Launcher),
            (b"/usr/sbin/virtlogd\0", Sign::Other),
            (b"/usr/bin/kube-metrics-collector\0", Sign::Collector),
            (b"kube-metrics-collector\0-M\0", Sign::Collector),
            (b"/pause\0", Sign::Other),
            (b"nginx\0", Sign::Other),
            (b"", Sign::Other),
        ] {
            assert_eq!(sign_of(&roles, cmdline), want, "{cmdline:?}");
        }
    }
}
