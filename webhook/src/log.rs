//! Logging setup: a filter and a plain or JSON format, from flags with env twins.
use tracing_subscriber::EnvFilter;

/// How log events are written to stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object per event, with the span stack as a list.
    Json,
}

/// Logging flags, flattened into every subcommand.
#[derive(Clone, Debug, clap::Args)]
pub struct LogArgs {
    /// Log filter, in `tracing` EnvFilter syntax (e.g. `info` or `kube_metrics_webhook=debug`).
    #[arg(long, env = "KMW_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Log format.
    #[arg(long, env = "KMW_LOG_FORMAT", value_enum, default_value_t = LogFormat::Plain)]
    pub log_format: LogFormat,
}

/// A filter that `tracing` cannot parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid --log-level {filter:?}")]
pub struct LogError {
    filter: String,
    #[source]
    source: tracing_subscriber::filter::ParseError,
}

// === impl LogArgs ===

impl LogArgs {
    /// Parses the filter; called from `into_config` so a typo fails before anything starts.
    pub fn filter(&self) -> Result<EnvFilter, LogError> {
        EnvFilter::try_new(&self.log_level).map_err(|source| LogError {
            filter: self.log_level.clone(),
            source,
        })
    }

    /// Installs the global subscriber. A second call (tests) is a no-op.
    pub fn init(&self) -> Result<(), LogError> {
        let filter = self.filter()?;
        // Colour codes only for a person at a terminal, never into a log pipeline.
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(ansi);
        // `try_init` fails only when a subscriber is already set, which is fine.
        let _ = match self.log_format {
            LogFormat::Plain => builder.try_init(),
            LogFormat::Json => builder
                .json()
                .with_current_span(false)
                .with_span_list(true)
                .try_init(),
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk(level: &str) -> LogArgs {
        LogArgs {
            log_level: level.into(),
            log_format: LogFormat::Plain,
        }
    }

    #[test]
    fn accepts_directives() {
        assert!(mk("info,kube_metrics_webhook=debug").filter().is_ok());
    }

    #[test]
    fn rejects_a_malformed_filter() {
        let error = mk("kube_metrics_webhook=loud").filter().unwrap_err();
        assert!(error.to_string().contains("loud"), "{error}");
    }
}
