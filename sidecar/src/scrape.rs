//! One scrape: collect `/proc`, refresh the pod identity when due, build the metric families.
//! Blocking; `serve` runs it in `spawn_blocking`, `-M` calls it directly.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube_metrics_collect::collect::Collector;
use kube_metrics_collect::families::{Exclusions, ListenerConnections, Metrics, Scope};
use kube_metrics_contract::estimate::Release;
use kube_metrics_runtime::{ConnectionStats, Kind};

use crate::podinfo::{self, Env, PodInfo};

/// How long downward-API files are trusted: the kubelet rewrites them when labels or annotations
/// change, and re-reading four small files every scrape would cost more than the change is worth.
const PODINFO_REFRESH: Duration = Duration::from_secs(30);

/// What a scrape needs: how to collect, and where the downward API describes the pod.
#[derive(Clone, Debug)]
pub struct ScrapeConfig {
    pub collect: kube_metrics_collect::Config,
    pub podinfo: PathBuf,
}

/// Owns the collector state and the cached pod identity.
#[derive(Debug)]
pub struct Scraper {
    collector: Collector,
    env: Env,
    host: String,
    podinfo_dir: PathBuf,
    podinfo: PodInfo,
    podinfo_read: Option<Instant>,
    pss: bool,
    kubevirt_release: Option<Release>,
    exclude: Arc<Exclusions>,
    /// The listeners being served and what their caps counted; none for `-M`.
    listeners: Vec<Kind>,
    connections: Arc<ConnectionStats>,
}

// === impl Scraper ===

impl Scraper {
    pub fn new(config: ScrapeConfig, env: Env) -> Self {
        let mut collector = config.collect.collector();
        let kube_metrics_collect::Config {
            pss,
            kubevirt_release,
            exclude,
            ..
        } = config.collect;
        let host = env
            .node_name
            .clone()
            .or_else(|| collector.hostname())
            .unwrap_or_else(|| "unknown".to_string());
        Self {
            collector,
            env,
            host,
            podinfo_dir: config.podinfo,
            podinfo: PodInfo::default(),
            podinfo_read: None,
            pss,
            kubevirt_release,
            exclude: Arc::new(exclude),
            listeners: Vec::new(),
            connections: Arc::default(),
        }
    }

    /// Exports what the caps of `listeners` count in `stats` (the server's
    /// `Options::stats`) at every scrape.
    pub fn count_connections(&mut self, listeners: Vec<Kind>, stats: Arc<ConnectionStats>) {
        self.listeners = listeners;
        self.connections = stats;
    }

    /// Reads `/proc` once and returns what the exposition is encoded from.
    pub fn scrape(&mut self) -> Metrics {
        if self
            .podinfo_read
            .is_none_or(|at| at.elapsed() >= PODINFO_REFRESH)
        {
            self.podinfo = PodInfo::read(&self.podinfo_dir);
            self.podinfo_read = Some(Instant::now());
        }
        let collection = self.collector.collect();
        let domain = podinfo::domain(&self.podinfo, collection.guest_name.as_deref(), &self.env);
        let scope = Scope {
            host: self.host.clone(),
            domain: domain.to_string(),
            namespace: self.env.pod_namespace.clone(),
            pod: self.env.pod_name.clone(),
            node: self.env.node_name.clone(),
            memory_overhead: self.podinfo.memory_overhead(),
            memory_request: self.podinfo.memory_request,
            memory_limit: self.podinfo.memory_limit,
            kubevirt_release: self.kubevirt_release,
            pss: self.pss,
            exclude: Arc::clone(&self.exclude),
        };
        let connections = self
            .listeners
            .iter()
            .map(|&listener| ListenerConnections {
                listener: listener.as_str(),
                evicted: self.connections.evicted(listener),
                refused: self.connections.refused(listener),
            })
            .collect();
        Metrics {
            collection,
            scope,
            connections,
        }
    }
}
