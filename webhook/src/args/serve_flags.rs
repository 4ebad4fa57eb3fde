//! The flags of `serve` (also accepted without a subcommand) -> `serve::Config`.
use std::{net::SocketAddr, path::PathBuf, time::Duration};

use super::{ArgsError, Config};
use crate::{
    log::LogArgs, policy::PolicyArgs, serve, state, tls::PairFiles, vmi::lookup::VmiLookups,
};

/// The API server waits at most 30 s for a webhook; a lookup budget at or past that only delays
/// the answer the API server has stopped waiting for.
pub(super) const MAX_LOOKUP_BUDGET: Duration = Duration::from_secs(30);

/// Flags of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// HTTPS address for POST /mutate.
    #[arg(long, env = "KMW_LISTEN", default_value = "0.0.0.0:8443")]
    listen: SocketAddr,

    /// Plain-HTTP address for /healthz, /readyz and /metrics.
    #[arg(long, env = "KMW_ADMIN_LISTEN", default_value = "0.0.0.0:8080")]
    admin_listen: SocketAddr,

    /// PEM certificate chain, leaf first; re-read when it changes.
    #[arg(
        long,
        env = "KMW_TLS_CERT",
        default_value = "/etc/kube-metrics-webhook/tls/tls.crt"
    )]
    tls_cert: PathBuf,

    /// PEM private key of the certificate; re-read when it changes.
    #[arg(
        long,
        env = "KMW_TLS_KEY",
        default_value = "/etc/kube-metrics-webhook/tls/tls.key"
    )]
    tls_key: PathBuf,

    /// Read each launcher pod's VirtualMachineInstance from the API server (`on`), or decide from
    /// the pod alone and never contact the API server (`off`: for clusters without the RBAC).
    #[arg(long, env = "KMW_VMI_LOOKUP", value_enum, default_value_t = Switch::On)]
    vmi_lookup: Switch,

    /// Time one VMI lookup may take (cache, then a GET), e.g. `2s` or `500ms`; past it the pod's own
    /// signals decide. Keep it well under the webhook's timeoutSeconds (5 s in the manifests).
    #[arg(
        long,
        env = "KMW_VMI_LOOKUP_BUDGET",
        default_value = "2s",
        value_parser = humantime::parse_duration
    )]
    vmi_lookup_budget: Duration,

    #[command(flatten)]
    log: LogArgs,

    #[command(flatten)]
    policy: PolicyArgs,
}

/// A feature switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

impl ServeArgs {
    pub(super) fn into_config(self) -> Result<(LogArgs, Config), ArgsError> {
        let Self {
            listen,
            admin_listen,
            tls_cert,
            tls_key,
            vmi_lookup,
            vmi_lookup_budget,
            log,
            policy,
        } = self;
        log.filter()?;
        if vmi_lookup_budget.is_zero() || vmi_lookup_budget >= MAX_LOOKUP_BUDGET {
            return Err(ArgsError::LookupBudget(vmi_lookup_budget));
        }
        // Port 0 means "any free port" (tests), so two zeros do not clash.
        if listen == admin_listen && listen.port() != 0 {
            return Err(ArgsError::SameAddress(listen));
        }
        if tls_cert == tls_key {
            return Err(ArgsError::SameFile);
        }
        let config = serve::Config {
            listen,
            admin_listen,
            tls: PairFiles {
                cert: tls_cert,
                key: tls_key,
            },
            policy: policy.into_policy()?,
            limits: state::Limits::default(),
            vmi: match vmi_lookup {
                Switch::On => VmiLookups::Cluster {
                    budget: vmi_lookup_budget,
                },
                Switch::Off => VmiLookups::Off,
            },
        };
        Ok((log, Config::Serve(Box::new(config))))
    }
}
