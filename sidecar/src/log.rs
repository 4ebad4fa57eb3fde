//! The collector's logging flags: the shared `kube_metrics_runtime::log` flags under the
//! collector's env names, which the manifests set.

use kube_metrics_runtime::log::LogError;

/// `--log-level` / `KMC_LOG_LEVEL` and `--log-format` / `KMC_LOG_FORMAT`.
#[derive(Clone, Debug, clap::Args)]
// The inner struct's group already gathers these flags; a second group of the same name clashes.
#[group(skip)]
#[command(
    mut_arg("log_level", |a| a.env(kube_metrics_contract::sidecar::ENV_LOG_LEVEL)),
    mut_arg("log_format", |a| a.env("KMC_LOG_FORMAT")),
)]
pub struct LogArgs {
    #[command(flatten)]
    pub args: kube_metrics_runtime::log::LogArgs,
}

// === impl LogArgs ===

impl LogArgs {
    /// Installs the global subscriber; a bad filter is an error the caller reports.
    pub fn init(&self) -> Result<(), LogError> {
        self.args.init()
    }
}
