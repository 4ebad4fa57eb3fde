//! `kube-metrics-collector relay`: the node relay for pods whose network
//! belongs to the VM (docs/design.md, docs/kubevirt.md §4).
//!
//! At each scrape of its `/metrics` it finds the collectors' Unix sockets under
//! the kubelet root, keeps those of pods whose downward-API volume labels them
//! `scrape=relay`, fetches them all concurrently with a per-target timeout and
//! body cap, and serves one exposition in which each series carries the
//! `namespace` and `pod` the kubelet's pod log directory gives for that uid
//! (`crate::kubelet`). It needs read access to the kubelet root and the names
//! in the pod log directory, and write access to the sockets only: no hostPID,
//! no hostNetwork, no writes to the host. It follows no symlink below the
//! kubelet root, except the kubelet's own inside a downward-API volume.
//!
//! The collector must still state the same identity in its
//! `kubevirt_pod_infra_pod_info`; a socket that says otherwise, or nothing, is
//! left out and counted: it may not be our collector at all. Only the
//! collector's families, with their declared types and label names, are
//! forwarded (docs/threat-model.md), and no collector, nor all of a node's,
//! costs the relay more than the caps of `kube_metrics_contract::limits`.

pub mod discover;
pub mod fetch;
pub mod gather;
pub mod merge;
pub mod parse;
pub mod serve;
pub mod stats;

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use kube_metrics_contract::limits::MAX_BODY_BYTES;
use kube_metrics_contract::{relay, sidecar};

pub use discover::Layout;
pub use fetch::Limits;
pub use gather::Relay;

/// The relay's listener unless `--listen` says otherwise: every address, the relay's port.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    relay::PORT,
);

/// Flags of `kube-metrics-collector relay`.
#[derive(Debug, clap::Args)]
pub struct RelayArgs {
    /// Address to serve GET /metrics and /healthz on.
    #[arg(long, env = "KMC_RELAY_LISTEN", default_value_t = DEFAULT_LISTEN)]
    listen: SocketAddr,

    /// The kubelet's root directory (mounted read-only).
    #[arg(
        long,
        env = "KMC_RELAY_KUBELET_ROOT",
        default_value = relay::KUBELET_ROOT
    )]
    kubelet_root: PathBuf,

    /// Time one collector may take to answer in full, in milliseconds.
    #[arg(long, env = "KMC_RELAY_TIMEOUT_MS", default_value_t = 2000)]
    timeout_ms: u64,

    /// Name of the collector's emptyDir volume in the pod.
    #[arg(
        long,
        env = "KMC_RELAY_SOCKET_VOLUME",
        default_value = sidecar::SOCKET_VOLUME
    )]
    socket_volume: String,

    /// File name of the collector's socket inside that volume.
    #[arg(long, env = "KMC_RELAY_SOCKET_NAME", default_value = sidecar::SOCKET_NAME)]
    socket_name: String,

    /// Name of the webhook's downward-API volume in the pod, which attests its identity.
    #[arg(
        long,
        env = "KMC_RELAY_PODINFO_VOLUME",
        default_value = sidecar::PODINFO_VOLUME
    )]
    podinfo_volume: String,

    /// The kubelet's pod log directory (mounted read-only; only its entries' names are read).
    #[arg(
        long,
        env = "KMC_RELAY_POD_LOGS_DIR",
        default_value = relay::POD_LOGS_DIR
    )]
    pod_logs_dir: PathBuf,
}

/// Validated relay settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayConfig {
    pub listen: SocketAddr,
    pub layout: Layout,
    pub limits: Limits,
}

/// A flag value the relay cannot work with.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RelayArgsError {
    #[error("--timeout-ms must be at least 1")]
    ZeroTimeout,
    #[error("--{flag} must be a single file name, got {value:?}")]
    NotAFileName { flag: &'static str, value: String },
}

// === impl RelayArgs ===

impl RelayArgs {
    pub fn into_config(self) -> Result<RelayConfig, RelayArgsError> {
        let Self {
            listen,
            kubelet_root,
            timeout_ms,
            socket_volume,
            socket_name,
            podinfo_volume,
            pod_logs_dir,
        } = self;
        if timeout_ms == 0 {
            return Err(RelayArgsError::ZeroTimeout);
        }
        let volume = file_name("socket-volume", socket_volume)?;
        let socket = file_name("socket-name", socket_name)?;
        let podinfo_volume = file_name("podinfo-volume", podinfo_volume)?;
        Ok(RelayConfig {
            listen,
            layout: Layout {
                kubelet_root,
                volume,
                socket,
                podinfo_volume,
                pod_logs: pod_logs_dir,
            },
            limits: Limits {
                timeout: Duration::from_millis(timeout_ms),
                max_body_bytes: MAX_BODY_BYTES,
            },
        })
    }
}

/// Serves the relay on `config.listen` until SIGTERM or SIGINT.
pub async fn run(config: RelayConfig) -> anyhow::Result<()> {
    let listener = kube_metrics_runtime::listen::bind_tcp(config.listen)
        .await
        .with_context(|| format!("failed to bind {}", config.listen))?;
    let shutdown =
        kube_metrics_runtime::Shutdown::on_signal().context("failed to install signal handlers")?;
    tracing::info!(
        listen = %config.listen,
        kubelet_root = %config.layout.kubelet_root.display(),
        timeout_ms = config.limits.timeout.as_millis(),
        "Relay serving"
    );
    let relay = Arc::new(Relay::new(config.layout, config.limits));
    serve::serve(listener, relay, shutdown).await;
    tracing::info!("Relay stopped");
    Ok(())
}

/// The volume and socket names are joined under the kubelet root; a `/` or
/// `..` in them would walk somewhere else.
fn file_name(flag: &'static str, value: String) -> Result<String, RelayArgsError> {
    let mut components = Path::new(&value).components();
    match (components.next(), components.next()) {
        (Some(Component::Normal(_)), None) if !value.contains('/') => Ok(value),
        _ => Err(RelayArgsError::NotAFileName { flag, value }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        relay: RelayArgs,
    }

    fn parse(args: &[&str]) -> Result<RelayConfig, RelayArgsError> {
        let cli = Cli::try_parse_from(std::iter::once("relay").chain(args.iter().copied()));
        cli.unwrap_or_else(|e| panic!("{e}")).relay.into_config()
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_match_the_design() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.listen, SocketAddr::from(([0, 0, 0, 0], relay::PORT)));
        assert_eq!(
            config.layout.kubelet_root,
            PathBuf::from(relay::KUBELET_ROOT)
        );
        assert_eq!(config.layout.volume, sidecar::SOCKET_VOLUME);
        assert_eq!(config.layout.socket, sidecar::SOCKET_NAME);
        assert_eq!(config.layout.podinfo_volume, sidecar::PODINFO_VOLUME);
        assert_eq!(config.layout.pod_logs, PathBuf::from(relay::POD_LOGS_DIR));
        assert_eq!(config.limits.timeout, Duration::from_secs(2));
        assert_eq!(config.limits.max_body_bytes, MAX_BODY_BYTES);
    }

    #[test]
    fn rejects_zero_timeout() {
        assert!(matches!(
            parse(&["--timeout-ms", "0"]),
            Err(RelayArgsError::ZeroTimeout)
        ));
    }

    #[test]
    fn rejects_names_that_are_not_one_file_name() {
        for bad in ["", "..", ".", "a/b", "/abs", "a/"] {
            let result = parse(&["--socket-name", bad]);
            assert!(
                matches!(result, Err(RelayArgsError::NotAFileName { .. })),
                "{bad:?}"
            );
        }
        assert!(parse(&["--socket-volume", "my-vol"]).is_ok());
    }
}
