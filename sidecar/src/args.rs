//! Command-line flags (each with a `KMC_` env twin) -> a validated `Config`, in one place.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use kube_metrics_contract::metrics::Profile;
use kube_metrics_contract::sidecar;

use kube_metrics_collect::classify::{FORBIDDEN_SUBSTRINGS, RoleRule, Roles};
use kube_metrics_collect::collect::GuestMemoryConfig;
use kube_metrics_collect::families::{ExcludeError, Exclusions};
use kube_metrics_collect::proc::ProcRoot;
use kube_metrics_node::{collector, relay};

use crate::log::LogArgs;
use crate::scrape::ScrapeConfig;

/// The TCP listener when neither `--listen` nor `--socket` is given: the default port sits in the
/// ephemeral range 32768-60999, which passt never binds (docs/kubevirt.md §4, docs/design.md).
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    sidecar::PORT,
);

/// Where the injected sidecar's Unix socket lives (docs/design.md).
pub const DEFAULT_SOCKET: &str = sidecar::SOCKET_PATH;

/// Exports per-process metrics of the KubeVirt virt-launcher pod it runs in, read from the pod's
/// shared /proc.
#[derive(Debug, clap::Parser)]
#[command(
    name = "kube-metrics-collector",
    version = kube_metrics_contract::build::long_version(),
    propagate_version = true
)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,

    /// Collect once, print the metrics (text 0.0.4) to stdout and exit.
    #[arg(short = 'M', long)]
    dump_metrics: bool,

    /// Root of the proc filesystem (the pod must share its PID namespace).
    #[arg(long, env = "KMC_PROC_ROOT", default_value = "/proc")]
    proc_root: PathBuf,

    /// Downward-API directory with `labels`, `annotations`, `compute_memory_request`, `compute_memory_limit`.
    #[arg(long, env = "KMC_PODINFO", default_value = sidecar::PODINFO_DIR)]
    podinfo: PathBuf,

    /// TCP address to serve on [default: 0.0.0.0:48080 when --socket is not given either].
    #[arg(long, env = "KMC_LISTEN")]
    listen: Option<SocketAddr>,

    /// Unix socket to serve on (a stale file is replaced at start).
    #[arg(long, env = "KMC_SOCKET")]
    socket: Option<PathBuf>,

    /// Extra role NAME=BASENAME, matched on argv[0]'s basename before the built-in roles; repeatable.
    #[arg(
        long = "role",
        env = "KMC_ROLES",
        value_delimiter = ',',
        value_name = "NAME=BASENAME"
    )]
    roles: Vec<RoleRule>,

    /// Also export PSS from smaps_rollup (takes each target's mm lock: can stall large processes).
    #[arg(long, env = "KMC_PSS")]
    pss: bool,

    /// A scrape within this many ms of the last collection is answered from it; 0 = always collect.
    #[arg(long, env = "KMC_MIN_INTERVAL_MS", default_value_t = 1000)]
    min_interval_ms: u64,

    /// Read QEMU's smaps (guest RAM's resident part) at most this often, in seconds; 0 = never.
    /// The kernel walks QEMU's page tables for it: see docs/metrics.md, "Guest memory".
    #[arg(long, env = "KMC_GUEST_MEMORY_INTERVAL_SECS", default_value_t = 300)]
    guest_memory_interval_secs: u64,

    /// The KubeVirt release (`1.9`, `v1.9.0`) whose overhead constants the budgets use; without
    /// it the newest release known to this build is assumed, and the budget series say so.
    #[arg(long, env = kube_metrics_contract::sidecar::ENV_KUBEVIRT_RELEASE, value_name = "RELEASE")]
    kubevirt_release: Option<kube_metrics_contract::estimate::Release>,

    /// Which series to write: `default`, what the recording rules, alerts, dashboards and
    /// `kubectl kmc` read (43 for KubeVirt's five processes), or `full`, every series (152).
    /// docs/metrics.md, "Profiles".
    #[arg(
        long,
        env = kube_metrics_contract::sidecar::ENV_METRICS_PROFILE,
        default_value_t = Profile::Default,
        value_name = "PROFILE"
    )]
    metrics_profile: Profile,

    /// Leave out a metric family, or one memory type as FAMILY:TYPE; repeatable.
    #[arg(
        long,
        env = "KMC_EXCLUDE",
        value_delimiter = ',',
        value_name = "FAMILY[:TYPE]"
    )]
    exclude: Vec<String>,

    #[command(flatten)]
    log: LogArgs,
}

/// Subcommands; without one, the collector serves.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Exit 0 iff GET /healthz over the Unix socket answers 200 within 2 s (for exec probes; no network).
    Probe {
        /// The collector's Unix socket.
        #[arg(long, env = "KMC_SOCKET", default_value = DEFAULT_SOCKET)]
        socket: PathBuf,
    },
    /// Serve every collector on this node from their Unix sockets (node relay).
    Relay(relay::RelayArgs),
    /// Collect the launcher pods the webhook did not inject, from the host's /proc (hostPID).
    Node(collector::NodeArgs),
}

/// What the binary was asked to do.
#[derive(Clone, Debug)]
pub enum Mode {
    Serve(ServeConfig),
    Dump(ScrapeConfig),
    Probe { socket: PathBuf },
    Relay(relay::RelayConfig),
    Node(collector::NodeConfig),
}

/// Validated settings of the server.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub scrape: ScrapeConfig,
    pub listen: Option<SocketAddr>,
    pub socket: Option<PathBuf>,
    pub min_interval: Duration,
}

/// Flag combinations we refuse.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error("--dump-metrics cannot be combined with a subcommand")]
    DumpWithSubcommand,
    #[error(
        "--socket must not contain `{0}`: virt-launcher-monitor would kill this process on exit"
    )]
    Forbidden(&'static str),
    #[error(transparent)]
    Relay(#[from] relay::RelayArgsError),
    #[error(transparent)]
    Exclude(#[from] ExcludeError),
}

// === impl Args ===

impl Args {
    pub fn into_config(self) -> Result<(LogArgs, Mode), ArgsError> {
        let Self {
            command,
            dump_metrics,
            proc_root,
            podinfo,
            listen,
            socket,
            roles,
            pss,
            min_interval_ms,
            guest_memory_interval_secs,
            kubevirt_release,
            metrics_profile,
            exclude,
            log,
        } = self;
        // `--role` values are checked by `RoleRule::from_str`; paths are the other free text on our cmdline.
        for path in [Some(&proc_root), Some(&podinfo), socket.as_ref()]
            .into_iter()
            .flatten()
        {
            let text = path.to_string_lossy();
            if let Some(bad) = FORBIDDEN_SUBSTRINGS.into_iter().find(|s| text.contains(s)) {
                return Err(ArgsError::Forbidden(bad));
            }
        }
        let mut collect = kube_metrics_collect::Config {
            proc_root: ProcRoot::new(proc_root),
            roles: Roles::new(&roles),
            pss,
            guest_memory: GuestMemoryConfig {
                interval: (guest_memory_interval_secs > 0)
                    .then(|| Duration::from_secs(guest_memory_interval_secs)),
                background: true,
            },
            kubevirt_release,
            exclude: Exclusions::parse(metrics_profile, &exclude)?,
        };
        let mode = match (command, dump_metrics) {
            (Some(_), true) => return Err(ArgsError::DumpWithSubcommand),
            (Some(Command::Probe { socket }), false) => Mode::Probe { socket },
            (Some(Command::Relay(relay)), false) => Mode::Relay(relay.into_config()?),
            (Some(Command::Node(node)), false) => Mode::Node(node.into_config(collect)),
            (None, true) => {
                // One collection and exit: nothing would wait for a reader thread.
                collect.guest_memory.background = false;
                Mode::Dump(ScrapeConfig { collect, podinfo })
            }
            (None, false) => Mode::Serve(ServeConfig {
                scrape: ScrapeConfig { collect, podinfo },
                listen: listen.or(socket.is_none().then_some(DEFAULT_LISTEN)),
                socket,
                min_interval: Duration::from_millis(min_interval_ms),
            }),
        };
        Ok((log, mode))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    fn parse(args: &[&str]) -> Result<Mode, String> {
        let argv = std::iter::once("kube-metrics-collector").chain(args.iter().copied());
        let args = Args::try_parse_from(argv).map_err(|e| e.to_string())?;
        args.into_config()
            .map(|(_, mode)| mode)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn clap_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn serves_on_default_port_without_listeners() {
        let Ok(Mode::Serve(c)) = parse(&[]) else {
            panic!("expected serve")
        };
        assert_eq!(c.listen, Some(DEFAULT_LISTEN));
        assert_eq!(c.socket, None);
        assert_eq!(c.min_interval, Duration::from_millis(1000));
    }

    #[test]
    fn socket_alone_disables_tcp() {
        let Ok(Mode::Serve(c)) = parse(&["--socket", "/tmp/x.sock"]) else {
            panic!("expected serve")
        };
        assert_eq!(
            (c.listen, c.socket),
            (None, Some(PathBuf::from("/tmp/x.sock")))
        );
        let Ok(Mode::Serve(c)) = parse(&["--socket", "/tmp/x.sock", "--listen", "127.0.0.1:9"])
        else {
            panic!("expected serve")
        };
        assert_eq!(c.listen, Some("127.0.0.1:9".parse().unwrap()));
    }

    #[test]
    fn dump_and_probe_modes() {
        assert!(matches!(parse(&["-M"]), Ok(Mode::Dump(_))));
        assert!(matches!(parse(&["--dump-metrics", "--pss"]), Ok(Mode::Dump(c)) if c.collect.pss));
        let Ok(Mode::Probe { socket }) = parse(&["probe"]) else {
            panic!("expected probe")
        };
        assert_eq!(socket, PathBuf::from(DEFAULT_SOCKET));
        let Ok(Mode::Probe { socket }) = parse(&["probe", "--socket", "/s"]) else {
            panic!("expected probe")
        };
        assert_eq!(socket, PathBuf::from("/s"));
        let Ok(Mode::Node(c)) = parse(&["--proc-root", "/host/proc", "node", "--once"]) else {
            panic!("expected node")
        };
        assert_eq!(
            c.collect.proc_root.path(),
            std::path::Path::new("/host/proc")
        );
        assert_eq!(c.listen, collector::DEFAULT_LISTEN);
        assert!(c.once);
        assert_eq!(
            parse(&["-M", "probe"]).unwrap_err(),
            ArgsError::DumpWithSubcommand.to_string()
        );
    }

    #[test]
    fn the_metrics_profile_is_default_unless_asked() {
        let Ok(Mode::Dump(c)) = parse(&["-M"]) else {
            panic!("expected dump")
        };
        assert_eq!(c.collect.exclude.profile(), Profile::Default);
        let Ok(Mode::Serve(c)) = parse(&["--metrics-profile", "full"]) else {
            panic!("expected serve")
        };
        assert_eq!(c.scrape.collect.exclude.profile(), Profile::Full);
        let Ok(Mode::Node(c)) = parse(&["--metrics-profile", "full", "node", "--once"]) else {
            panic!("expected node")
        };
        assert_eq!(c.collect.exclude.profile(), Profile::Full);
        let err = parse(&["--metrics-profile", "lean"]).unwrap_err();
        assert!(err.contains("no metrics profile \"lean\""), "{err}");
    }

    #[test]
    fn rejects_qemu_strings_in_roles_and_paths() {
        let err = parse(&["--role", "x=qemu-kvm"]).unwrap_err();
        assert!(err.contains("qemu-kvm"), "{err}");
        assert!(parse(&["--role", "a=b,c=qemu-system-x86_64"]).is_err());
        assert_eq!(
            parse(&["--socket", "/run/qemu-kvm.sock"]).unwrap_err(),
            ArgsError::Forbidden("qemu-kvm").to_string()
        );
        let Ok(Mode::Dump(c)) = parse(&["-M", "--role", "db=postgres", "--role", "web=nginx"])
        else {
            panic!("expected dump")
        };
        assert_eq!(
            c.collect.roles.names().len(),
            kube_metrics_collect::classify::BUILTIN_ROLES.len() + 2
        );
    }
}
