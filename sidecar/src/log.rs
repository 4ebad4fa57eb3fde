//! Logging setup: an env-filter directive and plain or JSON lines, always on stderr
//! (stdout belongs to `-M`).

use tracing_subscriber::EnvFilter;

/// Output format of log lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Plain,
    /// One JSON object per event.
    Json,
}

/// Logging flags.
#[derive(Clone, Debug, clap::Args)]
pub struct LogArgs {
    /// Log filter: a level (`info`) or tracing-subscriber directives (`kube_metrics_collector=debug`).
    #[arg(long, env = kube_metrics_contract::sidecar::ENV_LOG_LEVEL, default_value = "info")]
    pub log_level: String,

    /// Log line format.
    #[arg(long, env = "KMC_LOG_FORMAT", value_enum, default_value_t = LogFormat::Plain)]
    pub log_format: LogFormat,
}

// === impl LogArgs ===

impl LogArgs {
    /// Installs the global subscriber; a bad filter is an error the caller reports.
    pub fn init(&self) -> anyhow::Result<()> {
        let filter = EnvFilter::try_new(&self.log_level).map_err(|error| {
            anyhow::anyhow!("invalid --log-level {:?}: {error}", self.log_level)
        })?;
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
        let result = match self.log_format {
            LogFormat::Plain => builder.try_init(),
            LogFormat::Json => builder.json().try_init(),
        };
        // Already installed (tests call `run` more than once): keep the first one.
        drop(result);
        Ok(())
    }
}
