//! `kubectl kmc`, the kubectl plugin of kube-metrics-collector (docs/kubectl-kmc.md):
//!
//! - `check`: is the injection path sound, and what happened to one VM ([`check`]);
//! - `top`: memory and CPU per VM and per process role, from Prometheus ([`top`]);
//! - `recommend`: KubeVirt overhead settings from the measured history ([`recommend`]).
//!
//! Decisions are pure functions over plain data; the Kubernetes API ([`cluster`]) and Prometheus
//! ([`prom`]) are reached only by the `gather`/`fetch` functions of each command, and every per-VM
//! value is read as the recording rules define it ([`fleet`]), from the series KubeVirt vouches
//! for ([`vouch`]). Everything printed is safe to read and to paste ([`text`]): text from the
//! cluster or Prometheus is escaped, and a name reaches a printed command only when it is a
//! Kubernetes name, shell-quoted.

pub mod check;
pub mod cli;
pub mod cluster;
pub mod complete;
pub mod fleet;
pub mod prom;
pub mod recommend;
mod table;
pub mod text;
pub mod top;
pub mod units;
pub mod vouch;

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};

pub use cli::Cli;
use cli::{CheckArgs, CheckOutput, Command, PrometheusArgs, RecommendArgs, TopArgs};

/// Exit code when `check` ran and some line failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code when a command could not run (bad input, no cluster, no permission, no Prometheus),
/// or `check` could not make a check it was asked for and none failed.
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
    validate_names(&cli)?;
    let mut out = Output::default();
    let code = match &cli.command {
        Command::Check(args) => run_check(&cli, args, &mut out.text).await?,
        Command::Top(args) => run_top(&cli, args, &mut out).await?,
        Command::Recommend(args) => run_recommend(&cli, args, &mut out).await?,
        Command::Completion { shell } => {
            out.text = complete::script(*shell);
            ExitCode::SUCCESS
        }
        Command::Complete { words } => {
            out.text = complete::candidates(words);
            ExitCode::SUCCESS
        }
    };
    for note in &out.notes {
        eprintln!("kubectl kmc: {}", text::escape(note));
    }
    print!("{}", out.text);
    Ok(code)
}

/// What a command prints: its answer on stdout, its notes (what it left out, and why) on stderr,
/// so that `-o json` stays JSON.
#[derive(Debug, Default)]
struct Output {
    text: String,
    notes: Vec<String>,
}

/// The names given on the command line are Kubernetes names: they reach API paths, PromQL
/// filters and printed commands.
fn validate_names(cli: &Cli) -> Result<(), text::NameError> {
    if let Some(ns) = &cli.namespace {
        text::dns1123_label(ns, "namespace")?;
    }
    let (vm, relayed) = match &cli.command {
        Command::Check(args) => {
            text::dns1123_subdomain(&args.webhook_config, "MutatingWebhookConfiguration")?;
            (args.vm.as_deref(), Some(&args.relayed))
        }
        Command::Top(args) => (args.vm.as_deref(), Some(&args.relayed)),
        Command::Recommend(args) => (None, Some(&args.relayed)),
        Command::Completion { .. } | Command::Complete { .. } => (None, None),
    };
    if let Some(ns) = relayed.and_then(|r| r.user_workload_monitoring.as_deref()) {
        text::dns1123_label(ns, "install namespace")?;
    }
    if let Some(vm) = vm {
        text::dns1123_subdomain(vm, "VirtualMachine")?;
    }
    Ok(())
}

async fn run_check(cli: &Cli, args: &CheckArgs, out: &mut String) -> Result<ExitCode> {
    let cluster = cluster::connect(cli.kubeconfig.as_deref(), cli.context.as_deref()).await?;
    // A bad --prometheus stops the command; a Prometheus not found leaves its lines unchecked.
    let prometheus = match &args.prometheus.prometheus {
        Some(url) => Ok(prometheus(cli, url)?),
        None => discover(cli, &args.prometheus, &cluster)
            .await
            .map_err(|e| e.to_string()),
    };
    let request = check::Request {
        webhook_name: args.webhook_config.clone(),
        namespace: cli
            .namespace
            .clone()
            .unwrap_or_else(|| cluster.default_namespace.clone()),
        vm: args.vm.clone(),
        prometheus,
        relayed: args.relayed.relayed(),
    };
    let facts = check::gather(&cluster, &request).await?;
    let sections = check::checklist::checklist(&facts);
    out.push_str(&match args.output {
        CheckOutput::Text => check::render::text(&sections),
        CheckOutput::Json => check::render::json(&sections)?,
    });
    Ok(match check::render::Summary::of(&sections).overall() {
        check::render::Overall::Passed => ExitCode::SUCCESS,
        check::render::Overall::Failed => ExitCode::from(EXIT_FAILED),
        check::render::Overall::Incomplete => ExitCode::from(EXIT_ERROR),
    })
}

async fn run_top(cli: &Cli, args: &TopArgs, out: &mut Output) -> Result<ExitCode> {
    let prometheus = match &args.prometheus.prometheus {
        Some(url) => prometheus(cli, url)?,
        None => {
            let cluster =
                cluster::connect(cli.kubeconfig.as_deref(), cli.context.as_deref()).await?;
            discover(cli, &args.prometheus, &cluster).await?
        }
    };
    let scope = fleet::Scope {
        namespace: cli.namespace.clone(),
        vm: args.vm.clone(),
    };
    let relayed = args.relayed.relayed();
    let (usage, screen) = top::fetch(&prometheus, &scope, &args.vouch, &relayed)
        .await
        .map_err(|e| with_hint(e, &relayed))?;
    out.notes.extend(top::notes(&screen));
    out.text
        .push_str(&top::render(&usage, args.output, args.sort_by)?);
    Ok(ExitCode::SUCCESS)
}

async fn run_recommend(cli: &Cli, args: &RecommendArgs, out: &mut Output) -> Result<ExitCode> {
    // Without a cluster the advice still stands: the ratio then goes to the KubeVirt CR at its
    // usual name, and stderr says so.
    let cluster = cluster::connect(cli.kubeconfig.as_deref(), cli.context.as_deref()).await;
    let prometheus = match (&args.prometheus.prometheus, &cluster) {
        (Some(url), _) => prometheus(cli, url)?,
        (None, Ok(cluster)) => discover(cli, &args.prometheus, cluster).await?,
        (None, Err(error)) => {
            anyhow::bail!("no --prometheus, and no cluster to find one in: {error}")
        }
    };
    let facts = match &cluster {
        Ok(cluster) => recommend::target::gather(cluster).await,
        Err(error) => recommend::target::Facts::unread(&error.to_string()),
    };
    let target =
        recommend::target::decide(&facts, args.current_ratio).map_err(anyhow::Error::msg)?;
    out.notes.extend(target.notes.iter().cloned());
    let mut settings = args.settings();
    settings.current_ratio = target.current_ratio;
    let scope = fleet::Scope {
        namespace: cli.namespace.clone(),
        vm: None,
    };
    let relayed = args.relayed.relayed();
    let fleet = recommend::fetch(&prometheus, &scope, &settings, &args.vouch, &relayed)
        .await
        .map_err(|e| with_hint(e, &relayed))?;
    if !fleet.screen.vouched {
        out.notes.push(top::UNVOUCHED.to_owned());
    }
    let advice = recommend::math::recommend(&fleet, &settings)?;
    out.text.push_str(&recommend::render::render_for(
        &advice,
        &settings,
        &target,
        args.output,
    )?);
    Ok(ExitCode::SUCCESS)
}

/// `error`, with what to try when it is the refusal `fleet::hint` knows.
fn with_hint(error: anyhow::Error, relayed: &fleet::Relayed) -> anyhow::Error {
    match fleet::hint(&format!("{error:#}"), relayed) {
        Some(hint) => error.context(hint),
        None => error,
    }
}

fn prometheus(cli: &Cli, url: &str) -> Result<prom::Prometheus, prom::PromError> {
    let access = prom::Access {
        ca_file: cli.prometheus_ca.clone(),
        token: cli.prometheus_token.clone(),
        max_bytes: max_bytes(cli),
    };
    prom::Prometheus::new(url, &at(cli), &access)
}

/// The cluster's prometheus-operator Prometheus, through the API server.
async fn discover(
    cli: &Cli,
    args: &PrometheusArgs,
    cluster: &cluster::Cluster,
) -> Result<prom::Prometheus, prom::discover::DiscoverError> {
    let wanted = args.prometheus_object.as_deref();
    prom::discover::find(cluster, wanted, &at(cli), max_bytes(cli)).await
}

fn max_bytes(cli: &Cli) -> u64 {
    cli.prometheus_max_mib * 1024 * 1024
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
