//! The flags of `certgen` -> `certgen::Config`.
use std::{path::PathBuf, time::Duration};

use super::{ArgsError, Config};
use crate::{
    certgen::{self, Target},
    log::LogArgs,
};

/// Flags of `certgen`.
#[derive(Debug, clap::Args)]
pub struct CertgenArgs {
    /// Name of the webhook's Service.
    #[arg(long, env = "KMW_CERTGEN_SERVICE")]
    service: String,

    /// Namespace of the Service and the Secret.
    #[arg(long, env = "KMW_CERTGEN_NAMESPACE")]
    namespace: String,

    /// Secret (type kubernetes.io/tls) to create, or to reuse when it already holds a valid pair.
    #[arg(long, env = "KMW_CERTGEN_SECRET", required_unless_present = "out_dir")]
    secret: Option<String>,

    /// MutatingWebhookConfiguration whose webhooks get the CA as caBundle.
    #[arg(
        long,
        env = "KMW_CERTGEN_WEBHOOK_CONFIG",
        required_unless_present = "out_dir"
    )]
    webhook_config: Option<String>,

    /// Write tls.crt, tls.key and ca.crt here instead of talking to the cluster.
    #[arg(long, env = "KMW_CERTGEN_OUT_DIR")]
    out_dir: Option<PathBuf>,

    /// Validity of the CA and the serving certificate, in days.
    #[arg(long, env = "KMW_CERTGEN_VALIDITY_DAYS", default_value_t = 3650)]
    validity_days: u32,

    #[command(flatten)]
    log: LogArgs,
}

impl CertgenArgs {
    pub(super) fn into_config(self) -> Result<(LogArgs, Config), ArgsError> {
        let Self {
            service,
            namespace,
            secret,
            webhook_config,
            out_dir,
            validity_days,
            log,
        } = self;
        log.filter()?;
        if validity_days == 0 {
            return Err(ArgsError::ZeroValidity);
        }
        // clap's `required_unless_present` guarantees both names when there is no --out-dir.
        let target = match (out_dir, secret, webhook_config) {
            (Some(dir), _, _) => Target::Files(dir),
            (None, Some(secret), Some(webhook_config)) => Target::Cluster {
                secret,
                webhook_config,
            },
            (None, _, _) => Target::Files(PathBuf::from(".")),
        };
        let validity = Duration::from_secs(u64::from(validity_days) * 86_400);
        Ok((
            log,
            Config::Certgen(certgen::Config {
                service,
                namespace,
                validity,
                target,
            }),
        ))
    }
}
