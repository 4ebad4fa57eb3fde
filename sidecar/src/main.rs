//! `kube-metrics-collector`: per-process metrics for the pod it runs in.
use clap::Parser;
use std::process::ExitCode;

// One thread: a scrape is sequential /proc reads (in `spawn_blocking`) and a few small responses.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match kube_metrics_collector::Args::parse().run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` prints the whole context chain on one line.
            eprintln!("kube-metrics-collector: {error:#}");
            ExitCode::FAILURE
        }
    }
}
