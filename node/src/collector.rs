//! `kube-metrics-collector node`: the opt-in node collector (docs/node-collector.md).
//!
//! For launcher pods the webhook did not inject (dedicated CPUs, VFIO, SEV/TDX...: their QEMU
//! must stay out of a shared PID namespace), it reads the host's `/proc` from a `hostPID`
//! DaemonSet and serves, per such pod, the same families the sidecar would, each series labelled
//! with the pod's `namespace` and `pod` as the relay labels them. A process belongs to the pod
//! its cgroup path names (`cgroup`); the pod's namespace and name come from the kubelet's pod log
//! directory (`crate::kubelet::logs`), never from the process. No API, no CRI socket.

mod answer;
pub mod pods;
pub mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;

use kube_metrics_contract::{node_collector, relay, sidecar};

/// The node collector's port (the contract's).
pub const PORT: u16 = node_collector::PORT;

/// The node collector's listener unless `--listen` says otherwise.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), PORT);

/// Flags of `kube-metrics-collector node`; `--proc-root`, `--role`, `--pss`, `--exclude` and
/// `--guest-memory-interval-secs` are the collector's own, given before `node`
/// ([`kube_metrics_collect::Config`]).
#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// Address to serve GET /metrics and /healthz on.
    #[arg(long, env = "KMC_NODE_LISTEN", default_value_t = DEFAULT_LISTEN)]
    listen: SocketAddr,

    /// The kubelet's pods directory (mounted read-only): a pod with the collector's socket
    /// emptyDir was injected and is left to its own collector.
    #[arg(
        long,
        env = "KMC_NODE_KUBELET_PODS_DIR",
        default_value = relay::KUBELET_PODS_DIR
    )]
    kubelet_pods_dir: PathBuf,

    /// The kubelet's pod log directory (mounted read-only; only its entries' names are read).
    #[arg(long, env = "KMC_NODE_POD_LOGS_DIR", default_value = relay::POD_LOGS_DIR)]
    pod_logs_dir: PathBuf,

    /// Collect once, print the metrics (text 0.0.4) to stdout and exit.
    #[arg(long)]
    once: bool,
}

/// Validated settings of the node collector.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub collect: kube_metrics_collect::Config,
    pub listen: SocketAddr,
    pub layout: pods::Layout,
    pub once: bool,
}

// === impl NodeArgs ===

impl NodeArgs {
    pub fn into_config(self, mut collect: kube_metrics_collect::Config) -> NodeConfig {
        let Self {
            listen,
            kubelet_pods_dir,
            pod_logs_dir,
            once,
        } = self;
        // One collection and exit: nothing would wait for a reader thread.
        collect.guest_memory.background = !once;
        NodeConfig {
            collect,
            listen,
            layout: pods::Layout {
                kubelet_pods: kubelet_pods_dir,
                pod_logs: pod_logs_dir,
                socket_volume: sidecar::SOCKET_VOLUME.to_owned(),
            },
            once,
        }
    }
}

/// Serves, or with `--once` prints one scrape.
pub async fn run(config: NodeConfig) -> anyhow::Result<()> {
    let node_name = std::env::var(sidecar::ENV_NODE_NAME).ok();
    let mut scraper = pods::NodeScraper::new(config.collect, config.layout, node_name);
    if config.once {
        use std::io::Write as _;
        let body = scraper.scrape();
        return std::io::stdout()
            .lock()
            .write_all(&body)
            .map_err(|e| anyhow::Error::new(e).context("failed to write metrics to stdout"));
    }
    serve::run(config.listen, scraper).await
}
