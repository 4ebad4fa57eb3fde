//! `kube-metrics-collector`: per-process metrics for the pod it runs in.
use clap::Parser;
use std::process::ExitCode;
use std::time::Duration;

/// How long the blocking thread that reads /proc outlives its last collection. Tokio's default
/// (10 s) is shorter than a scrape interval, so every scrape paid for a new thread (clone, stack,
/// first-touch page faults); one idle thread costs nothing.
const BLOCKING_KEEP_ALIVE: Duration = Duration::from_secs(24 * 60 * 60);

fn main() -> ExitCode {
    // One thread for I/O: a scrape is sequential /proc reads (in `spawn_blocking`, coalesced, so
    // one blocking thread) and a few small responses.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_keep_alive(BLOCKING_KEEP_ALIVE)
        .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(kube_metrics_collector::Args::parse().run()),
        Err(error) => Err(anyhow::Error::new(error).context("failed to start the runtime")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` prints the whole context chain on one line.
            eprintln!("kube-metrics-collector: {error:#}");
            ExitCode::FAILURE
        }
    }
}
