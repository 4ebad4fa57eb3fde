//! `kube-metrics-webhook`: the mutating admission webhook (and its `certgen` helper).
use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match kube_metrics_webhook::Args::parse().run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` prints the whole context chain on one line.
            eprintln!("kube-metrics-webhook: {error:#}");
            ExitCode::FAILURE
        }
    }
}
