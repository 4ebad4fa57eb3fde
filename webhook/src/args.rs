//! Flags (with `KMW_*` env twins) -> a validated `Config`, and `Args::run`, the wiring.
use anyhow::Context as _;
use std::{net::SocketAddr, path::PathBuf, time::Duration};

use crate::{
    certgen::{self, Target},
    log::LogArgs,
    policy::{PolicyArgs, PolicyError},
    serve::{self, VmiLookups},
    tls::{self, PairFiles},
};

/// The API server waits at most 30 s for a webhook; a lookup budget at or past that only delays
/// the answer the API server has stopped waiting for.
const MAX_LOOKUP_BUDGET: Duration = Duration::from_secs(30);

/// Mutating admission webhook that injects kube-metrics-collector into opted-in virt-launcher pods.
///
/// Without a subcommand it serves (same as `serve`).
#[derive(Debug, clap::Parser)]
#[command(
    name = "kube-metrics-webhook",
    version,
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

// === impl ServeArgs ===

impl ServeArgs {
    fn into_config(self) -> Result<(LogArgs, Config), ArgsError> {
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
            limits: serve::Limits::default(),
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

// === impl CertgenArgs ===

impl CertgenArgs {
    fn into_config(self) -> Result<(LogArgs, Config), ArgsError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    fn parse(args: &[&str]) -> Result<Config, String> {
        let args = Args::try_parse_from(
            std::iter::once("kube-metrics-webhook").chain(args.iter().copied()),
        )
        .map_err(|e| e.to_string())?;
        args.into_config()
            .map(|(_, config)| config)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn clap_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn serves_by_default_with_the_documented_defaults() {
        for args in [&[][..], &["serve"][..]] {
            let Ok(Config::Serve(config)) = parse(args) else {
                panic!("{args:?} must serve")
            };
            assert_eq!(config.listen, "0.0.0.0:8443".parse().unwrap());
            assert_eq!(config.admin_listen, "0.0.0.0:8080".parse().unwrap());
            assert_eq!(
                config.tls.cert,
                PathBuf::from("/etc/kube-metrics-webhook/tls/tls.crt")
            );
            assert_eq!(
                config.tls.key,
                PathBuf::from("/etc/kube-metrics-webhook/tls/tls.key")
            );
        }
    }

    #[test]
    fn top_level_flags_and_serve_flags_mean_the_same() {
        for args in [
            &["--listen", "127.0.0.1:9443"][..],
            &["serve", "--listen", "127.0.0.1:9443"][..],
        ] {
            let Ok(Config::Serve(config)) = parse(args) else {
                panic!("{args:?}")
            };
            assert_eq!(config.listen, "127.0.0.1:9443".parse().unwrap());
        }
    }

    #[test]
    fn rejects_one_address_for_both_listeners() {
        let error = parse(&[
            "--listen",
            "127.0.0.1:9000",
            "--admin-listen",
            "127.0.0.1:9000",
        ])
        .unwrap_err();
        assert!(error.contains("both 127.0.0.1:9000"), "{error}");
    }

    #[test]
    fn vmi_lookup_is_on_with_a_two_second_budget_by_default() {
        let Ok(Config::Serve(config)) = parse(&[]) else {
            panic!("must serve")
        };
        assert!(
            matches!(config.vmi, VmiLookups::Cluster { budget } if budget == Duration::from_secs(2)),
            "{:?}",
            config.vmi
        );
    }

    #[test]
    fn vmi_lookup_flags() {
        let Ok(Config::Serve(config)) = parse(&["--vmi-lookup", "off"]) else {
            panic!("must serve")
        };
        assert!(matches!(config.vmi, VmiLookups::Off), "{:?}", config.vmi);
        let Ok(Config::Serve(config)) = parse(&["--vmi-lookup-budget", "750ms"]) else {
            panic!("must serve")
        };
        assert!(
            matches!(config.vmi, VmiLookups::Cluster { budget } if budget == Duration::from_millis(750)),
            "{:?}",
            config.vmi
        );
        for bad in ["0s", "30s", "1h"] {
            let error = parse(&["--vmi-lookup-budget", bad]).unwrap_err();
            assert!(error.contains("--vmi-lookup-budget"), "{bad}: {error}");
        }
        assert!(
            parse(&["--vmi-lookup-budget", "2"]).is_err(),
            "a unit is required"
        );
        assert!(parse(&["--vmi-lookup", "maybe"]).is_err());
    }

    #[test]
    fn rejects_one_file_for_cert_and_key() {
        let error =
            parse(&["--tls-cert", "/tls/pair.pem", "--tls-key", "/tls/pair.pem"]).unwrap_err();
        assert!(error.contains("same file"), "{error}");
    }

    #[test]
    fn rejects_a_bad_log_filter() {
        assert!(
            parse(&["--log-level", "x=loud"])
                .unwrap_err()
                .contains("--log-level")
        );
    }

    #[test]
    fn certgen_to_files_needs_no_cluster_names() {
        let config = parse(&[
            "certgen",
            "--service",
            "kmw",
            "--namespace",
            "ns-0",
            "--out-dir",
            "/tmp/x",
        ]);
        let Ok(Config::Certgen(config)) = config else {
            panic!("{config:?}")
        };
        assert!(matches!(config.target, Target::Files(ref dir) if dir == &PathBuf::from("/tmp/x")));
        assert_eq!(config.validity, Duration::from_secs(3650 * 86_400));
    }

    #[test]
    fn certgen_for_the_cluster_needs_secret_and_webhook_config() {
        let missing = parse(&[
            "certgen",
            "--service",
            "kmw",
            "--namespace",
            "ns-0",
            "--secret",
            "s",
        ]);
        assert!(missing.unwrap_err().contains("--webhook-config"));
        let config = parse(&[
            "certgen",
            "--service",
            "kmw",
            "--namespace",
            "ns-0",
            "--secret",
            "s",
            "--webhook-config",
            "w",
        ]);
        let Ok(Config::Certgen(config)) = config else {
            panic!("{config:?}")
        };
        assert!(
            matches!(config.target, Target::Cluster { ref secret, ref webhook_config }
            if secret == "s" && webhook_config == "w")
        );
    }

    #[test]
    fn certgen_rejects_zero_validity() {
        let error = parse(&[
            "certgen",
            "--service",
            "a",
            "--namespace",
            "b",
            "--out-dir",
            "d",
            "--validity-days",
            "0",
        ]);
        assert!(error.unwrap_err().contains("--validity-days"));
    }

    #[test]
    fn serve_flags_do_not_mix_with_certgen() {
        assert!(parse(&["--listen", "127.0.0.1:1", "certgen", "--service", "a"]).is_err());
    }
}
