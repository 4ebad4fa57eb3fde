//! The webhook's logging flags: the shared `kube_metrics_runtime::log` flags under the webhook's
//! env names, which the manifests set.
use tracing_subscriber::EnvFilter;

pub use kube_metrics_runtime::log::{LogError, LogFormat};

/// `--log-level` / `KMW_LOG_LEVEL` and `--log-format` / `KMW_LOG_FORMAT`, flattened into every
/// subcommand.
#[derive(Clone, Debug, clap::Args)]
// The inner struct's group already gathers these flags; a second group of the same name clashes.
#[group(skip)]
#[command(
    mut_arg("log_level", |a| a.env("KMW_LOG_LEVEL")),
    mut_arg("log_format", |a| a.env("KMW_LOG_FORMAT")),
)]
pub struct LogArgs {
    #[command(flatten)]
    pub args: kube_metrics_runtime::log::LogArgs,
}

// === impl LogArgs ===

impl LogArgs {
    /// Parses the filter; called from `into_config` so a typo fails before anything starts.
    pub fn filter(&self) -> Result<EnvFilter, LogError> {
        self.args.filter()
    }

    /// Installs the global subscriber. A second call (tests) is a no-op.
    pub fn init(&self) -> Result<(), LogError> {
        self.args.init()
    }
}
