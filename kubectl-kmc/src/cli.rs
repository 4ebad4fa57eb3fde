//! Flags, with environment defaults (`KUBECTL_KMC_<FLAG>`; not `KMC_`, which is the collector's).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::recommend::math::Settings;
use crate::units;

/// kubectl plugin of kube-metrics-collector: check injection, show per-process usage, recommend
/// KubeVirt's memory overhead settings.
#[derive(Debug, Parser)]
// Usage says `kubectl kmc`: main sets that bin name at run time (a name with a space here would
// also reach the completion scripts, which it breaks).
#[command(name = "kubectl-kmc", version = kube_metrics_contract::build::long_version())]
pub struct Cli {
    /// The kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, global = true, env = "KUBECTL_KMC_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: its current context).
    #[arg(long, global = true, env = "KUBECTL_KMC_CONTEXT")]
    pub context: Option<String>,
    /// The namespace (check: default the context's; top and recommend: default all).
    #[arg(short, long, global = true, env = "KUBECTL_KMC_NAMESPACE")]
    pub namespace: Option<String>,
    /// Evaluate Prometheus queries at this instant (Unix seconds or RFC 3339) instead of now,
    /// e.g. the time a launcher pod was OOM-killed.
    #[arg(long, global = true, env = "KUBECTL_KMC_TIME")]
    pub time: Option<String>,
    /// PEM CA certificates to trust, besides the system's, for an https --prometheus.
    #[arg(long, global = true, env = "KUBECTL_KMC_PROMETHEUS_CA")]
    pub prometheus_ca: Option<PathBuf>,
    /// A bearer token for Prometheus (e.g. `$(oc whoami -t)` for OpenShift's thanos-querier).
    #[arg(
        long,
        global = true,
        env = "KUBECTL_KMC_PROMETHEUS_TOKEN",
        hide_env_values = true
    )]
    pub prometheus_token: Option<String>,
    /// The most MiB one Prometheus answer may have: past it the command stops, so that its memory
    /// stays bounded (an answer takes about six times its size once parsed).
    #[arg(long, global = true, env = "KUBECTL_KMC_PROMETHEUS_MAX_MIB", default_value_t = crate::prom::DEFAULT_MAX_MIB, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub prometheus_max_mib: u64,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Checklist of the injection path, and of one VM when named; exit 1 when a check fails, 2
    /// when one asked for could not be made.
    Check(CheckArgs),
    /// Memory and CPU per VM and per process role, from Prometheus.
    Top(TopArgs),
    /// additionalGuestMemoryOverheadRatio and per-VM addedOverhead from the measured history.
    Recommend(RecommendArgs),
    /// A shell completion script for kubectl-kmc, e.g. `source <(kubectl kmc completion bash)`.
    Completion { shell: clap_complete::Shell },
    /// Completions for `kubectl kmc ARGS…` in the protocol kubectl (1.26 and later) asks of a
    /// plugin's `kubectl_complete-kmc` (docs/kubectl-kmc.md).
    #[command(name = "__complete", hide = true)]
    Complete {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        words: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The VirtualMachine (or VMI) to check.
    pub vm: Option<String>,
    #[command(flatten)]
    pub prometheus: PrometheusArgs,
    /// The webhook's MutatingWebhookConfiguration.
    #[arg(
        long,
        env = "KUBECTL_KMC_WEBHOOK_CONFIG",
        default_value = "kube-metrics-collector"
    )]
    pub webhook_config: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "text")]
    pub output: CheckOutput,
    #[command(flatten)]
    pub relayed: RelayedArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CheckOutput {
    Text,
    Json,
}

/// Which Prometheus to ask (`crate::prom::discover`).
#[derive(Debug, Args)]
pub struct PrometheusArgs {
    /// Prometheus' base URL (http[s]://host:port[/prefix]). Without it, the one
    /// prometheus-operator Prometheus of the cluster, through the API server.
    #[arg(long, env = "KUBECTL_KMC_PROMETHEUS")]
    pub prometheus: Option<String>,
    /// Without --prometheus, which prometheus-operator Prometheus (NAMESPACE/NAME) to reach
    /// through the API server when there are several.
    #[arg(
        long,
        env = "KUBECTL_KMC_PROMETHEUS_OBJECT",
        conflicts_with = "prometheus"
    )]
    pub prometheus_object: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TopOutput {
    Table,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SortBy {
    Memory,
    Cpu,
}

/// Which series count as a VM's (`crate::vouch`).
#[derive(Debug, Args)]
pub struct VouchArgs {
    /// The scrape job of KubeVirt's own metrics, whose kubevirt_vmi_info vouches that a series
    /// belongs to a VM.
    #[arg(long, env = "KUBECTL_KMC_KUBEVIRT_JOB", default_value = crate::vouch::KUBEVIRT_JOB)]
    pub kubevirt_job: String,
    /// Where Prometheus has no kubevirt_vmi_info at all, count every series as a VM's anyway
    /// (any pod that serves the collector's families can then pose as one).
    #[arg(long, env = "KUBECTL_KMC_ALLOW_UNVOUCHED")]
    pub allow_unvouched: bool,
}

/// How Prometheus stores the series the node relay forwards (`crate::fleet::Relayed`).
#[derive(Debug, Args)]
pub struct RelayedArgs {
    /// Read relayed series as OpenShift's user-workload monitoring stores them: the VM's
    /// namespace and pod in exported_namespace/exported_pod, taken only from targets in this
    /// namespace, the add-on's (`--user-workload-monitoring` alone: kube-metrics-collector). Point
    /// --prometheus at Thanos Querier, which also serves KubeVirt's series.
    #[arg(
        long,
        env = "KUBECTL_KMC_USER_WORKLOAD_MONITORING",
        value_name = "INSTALL_NAMESPACE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = crate::fleet::INSTALL_NAMESPACE
    )]
    pub user_workload_monitoring: Option<String>,
}

impl RelayedArgs {
    pub fn relayed(&self) -> crate::fleet::Relayed {
        match &self.user_workload_monitoring {
            Some(namespace) => crate::fleet::Relayed::Exported {
                install_namespace: namespace.clone(),
            },
            None => crate::fleet::Relayed::Labelled,
        }
    }
}

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Only this VM (the VMI's name).
    pub vm: Option<String>,
    #[command(flatten)]
    pub prometheus: PrometheusArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: TopOutput,
    /// Order of VMs, and of roles within a VM, largest first.
    #[arg(long, value_enum, default_value = "memory")]
    pub sort_by: SortBy,
    #[command(flatten)]
    pub vouch: VouchArgs,
    #[command(flatten)]
    pub relayed: RelayedArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RecommendOutput {
    Table,
    Yaml,
    Json,
}

#[derive(Debug, Args)]
pub struct RecommendArgs {
    #[command(flatten)]
    pub prometheus: PrometheusArgs,
    /// How far back to look for each VM's peak.
    #[arg(long, env = "KUBECTL_KMC_RANGE", default_value = "7d", value_parser = units::parse_duration)]
    pub range: Duration,
    /// Share of the VMs not set aside (OOM-killed, leaking, outliers) that the ratio covers
    /// (nearest rank); with fewer than 1/(1 − quantile) of them, their median instead.
    #[arg(long, env = "KUBECTL_KMC_QUANTILE", default_value = "0.9", value_parser = units::parse_quantile)]
    pub quantile: f64,
    /// Headroom on top of the peaks: 10% or 0.1.
    #[arg(long, env = "KUBECTL_KMC_MARGIN", default_value = "10%", value_parser = units::parse_percent)]
    pub margin: f64,
    /// A VM whose samples span less than this is left out.
    #[arg(long, env = "KUBECTL_KMC_MIN_HISTORY", default_value = "24h", value_parser = units::parse_duration)]
    pub min_history: Duration,
    /// Refuse to recommend a ratio from fewer VMs with enough history.
    #[arg(long, env = "KUBECTL_KMC_MIN_VMS", default_value_t = 3)]
    pub min_vms: usize,
    /// Step of the peak search (a PromQL subquery); peaks between steps are missed.
    #[arg(long, env = "KUBECTL_KMC_RESOLUTION", default_value = "1m", value_parser = units::parse_duration)]
    pub resolution: Duration,
    /// The cluster's current additionalGuestMemoryOverheadRatio, already inside the estimates
    /// (default: read from the KubeVirt CR, else HyperConverged's jsonpatch annotation, else 1.0).
    #[arg(long, env = "KUBECTL_KMC_CURRENT_RATIO")]
    pub current_ratio: Option<f64>,
    /// Output format: `yaml` prints the patches to apply, each with its kubectl command.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: RecommendOutput,
    #[command(flatten)]
    pub vouch: VouchArgs,
    #[command(flatten)]
    pub relayed: RelayedArgs,
}

impl RecommendArgs {
    pub fn settings(&self) -> Settings {
        Settings {
            range: self.range,
            quantile: self.quantile,
            margin: self.margin,
            min_history: self.min_history,
            min_vms: self.min_vms,
            resolution: self.resolution,
            // Until the cluster is read (`recommend::target::decide`).
            current_ratio: self.current_ratio.unwrap_or(1.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_flags_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn top_and_recommend_take_kubevirts_job_and_the_cap() {
        let cli = Cli::parse_from([
            "kubectl-kmc",
            "top",
            "--prometheus",
            "http://p",
            "--kubevirt-job",
            "kv",
            "--allow-unvouched",
            "--prometheus-max-mib",
            "8",
        ]);
        let Command::Top(top) = &cli.command else {
            panic!("{cli:?}");
        };
        assert_eq!(top.vouch.kubevirt_job, "kv");
        assert!(top.vouch.allow_unvouched);
        assert_eq!(cli.prometheus_max_mib, 8);
        let defaults = Cli::parse_from(["kubectl-kmc", "recommend", "--prometheus", "http://p"]);
        let Command::Recommend(recommend) = &defaults.command else {
            panic!("{defaults:?}");
        };
        assert_eq!(recommend.vouch.kubevirt_job, "kubevirt-prometheus-metrics");
        assert!(!recommend.vouch.allow_unvouched);
        assert_eq!(defaults.prometheus_max_mib, 64);
        assert!(
            Cli::try_parse_from([
                "kubectl-kmc",
                "top",
                "--prometheus",
                "p",
                "--prometheus-max-mib",
                "0"
            ])
            .is_err()
        );
    }

    #[test]
    fn user_workload_monitoring_takes_an_optional_namespace_after_an_equals_sign() {
        let relayed = |args: &[&str]| {
            let cli = Cli::try_parse_from(args).map_err(|e| e.kind())?;
            Ok::<_, clap::error::ErrorKind>(match cli.command {
                Command::Top(top) => (top.relayed.relayed(), top.vm.unwrap_or_default()),
                Command::Recommend(r) => (r.relayed.relayed(), String::new()),
                other => panic!("{args:?}: {other:?}"),
            })
        };
        let exported = |ns: &str| crate::fleet::Relayed::Exported {
            install_namespace: ns.to_owned(),
        };
        let top = ["kubectl-kmc", "top", "--prometheus", "p"];
        assert_eq!(
            relayed(&top),
            Ok((crate::fleet::Relayed::Labelled, String::new()))
        );
        // Alone, it never takes the VM's name for a namespace.
        assert_eq!(
            relayed(&[&top[..], &["--user-workload-monitoring", "vm1"]].concat()),
            Ok((exported("kube-metrics-collector"), "vm1".to_owned()))
        );
        assert_eq!(
            relayed(&[&top[..], &["--user-workload-monitoring=kmc"]].concat()),
            Ok((exported("kmc"), String::new()))
        );
        let recommend = ["kubectl-kmc", "recommend", "--prometheus", "p"];
        assert_eq!(
            relayed(&[&recommend[..], &["--user-workload-monitoring"]].concat()),
            Ok((exported("kube-metrics-collector"), String::new()))
        );
    }
}
