//! The one logging setup: an EnvFilter directive and plain or JSON lines, always on stderr
//! (the collector's stdout belongs to `-M`).
//!
//! The flags carry no env twin: each binary names its own (`KMC_LOG_LEVEL`, `KMW_LOG_LEVEL`, …)
//! with [`log_args!`](crate::log_args), because the manifests set those names.

pub use tracing_subscriber::EnvFilter;

/// How log events are written to stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object per event, with the span stack as a list.
    Json,
}

/// Logging flags, flattened into each binary's arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct LogArgs {
    /// Log filter, in tracing's EnvFilter syntax: a level (`info`) or directives
    /// (`info,kube_metrics_runtime=debug`).
    #[arg(long, default_value = "info")]
    pub log_level: String,

    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Plain)]
    pub log_format: LogFormat,
}

/// Defines a binary's `LogArgs`: [`LogArgs`] under that binary's env names (`$level` for
/// `--log-level`, `$format` for `--log-format`), to flatten into each of its subcommands.
// rustfmt re-indents the attribute below on every run (it is not idempotent inside macros).
#[rustfmt::skip]
#[macro_export]
macro_rules! log_args {
    ($level:expr, $format:expr) => {
        /// `--log-level` and `--log-format`, with this binary's env names.
        #[derive(Clone, Debug, clap::Args)]
        // The inner struct's group already gathers these flags; a second of the same name clashes.
        #[group(skip)]
        #[command(mut_arg("log_level", |a| a.env($level)), mut_arg("log_format", |a| a.env($format)))]
        pub struct LogArgs {
            #[command(flatten)]
            pub args: $crate::log::LogArgs,
        }

        impl LogArgs {
            /// Parses the filter, so a typo fails before anything starts.
            pub fn filter(&self) -> Result<$crate::log::EnvFilter, $crate::log::LogError> {
                self.args.filter()
            }

            /// Installs the global subscriber. A second call (tests) is a no-op.
            pub fn init(&self) -> Result<(), $crate::log::LogError> {
                self.args.init()
            }
        }
    };
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
    /// Parses the filter, so a typo can fail before anything starts.
    pub fn filter(&self) -> Result<EnvFilter, LogError> {
        EnvFilter::try_new(&self.log_level).map_err(|source| LogError {
            filter: self.log_level.clone(),
            source,
        })
    }

    /// Installs the global subscriber. A second call (tests run servers more than once) keeps
    /// the first one.
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

/// An error and its causes on one line, `error: cause: cause`, for a log field or a one-line
/// message; a cause whose text its error already shows (as many wrappers print their source) is
/// not repeated.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    #[command(mut_arg("log_level", |a| a.env("KMRT_TEST_LOG_LEVEL")))]
    struct Cli {
        #[command(flatten)]
        log: LogArgs,
    }

    fn mk(level: &str) -> LogArgs {
        LogArgs {
            log_level: level.into(),
            log_format: LogFormat::Plain,
        }
    }

    #[test]
    fn accepts_directives_and_rejects_a_malformed_filter() {
        assert!(mk("info,kube_metrics_runtime=debug").filter().is_ok());
        let error = mk("kube_metrics_runtime=loud").filter().unwrap_err();
        assert!(error.to_string().contains("loud"), "{error}");
    }

    #[test]
    fn flags_parse_and_a_binary_can_add_its_env_twin() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["x", "--log-format", "json", "--log-level", "debug"]);
        let log = cli.unwrap().log;
        assert_eq!(
            (log.log_level.as_str(), log.log_format),
            ("debug", LogFormat::Json)
        );
        let level = Cli::command()
            .get_arguments()
            .find(|a| a.get_id() == "log_level")
            .and_then(|a| a.get_env().map(|e| e.to_owned()));
        assert_eq!(
            level.as_deref(),
            Some(std::ffi::OsStr::new("KMRT_TEST_LOG_LEVEL"))
        );
    }
}
