//! The built binary: `-M` through promtool, the HTTP surface on loopback TCP and a Unix socket,
//! the `probe` subcommand, and SIGTERM.

use kube_metrics_contract::sidecar;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kube-metrics-collector");

fn sample(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample starting with {prefix} in:\n{text}"))
}

#[test]
fn dump_metrics_prints_real_numbers_that_pass_promtool() {
    let out = Command::new(BIN)
        .args(["-M", "--podinfo", "/nonexistent/podinfo"])
        .env_remove(sidecar::ENV_POD_NAME)
        .env_remove(sidecar::ENV_POD_NAMESPACE)
        .env_remove(sidecar::ENV_NODE_NAME)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();

    let promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut promtool) = promtool else {
        panic!("promtool not found on PATH: install Debian's `prometheus` package to run this test")
    };
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // On a plain host every process is `other`.
    let procs = text
        .lines()
        .find(|l| l.starts_with("kubevirt_pod_infra_processes{") && l.contains("process=\"other\""))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap();
    assert!(procs >= 1.0, "{text}");
    for needle in ["type=\"user\"", "type=\"system\""] {
        let cpu: f64 = text
            .lines()
            .filter(|l| {
                l.starts_with("kubevirt_pod_infra_cpu_seconds_total{") && l.contains(needle)
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert!(cpu > 0.0, "cpu {needle} is 0:\n{text}");
    }
    let rss = text
        .lines()
        .find(|l| {
            l.starts_with("kubevirt_pod_infra_memory_amount_bytes{")
                && l.contains("type=\"resident\"")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap();
    assert!(rss > 0.0, "{text}");
    // The domain is `unknown` on a plain host, or a guest name when a QEMU happens to be visible.
    assert!(!text.contains("domain=\"\""), "{text}");
    assert!(sample(&text, "kube_metrics_collector_collection_duration_seconds ") > 0.0);
}

/// One request over a fresh connection: (status, headers lowercased, body).
fn request(
    stream: &mut dyn ReadWrite,
    method: &str,
    path: &str,
    accept: Option<&str>,
) -> (u16, String, String) {
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    let req =
        format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n{accept}Connection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn tcp(addr: &str, method: &str, path: &str, accept: Option<&str>) -> (u16, String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    request(&mut s, method, path, accept)
}

fn unix(path: &Path, method: &str, p: &str) -> (u16, String, String) {
    let mut s = std::os::unix::net::UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    request(&mut s, method, p, None)
}

fn probe(socket: &Path) -> bool {
    Command::new(BIN)
        .args(["probe", "--socket"])
        .arg(socket)
        .status()
        .unwrap()
        .success()
}

/// Kills the server if an assertion fails before the test stops it.
struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serves_metrics_health_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join(sidecar::SOCKET_NAME);
    // A stale socket file from a previous run must not stop the start.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    assert!(!probe(&socket), "probe must fail while nothing listens");

    let child = Command::new(BIN)
        .args(["--listen", &addr, "--socket"])
        .arg(&socket)
        .args(["--podinfo", "/nonexistent", "--min-interval-ms", "0"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server(child);

    let deadline = Instant::now() + Duration::from_secs(10);
    while !(probe(&socket) && tcp(&addr, "GET", "/readyz", None).0 == 200) {
        assert!(Instant::now() < deadline, "server did not become ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The node relay connects through the pod's group, without CAP_DAC_OVERRIDE.
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "socket mode {mode:o}");

    let (status, head, body) = tcp(&addr, "GET", "/metrics", None);
    assert_eq!(status, 200);
    assert!(
        head.contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    assert!(
        body.contains("# TYPE kubevirt_pod_infra_cpu_seconds_total counter"),
        "{body}"
    );

    let om =
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
    let (status, head, body) = tcp(&addr, "GET", "/metrics", Some(om));
    assert_eq!(status, 200);
    assert!(
        head.contains("content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert!(
        body.contains("# TYPE kubevirt_pod_infra_cpu_seconds counter"),
        "{body}"
    );

    let (status, _, body) = unix(&socket, "GET", "/metrics");
    assert_eq!(status, 200);
    assert!(body.contains("kubevirt_pod_infra_processes{"), "{body}");
    assert_eq!(unix(&socket, "GET", "/healthz").0, 200);
    assert_eq!(tcp(&addr, "POST", "/metrics", None).0, 405);
    assert_eq!(tcp(&addr, "DELETE", "/healthz", None).0, 405);
    assert_eq!(tcp(&addr, "GET", "/nope", None).0, 404);

    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "server did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status:?}");
    assert!(!socket.exists(), "socket file left behind");
    assert!(!probe(&socket));
}

/// The collector's JSON log lines, read on a thread as they come.
#[derive(Clone, Default)]
struct Log(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Log {
    fn follow(self, lines: impl Iterator<Item = String> + Send + 'static) {
        std::thread::spawn(move || {
            for line in lines {
                self.0.lock().unwrap().push(line);
            }
        });
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    fn since(&self, from: usize) -> Vec<String> {
        self.0.lock().unwrap()[from..].to_vec()
    }
}

/// User plus system CPU time of `pid`, in clock ticks (`/proc/<pid>/stat` fields 14 and 15).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name may hold spaces; the fields after it are space-separated.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// With its descriptors used up, `accept` fails on every try while connections wait in the
/// backlog. The collector must back off (not spin a core), log a bounded number of lines, and
/// serve again once descriptors are free.
#[test]
fn out_of_descriptors_the_server_backs_off_and_recovers() {
    use std::io::BufRead;
    const LIMIT: usize = 64;
    const IDLE: usize = 80;
    const WINDOW: Duration = Duration::from_secs(2);
    // An empty proc root: the host's /proc would fill the 64 descriptors with process files.
    let proc_root = tempfile::tempdir().unwrap();
    let child = Command::new("prlimit")
        .arg(format!("--nofile={LIMIT}:{LIMIT}"))
        .arg(BIN)
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .arg("--proc-root")
        .arg(proc_root.path())
        .args(["--podinfo", "/nonexistent", "--min-interval-ms", "0"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("prlimit (util-linux) must be installed");
    let mut server = Server(child);
    // prlimit execs the collector: same pid.
    let pid = server.0.id();
    let mut lines = std::io::BufReader::new(server.0.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok);
    let addr = lines
        .by_ref()
        .take(20)
        .find_map(|line| {
            let rest = line.split_once("\"message\":\"Serving metrics\"")?.1;
            let addr = rest.split_once("\"listen\":\"")?.1.split('"').next()?;
            Some(addr.to_owned())
        })
        .expect("no \"Serving metrics\" line with the address");
    let log = Log::default();
    log.clone().follow(lines);
    let healthy = |addr: &str| {
        std::net::TcpStream::connect(addr).is_ok_and(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            request(&mut s, "GET", "/healthz", None).0 == 200
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !healthy(&addr) {
        assert!(Instant::now() < deadline, "no /healthz 200 before the test");
        std::thread::sleep(Duration::from_millis(20));
    }

    let idle: Vec<_> = (0..IDLE)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_fds(pid) < LIMIT {
        assert!(Instant::now() < deadline, "{} fds open", open_fds(pid));
        std::thread::sleep(Duration::from_millis(10));
    }
    let (lines_before, ticks_before, started) = (log.len(), cpu_ticks(pid), Instant::now());
    std::thread::sleep(WINDOW);
    let ticks = cpu_ticks(pid) - ticks_before;
    let elapsed = started.elapsed().as_secs_f64();
    let logged = log.since(lines_before);
    let per_second = rustix::param::clock_ticks_per_second() as f64;
    let cpu_percent = ticks as f64 / per_second / elapsed * 100.0;
    eprintln!(
        "out of descriptors: {cpu_percent:.1}% of one core, {} log lines in {elapsed:.2} s",
        logged.len()
    );
    assert!(cpu_percent < 10.0, "spinning: {cpu_percent:.1}% CPU");
    assert!(
        logged.len() < 20,
        "{} lines:\n{}",
        logged.len(),
        logged.join("\n")
    );

    drop(idle);
    let closed = Instant::now();
    let deadline = closed + Duration::from_secs(10);
    while !healthy(&addr) {
        assert!(
            Instant::now() < deadline,
            "no /healthz 200 10 s after the idle connections closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "out of descriptors: /healthz 200 again {:?} after the idle connections closed",
        closed.elapsed()
    );
}

/// The manifests set `KMC_LOG_LEVEL` and `KMC_LOG_FORMAT`: the binary must read both.
#[test]
fn log_flags_read_their_kmc_env_twins() {
    let proc_root = tempfile::tempdir().unwrap();
    let dump = |name: &str, value: &str| {
        Command::new(BIN)
            .arg("-M")
            .arg("--proc-root")
            .arg(proc_root.path())
            .args(["--podinfo", "/nonexistent"])
            .env(name, value)
            .output()
            .unwrap()
    };
    let out = dump("KMC_LOG_LEVEL", "kube_metrics_collector=loud");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("invalid --log-level"), "{stderr}");
    // An empty proc root has no boot time: the collector warns, here as JSON.
    let out = dump("KMC_LOG_FORMAT", "json");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with('{') && first.contains("\"level\":\"WARN\""),
        "{stderr}"
    );
}
