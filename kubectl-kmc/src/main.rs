//! `kubectl kmc`: see the library for the commands.
use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = kubectl_kmc::Cli::parse();
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
