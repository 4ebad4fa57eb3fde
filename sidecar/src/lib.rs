//! `kube-metrics-collector`: per-process Prometheus metrics of a KubeVirt virt-launcher pod.
//!
//! It runs as a container of a pod with `shareProcessNamespace: true`, so `/proc` shows every
//! process of the pod; the collector library (`kube_metrics_collect`) reads and sums them and
//! writes their families. This crate adds what the injected collector is: its flags (`args`), the
//! pod's identity from env (`POD_NAME`, `POD_NAMESPACE`, `NODE_NAME`) and downward-API files
//! (`--podinfo`, `podinfo`), one scrape (`scrape`), `GET /metrics` (text 0.0.4 or OpenMetrics
//! 1.0.0), `/healthz` and `/readyz` on TCP and/or a Unix socket (`serve`), `-M` (one collection
//! printed) and `probe` (the socket checked for exec probes). The subcommands `relay` and `node`
//! run the node agents of `kube_metrics_node`. It never talks to the Kubernetes API and never
//! writes to `/proc`.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod args;
pub mod log;
pub mod podinfo;
pub mod probe;
pub mod scrape;
pub mod serve;

use std::io::Write;

use anyhow::Context;
use kube_metrics_collect::families;
use kube_metrics_exposition::Format;

pub use args::Args;
use args::Mode;

// === impl Args ===

impl Args {
    /// Runs what the flags ask for; the caller owns the (current-thread) runtime.
    pub async fn run(self) -> anyhow::Result<()> {
        let (log, mode) = self.into_config()?;
        log.init()?;
        match mode {
            Mode::Dump(config) => dump(config),
            Mode::Probe { socket } => probe::run(&socket).await,
            Mode::Serve(config) => serve::run(config).await,
            Mode::Relay(config) => kube_metrics_node::relay::run(config).await,
            Mode::Node(config) => kube_metrics_node::collector::run(config).await,
        }
    }
}

/// `-M`: one collection, text 0.0.4 on stdout.
fn dump(config: scrape::ScrapeConfig) -> anyhow::Result<()> {
    let mut scraper = scrape::Scraper::new(config, podinfo::Env::from_env());
    let metrics = scraper.scrape();
    let mut out = Vec::with_capacity(32 * 1024);
    families::encode(&metrics, Format::Text, &mut out);
    std::io::stdout()
        .lock()
        .write_all(&out)
        .context("failed to write metrics to stdout")
}
