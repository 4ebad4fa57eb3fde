//! `kubectl kmc`: see the library for the commands.
use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = kubectl_kmc::Cli::parse();
    match kubectl_kmc::run(cli) {
        Ok(code) => code,
        Err(error) => {
            // One line: the chain of causes, outermost first.
            eprintln!("kubectl kmc: {error:#}");
            ExitCode::from(kubectl_kmc::EXIT_ERROR)
        }
    }
}
