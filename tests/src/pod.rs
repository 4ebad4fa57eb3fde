//! A fake virt-launcher pod: real processes with the real argv[0] paths in a real PID namespace,
//! plus the downward-API files the collector reads.
//!
//! The namespace's init is `unshare --pid --fork --mount-proc --kill-child` running a fake
//! `/pause`, as in a pod with `shareProcessNamespace: true`. Every other process is started into
//! it with `nsenter --pid --mount` (so it also sees the namespace's own /proc), optionally as
//! another user with `setpriv`, and finally `exec -a <real path>` so argv[0] is what KubeVirt's
//! processes show. The test knows each process's host PID, to cross-check against the host /proc.

use crate::hostproc;
use crate::process::{Guarded, dies_with_parent, wait_for};
use anyhow::{Context as _, Result, bail};
use kube_metrics_contract::sidecar;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

/// Starting a process takes a few milliseconds; this is generous for a loaded CI machine.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// The pod's sandbox process, PID 1 of the namespace; the collector must not count it.
const PAUSE: &str = "/pause";

/// One process of the fake pod.
#[derive(Clone, Debug)]
pub struct ProcessSpec {
    /// Unique name to find it again (`virtlogd`).
    pub key: String,
    /// The command line; argv[0] is the real binary's path.
    pub argv: Vec<String>,
    /// Names of threads besides the main thread.
    pub threads: Vec<String>,
    /// Threads that burn CPU (`main` for the main thread).
    pub burn: Vec<String>,
    /// Anonymous memory to touch, in MiB.
    pub mem_mib: usize,
    /// Run as this uid and gid instead of root.
    pub uid: Option<u32>,
}

/// The downward-API files of the pod.
#[derive(Clone, Debug, Default)]
pub struct PodInfo {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub memory_request: Option<u64>,
    pub memory_limit: Option<u64>,
}

/// A running fake pod. Dropping it kills every process in it.
#[derive(Debug)]
pub struct FakePod {
    processes: Vec<Running>,
    fake_bin: PathBuf,
    init_pid: u32,
    init: Guarded,
    dir: TempDir,
}

/// A started process.
#[derive(Debug)]
struct Running {
    spec: ProcessSpec,
    pid: u32,
    /// Kills the process when dropped.
    guard: Guarded,
}

// === impl ProcessSpec ===

impl ProcessSpec {
    pub fn new(key: &str, argv: &[&str]) -> Self {
        Self {
            key: key.to_owned(),
            argv: argv.iter().map(|a| (*a).to_owned()).collect(),
            threads: Vec::new(),
            burn: Vec::new(),
            mem_mib: 0,
            uid: None,
        }
    }

    pub fn threads(mut self, names: &[&str]) -> Self {
        self.threads.extend(names.iter().map(|n| (*n).to_owned()));
        self
    }

    pub fn burn(mut self, names: &[&str]) -> Self {
        self.burn.extend(names.iter().map(|n| (*n).to_owned()));
        self
    }

    pub fn mem_mib(mut self, mib: usize) -> Self {
        self.mem_mib = mib;
        self
    }

    pub fn uid(mut self, uid: Option<u32>) -> Self {
        self.uid = uid;
        self
    }

    /// Main thread plus the named ones.
    pub fn thread_count(&self) -> usize {
        1 + self.threads.len()
    }
}

// === impl PodInfo ===

impl PodInfo {
    /// What KubeVirt puts on a launcher pod for VMI `vm` in `namespace` (docs/kubevirt.md §2).
    pub fn launcher(vm: &str, overhead_bytes: u64) -> Self {
        let labels = [
            ("kubevirt.io", "virt-launcher"),
            (
                "kubevirt.io/created-by",
                "5d5e2e1c-0000-4000-8000-e2e000000001",
            ),
            ("vm.kubevirt.io/name", vm),
        ];
        let overhead = overhead_bytes.to_string();
        let annotations = [
            ("kubevirt.io/domain", vm),
            ("kubevirt.io/memory-overhead-bytes", overhead.as_str()),
            ("kubectl.kubernetes.io/default-container", "compute"),
        ];
        let own = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        Self {
            labels: own(&labels),
            annotations: own(&annotations),
            memory_request: Some(300 << 20),
            memory_limit: Some(512 << 20),
        }
    }

    /// Writes the files as the kubelet's downward-API volume does.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        let labels = downward_format(&self.labels);
        std::fs::write(dir.join(sidecar::PODINFO_LABELS), labels)?;
        let annotations = downward_format(&self.annotations);
        std::fs::write(dir.join(sidecar::PODINFO_ANNOTATIONS), annotations)?;
        if let Some(bytes) = self.memory_request {
            let path = dir.join(sidecar::PODINFO_MEMORY_REQUEST);
            std::fs::write(path, bytes.to_string())?;
        }
        if let Some(bytes) = self.memory_limit {
            let path = dir.join(sidecar::PODINFO_MEMORY_LIMIT);
            std::fs::write(path, bytes.to_string())?;
        }
        Ok(())
    }
}

// === impl FakePod ===

impl FakePod {
    /// Creates the namespace with its `/pause` and writes `podinfo` into `<dir>/podinfo`.
    pub fn start(podinfo: &PodInfo) -> Result<Self> {
        let fake_bin = crate::binaries::fake_process()?;
        let dir = tempfile::Builder::new().prefix("e2e-pod-").tempdir()?;
        podinfo.write(&dir.path().join("podinfo"))?;
        // Processes that run as uid 107 must reach the podinfo files and the binaries' logs.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;

        // unshare dies with us and takes /pause along (--kill-child); when the namespace's init
        // dies, the kernel kills every process in it.
        let mut command = dies_with_parent("unshare");
        command
            .args(["--pid", "--fork", "--mount-proc", "--kill-child", "--"])
            .args(exec_as(PAUSE))
            .arg(&fake_bin);
        let mut init = Guarded::spawn("pause", command, dir.path())?;
        let init_pid = wait_for("the namespace's init", START_TIMEOUT, || {
            init.check_running()?;
            child_running(init.pid(), PAUSE)
        })?;
        init.set_inner(init_pid);
        Ok(Self {
            processes: Vec::new(),
            fake_bin,
            init_pid,
            init,
            dir,
        })
    }

    /// [`FakePod::start`], then [`FakePod::spawn`] each of `specs` in order.
    pub fn with_processes(
        podinfo: &PodInfo,
        specs: impl IntoIterator<Item = ProcessSpec>,
    ) -> Result<Self> {
        let mut pod = Self::start(podinfo)?;
        for spec in specs {
            pod.spawn(spec)?;
        }
        Ok(pod)
    }

    /// Temporary directory of the pod: `podinfo/`, logs, sockets.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn podinfo_dir(&self) -> PathBuf {
        self.dir.path().join("podinfo")
    }

    /// Starts a fake process and waits until all its threads run. Returns its host PID.
    pub fn spawn(&mut self, spec: ProcessSpec) -> Result<u32> {
        if self.processes.iter().any(|p| p.spec.key == spec.key) {
            bail!("process {} already runs", spec.key);
        }
        let argv0 = spec.argv.first().context("empty argv")?.clone();
        let mut command = self.command(spec.uid);
        command
            .args(exec_as(&argv0))
            .arg(&self.fake_bin)
            .args(spec.argv.iter().skip(1))
            .env("FAKE_THREADS", spec.threads.join(","))
            .env("FAKE_BURN", spec.burn.join(","))
            .env("FAKE_MEM_MIB", spec.mem_mib.to_string());
        let (guard, pid) = self.spawn_command(&spec.key, command, &argv0)?;
        let threads = spec.thread_count();
        wait_for(
            &format!("{} to start its threads", spec.key),
            START_TIMEOUT,
            || Ok((hostproc::threads(pid)? == threads).then_some(())),
        )?;
        self.processes.push(Running { spec, pid, guard });
        Ok(pid)
    }

    /// Runs `command` (built with [`FakePod::command`]) under a guard; returns the host PID of the
    /// process inside the namespace once its argv[0] is `argv0`.
    pub fn spawn_command(
        &self,
        name: &str,
        command: Command,
        argv0: &str,
    ) -> Result<(Guarded, u32)> {
        let mut guard = Guarded::spawn(name, command, self.dir.path())?;
        let pid = wait_for(&format!("{name} to start"), START_TIMEOUT, || {
            guard.check_running()?;
            child_running(guard.pid(), argv0)
        })?;
        guard.set_inner(pid);
        Ok((guard, pid))
    }

    /// A command that runs what its arguments say inside the namespace, as `uid` if given.
    pub fn command(&self, uid: Option<u32>) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg("--target")
            .arg(self.init_pid.to_string())
            .args(["--pid", "--mount", "--"]);
        if let Some(uid) = uid {
            let id = uid.to_string();
            command
                .arg("setpriv")
                .args(["--reuid", &id, "--regid", &id, "--clear-groups", "--"]);
        }
        command
    }

    /// Host PID of the process started as `key`.
    pub fn pid(&self, key: &str) -> Result<u32> {
        self.running(key).map(|p| p.pid)
    }

    /// The specs of the processes running now.
    pub fn specs(&self) -> impl Iterator<Item = &ProcessSpec> {
        self.processes.iter().map(|p| &p.spec)
    }

    /// Kills the process `key` and waits until it is gone. Returns its spec.
    pub fn kill(&mut self, key: &str) -> Result<ProcessSpec> {
        let index = self
            .processes
            .iter()
            .position(|p| p.spec.key == key)
            .with_context(|| format!("no process {key}"))?;
        let running = self.processes.remove(index);
        let pid = running.pid;
        // Dropping the guard SIGKILLs nsenter's process group, which holds the process.
        drop(running.guard);
        wait_for(&format!("{key} to exit"), START_TIMEOUT, || {
            Ok((!Path::new(&format!("/proc/{pid}")).exists()).then_some(()))
        })?;
        Ok(running.spec)
    }

    fn running(&self, key: &str) -> Result<&Running> {
        self.processes
            .iter()
            .find(|p| p.spec.key == key)
            .with_context(|| format!("no process {key}"))
    }
}

impl Drop for FakePod {
    fn drop(&mut self) {
        // Killing init would take them all down; kill them first so no nsenter lingers.
        self.processes.clear();
        self.init.kill();
    }
}

/// `bash -c 'exec -a "$0" "$@"' ARGV0`: the next argument runs with argv[0] set to `argv0`.
fn exec_as(argv0: &str) -> [&str; 4] {
    ["bash", "-c", r#"exec -a "$0" "$@""#, argv0]
}

/// The single child of `parent` once it has exec'd into something whose argv[0] is `argv0`.
fn child_running(parent: u32, argv0: &str) -> Result<Option<u32>> {
    for pid in hostproc::children(parent)? {
        if hostproc::cmdline(pid)?.first().is_some_and(|a| a == argv0) {
            return Ok(Some(pid));
        }
    }
    Ok(None)
}

/// `key="value"` lines, sorted, as the downward API writes them.
fn downward_format(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={}\n", serde_json::Value::String(v.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downward_api_format_quotes_values() {
        let map = BTreeMap::from([
            ("b".to_owned(), "x\"y".to_owned()),
            ("a".to_owned(), "1".to_owned()),
        ]);
        assert_eq!(downward_format(&map), "a=\"1\"\nb=\"x\\\"y\"\n");
    }

    #[test]
    fn launcher_podinfo_carries_domain_and_overhead() {
        let info = PodInfo::launcher("vm1", 123);
        assert_eq!(info.annotations["kubevirt.io/domain"], "vm1");
        assert_eq!(info.annotations["kubevirt.io/memory-overhead-bytes"], "123");
    }
}
