//! `kubectl kmc`: see the library for the commands.
use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _};

fn main() -> ExitCode {
    let matches = kubectl_kmc::Cli::command()
        .bin_name("kubectl kmc")
        .get_matches();
    let cli = kubectl_kmc::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match kubectl_kmc::run(cli) {
        Ok(code) => code,
        Err(error) => {
            // One line: the chain of causes, outermost first, escaped: the API server's and
            // Prometheus' messages can carry a tenant's text.
            let line = format!("{error:#}");
            eprintln!("kubectl kmc: {}", kubectl_kmc::text::escape(&line));
            ExitCode::from(kubectl_kmc::EXIT_ERROR)
        }
    }
}
