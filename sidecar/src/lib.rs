//! `kube-metrics-collector`: per-process Prometheus metrics of a KubeVirt virt-launcher pod.
//!
//! It runs as a container of a pod with `shareProcessNamespace: true`, so `/proc` shows every
//! process of the pod. Per process it reads `stat`, `status`, `io`, the size of `fd/`, `cmdline`
//! once per (pid, start time), and for QEMU each thread's `schedstat` (and its `stat` when it ran
//! since the last read); with `--pss`, `smaps_rollup`. The fds of these files stay open between
//! collections, so each read is one `pread` (`proc/files.rs`).
//! Processes are classified into roles by argv[0] (docs/metrics.md) and summed per role, with
//! counters that never go backwards across exits and pid reuse. The pod's identity comes from
//! env (`POD_NAME`, `POD_NAMESPACE`, `NODE_NAME`) and downward-API files (`--podinfo`).
//!
//! It serves `GET /metrics` (text 0.0.4 or OpenMetrics 1.0.0), `/healthz` and `/readyz` on TCP
//! and/or a Unix socket; `-M` prints one collection; `probe` checks the socket for exec probes.
//! It never talks to the Kubernetes API and never writes to `/proc`.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod args;
pub mod classify;
pub mod collect;
pub mod exposition;
pub mod guest_memory;
pub mod identity;
pub mod log;
pub mod node;
pub mod probe;
pub mod proc;
pub mod qemu_devices;
pub mod scrape;
pub mod serve;
pub mod totals;

use std::io::Write;

use anyhow::Context;

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
            Mode::Relay(config) => kube_metrics_relay::run(config).await,
            Mode::Node(config) => node::run(config).await,
        }
    }
}

/// `-M`: one collection, text 0.0.4 on stdout.
fn dump(config: scrape::ScrapeConfig) -> anyhow::Result<()> {
    let mut scraper = scrape::Scraper::new(config, identity::Env::from_env());
    let metrics = scraper.scrape();
    let mut out = Vec::with_capacity(32 * 1024);
    match exposition::encode(&metrics, exposition::Format::Text, &mut out) {
        Ok(()) => {}
        Err(never) => match never {},
    }
    std::io::stdout()
        .lock()
        .write_all(&out)
        .context("failed to write metrics to stdout")
}
