//! Flags (with `KMW_*` env twins) -> a validated `Config`, and `Args::run`, the wiring.
mod certgen_flags;
mod serve_flags;

use anyhow::Context as _;
use std::{net::SocketAddr, time::Duration};

use crate::{certgen, log::LogArgs, policy::PolicyError, serve, tls};

pub use certgen_flags::CertgenArgs;
use serve_flags::MAX_LOOKUP_BUDGET;
pub use serve_flags::{ServeArgs, Switch};

/// Mutating admission webhook that injects kube-metrics-collector into opted-in virt-launcher pods.
///
/// Without a subcommand it serves (same as `serve`).
#[derive(Debug, clap::Parser)]
#[command(
    name = "kube-metrics-webhook",
    version = kube_metrics_contract::build::long_version(),
    propagate_version = true,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    serve: ServeArgs,
}

/// What to do.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Serve admission reviews over HTTPS (the default).
    Serve(ServeArgs),
    /// Create a CA and serving certificate: write them to --out-dir, or create the Secret and
    /// patch caBundle into the MutatingWebhookConfiguration (idempotent).
    Certgen(CertgenArgs),
}

/// What `run` does, validated.
#[derive(Debug)]
pub enum Config {
    Serve(Box<serve::Config>),
    Certgen(certgen::Config),
}

/// A flag combination that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    #[error("--listen and --admin-listen are both {0}")]
    SameAddress(SocketAddr),
    #[error("--tls-cert and --tls-key are the same file")]
    SameFile,
    #[error("--validity-days must be at least 1")]
    ZeroValidity,
    #[error(
        "--vmi-lookup-budget must be more than 0 and less than {MAX_LOOKUP_BUDGET:?}, got {0:?}"
    )]
    LookupBudget(Duration),
    #[error(transparent)]
    Log(#[from] crate::log::LogError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

// === impl Args ===

impl Args {
    /// Validates every flag; nothing past this sees `Args`.
    pub fn into_config(self) -> Result<(LogArgs, Config), ArgsError> {
        match self.command {
            None | Some(Command::Serve(_)) => {
                let serve = match self.command {
                    Some(Command::Serve(serve)) => serve,
                    _ => self.serve,
                };
                serve.into_config()
            }
            Some(Command::Certgen(certgen)) => certgen.into_config(),
        }
    }

    /// Parses nothing more: validates, sets up logging, and runs the chosen command.
    pub async fn run(self) -> anyhow::Result<()> {
        let (log, config) = self.into_config()?;
        log.init()?;
        tls::install_crypto_provider();
        match config {
            Config::Serve(config) => {
                let shutdown = kube_metrics_runtime::Shutdown::on_signal()
                    .context("failed to install signal handlers")?;
                serve::run(*config, shutdown).await
            }
            Config::Certgen(config) => certgen::run(config).await,
        }
    }
}

#[cfg(test)]
mod tests;
