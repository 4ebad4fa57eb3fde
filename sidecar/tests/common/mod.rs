//! A small fake `/proc` in a temp dir, shaped like the real files (trimmed copies of Linux 6.x
//! output), so tests can change it between collections: exits, restarts, pid reuse, vanishing files.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use kube_metrics_collect::classify::Roles;
use kube_metrics_collect::collect::GuestMemoryConfig;
use kube_metrics_collect::families::{self, Exclusions};
use kube_metrics_collect::proc::ProcRoot;
use kube_metrics_collector::podinfo::Env;
use kube_metrics_collector::scrape::{ScrapeConfig, Scraper};
use kube_metrics_exposition::Format;

/// Boot time written to the fake `/proc/stat`.
pub const BTIME: u64 = 1_700_000_000;

/// One fake process.
#[derive(Clone, Debug)]
pub struct Fake {
    pub pid: i32,
    pub argv: Vec<String>,
    pub comm: String,
    pub state: char,
    pub utime: u64,
    pub stime: u64,
    pub start: u64,
    pub minflt: u64,
    pub majflt: u64,
    /// `None` writes a zombie-like status without `Vm*` lines.
    pub rss_kib: Option<u64>,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub fds: usize,
    /// `(tid, comm, utime, stime)`; written under `task/` when not empty.
    pub threads: Vec<(i32, String, u64, u64)>,
}

/// A temp dir holding `proc/` and `podinfo/`.
#[derive(Debug)]
pub struct Tree {
    pub dir: tempfile::TempDir,
}

pub fn mk(pid: i32, argv0: &str, comm: &str) -> Fake {
    let argv = if argv0.is_empty() {
        vec![]
    } else {
        vec![argv0.to_string()]
    };
    Fake {
        pid,
        argv,
        comm: comm.to_string(),
        state: 'S',
        utime: 100,
        stime: 50,
        start: 1000 + pid as u64,
        minflt: 10,
        majflt: 1,
        rss_kib: Some(1024),
        read_bytes: 4096,
        write_bytes: 8192,
        fds: 3,
        threads: vec![],
    }
}

impl Tree {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("proc/sys/kernel")).unwrap();
        fs::create_dir_all(dir.path().join("podinfo")).unwrap();
        fs::write(
            dir.path().join("proc/stat"),
            format!("cpu  1 2 3 4\nbtime {BTIME}\n"),
        )
        .unwrap();
        fs::write(
            dir.path().join("proc/sys/kernel/hostname"),
            "node-fixture\n",
        )
        .unwrap();
        Self { dir }
    }

    pub fn proc_root(&self) -> PathBuf {
        self.dir.path().join("proc")
    }

    pub fn podinfo(&self) -> PathBuf {
        self.dir.path().join("podinfo")
    }

    pub fn pid_dir(&self, pid: i32) -> PathBuf {
        self.proc_root().join(pid.to_string())
    }

    pub fn put(&self, p: &Fake) {
        let dir = self.pid_dir(p.pid);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("fd")).unwrap();
        fs::write(
            dir.join("stat"),
            stat_line(p.pid, &p.comm, p.state, p.utime, p.stime, p.start, p),
        )
        .unwrap();
        let mut cmdline = p.argv.join("\0");
        if !cmdline.is_empty() {
            cmdline.push('\0');
        }
        fs::write(dir.join("cmdline"), cmdline).unwrap();
        fs::write(dir.join("status"), status_text(p)).unwrap();
        fs::write(
            dir.join("io"),
            format!(
                "rchar: 1\nwchar: 2\nread_bytes: {}\nwrite_bytes: {}\n",
                p.read_bytes, p.write_bytes
            ),
        )
        .unwrap();
        for fd in 0..p.fds {
            fs::write(dir.join("fd").join(fd.to_string()), "").unwrap();
        }
        for (tid, comm, utime, stime) in &p.threads {
            let task = dir.join("task").join(tid.to_string());
            fs::create_dir_all(&task).unwrap();
            let line = stat_line(
                *tid,
                comm,
                'S',
                *utime,
                *stime,
                p.start + (*tid - p.pid) as u64,
                p,
            );
            fs::write(task.join("stat"), line).unwrap();
        }
    }

    pub fn remove(&self, pid: i32) {
        fs::remove_dir_all(self.pid_dir(pid)).unwrap();
    }

    /// A QEMU at `pid` with the command line and `smaps` captured from a real one,
    /// `collector/tests/fixtures/qemu/<capture>.cmdline` and `.smaps`.
    pub fn put_captured_qemu(&self, pid: i32, capture: &str) {
        let fixtures = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../collector/tests/fixtures/qemu/"
        );
        let read = |ext: &str| fs::read(format!("{fixtures}{capture}.{ext}")).unwrap();
        let mut qemu = mk(pid, "", "qemu-kvm");
        qemu.argv = String::from_utf8(read("cmdline"))
            .unwrap()
            .split_terminator('\0')
            .map(String::from)
            .collect();
        self.put(&qemu);
        fs::write(self.pid_dir(pid).join("smaps"), read("smaps")).unwrap();
    }

    pub fn podinfo_file(&self, name: &str, text: &str) {
        fs::write(self.podinfo().join(name), text).unwrap();
    }

    /// A scraper of the full profile, every series.
    pub fn scraper(&self, env: Env) -> Scraper {
        self.scraper_with(env, Exclusions::full())
    }

    /// A scraper that leaves out what `exclude` says (its profile, its `--exclude`).
    pub fn scraper_with(&self, env: Env, exclude: Exclusions) -> Scraper {
        let collect = kube_metrics_collect::Config {
            proc_root: ProcRoot::new(self.proc_root()),
            roles: Roles::new(&[]),
            pss: false,
            guest_memory: GuestMemoryConfig {
                interval: Some(std::time::Duration::from_secs(300)),
                background: false,
            },
            kubevirt_release: None,
            exclude,
        };
        Scraper::new(
            ScrapeConfig {
                collect,
                podinfo: self.podinfo(),
            },
            env,
        )
    }
}

fn stat_line(
    pid: i32,
    comm: &str,
    state: char,
    utime: u64,
    stime: u64,
    start: u64,
    p: &Fake,
) -> String {
    let threads = p.threads.len().max(1);
    format!(
        "{pid} ({comm}) {state} 1 {pid} {pid} 0 -1 4194560 {} 0 {} 0 {utime} {stime} 0 0 20 0 {threads} 0 {start} 123456 250 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n",
        p.minflt, p.majflt
    )
}

fn status_text(p: &Fake) -> String {
    let mut s = format!(
        "Name:\t{}\nState:\t{} (sleeping)\nTgid:\t{}\n",
        p.comm, p.state, p.pid
    );
    if let Some(rss) = p.rss_kib {
        s += &format!(
            "VmSize:\t{} kB\nVmRSS:\t{rss} kB\nRssAnon:\t{} kB\nRssFile:\t{} kB\nRssShmem:\t0 kB\nVmData:\t{} kB\nVmStk:\t132 kB\nVmSwap:\t0 kB\n",
            rss * 4,
            rss / 2,
            rss / 2,
            rss * 2
        );
    }
    s += &format!(
        "Threads:\t{}\nvoluntary_ctxt_switches:\t7\nnonvoluntary_ctxt_switches:\t2\n",
        p.threads.len().max(1)
    );
    s
}

/// One scrape encoded as text 0.0.4.
pub fn text(scraper: &mut Scraper) -> String {
    render(scraper, Format::Text)
}

pub fn render(scraper: &mut Scraper, format: Format) -> String {
    let metrics = scraper.scrape();
    let mut out = Vec::new();
    families::encode(&metrics, format, &mut out);
    String::from_utf8(out).unwrap()
}

/// The value of the sample whose name and labels start with `series` (e.g. `name{a="b"`), if any.
pub fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// `name{host="node-0",domain="<domain>",process="<role>"` for lookups with `value`.
pub fn role_series(name: &str, role: &str) -> String {
    format!("{name}{{host=\"node-0\",domain=\"vm-0\",process=\"{role}\"")
}

pub fn env() -> Env {
    Env {
        pod_name: Some("virt-launcher-vm-0-abcde".into()),
        pod_namespace: Some("ns-0".into()),
        node_name: Some("node-0".into()),
    }
}

pub fn exists(path: &Path) -> bool {
    path.exists()
}
