//! `kubectl kmc`, the kubectl plugin of kube-metrics-collector (docs/kubectl-kmc.md):
//!
//! - `check`: is the injection path sound, and what happened to one VM ([`check`]);
//! - `top`: memory and CPU per VM and per process role, from Prometheus ([`top`]);
//! - `recommend`: KubeVirt overhead settings from the measured history ([`recommend`]).
//!
//! Decisions are pure functions over plain data; the Kubernetes API ([`cluster`]) and Prometheus
//! ([`prom`]) are reached only by the `gather`/`fetch` functions of each command, and every per-VM
//! value is read as the recording rules define it ([`fleet`]).

pub mod check;
pub mod cli;
pub mod cluster;
pub mod fleet;
pub mod prom;
pub mod recommend;
mod table;
pub mod top;
pub mod units;

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};

pub use cli::Cli;
use cli::{CheckArgs, Command, RecommendArgs, TopArgs};

/// Exit code when `check` ran and some line failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code when a command could not run (bad input, no cluster, no permission, no Prometheus).
pub const EXIT_ERROR: u8 = 2;

/// Runs one command to its exit code; errors are for `main` to print.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(dispatch(cli))
}

async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let mut out = String::new();
    let code = match &cli.command {
        Command::Check(args) => run_check(&cli, args, &mut out).await?,
        Command::Top(args) => run_top(&cli, args, &mut out).await?,
        Command::Recommend(args) => run_recommend(&cli, args, &mut out).await?,
    };
    print!("{out}");
    Ok(code)
}

async fn run_check(cli: &Cli, args: &CheckArgs, out: &mut String) -> Result<ExitCode> {
    let cluster = cluster::connect(cli.kubeconfig.as_deref(), cli.context.as_deref()).await?;
    let prometheus = match &args.prometheus {
        Some(url) => Some(prometheus(cli, url)?),
        None => None,
    };
    let request = check::Request {
        webhook_name: args.webhook_config.clone(),
        namespace: cli
            .namespace
            .clone()
            .unwrap_or_else(|| cluster.default_namespace.clone()),
        vm: args.vm.clone(),
        prometheus,
    };
    let facts = check::gather(&cluster, &request).await?;
    let sections = check::verdict::checklist(&facts);
    out.push_str(&check::verdict::render(&sections));
    Ok(if check::verdict::all_passed(&sections) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

async fn run_top(cli: &Cli, args: &TopArgs, out: &mut String) -> Result<ExitCode> {
    let prometheus = prometheus(cli, &args.prometheus)?;
    let scope = fleet::Scope {
        namespace: cli.namespace.clone(),
        vm: args.vm.clone(),
    };
    let usage = top::fetch(&prometheus, &scope).await?;
    out.push_str(&top::render(&usage, args.output, args.sort_by)?);
    Ok(ExitCode::SUCCESS)
}

async fn run_recommend(cli: &Cli, args: &RecommendArgs, out: &mut String) -> Result<ExitCode> {
    let prometheus = prometheus(cli, &args.prometheus)?;
    let settings = args.settings();
    let scope = fleet::Scope {
        namespace: cli.namespace.clone(),
        vm: None,
    };
    let fleet = recommend::fetch(&prometheus, &scope, &settings).await?;
    let advice = recommend::math::recommend(&fleet, &settings)?;
    out.push_str(&recommend::render::render(&advice, &settings, args.output)?);
    Ok(ExitCode::SUCCESS)
}

fn prometheus(cli: &Cli, url: &str) -> Result<prom::Prometheus, prom::PromError> {
    let access = prom::Access {
        ca_file: cli.prometheus_ca.clone(),
        token: cli.prometheus_token.clone(),
    };
    prom::Prometheus::new(url, &at(cli), &access)
}

/// `--time`, else now, for Prometheus' `time` parameter.
fn at(cli: &Cli) -> String {
    cli.time.clone().unwrap_or_else(|| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        format!("{now:.3}")
    })
}
