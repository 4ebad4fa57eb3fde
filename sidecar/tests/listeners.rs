//! The collector's two listeners under attack, against the built binary: while hundreds of idle
//! and slowloris TCP connections are open (any pod that reaches the pod IP can make them), the Unix
//! socket (the relay's path) and the exec probe (over the socket) keep answering, and so does a
//! scrape over TCP (Prometheus' direct path), by evicting the oldest idle connection; the
//! collector counts what its caps did in `kube_metrics_collector_connections_total`.
//!
//! `KMC_BENCH_BINARY=<path>` measures another build (a release build: the image's).

use kube_metrics_contract::sidecar;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn program() -> PathBuf {
    std::env::var_os("KMC_BENCH_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_kube-metrics-collector")))
}

/// Kills the server if an assertion fails before the test ends.
struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The status of `GET path` over `stream`, 0 when none came, and the whole answer.
fn get(mut stream: impl Read + Write, path: &str) -> (u16, String) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    if stream.write_all(req.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut raw = String::new();
    let _ = stream.read_to_string(&mut raw);
    let status = raw.split(' ').nth(1).and_then(|s| s.parse().ok());
    (status.unwrap_or(0), raw)
}

fn unix_get(socket: &Path, path: &str) -> (u16, String) {
    let stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    get(stream, path)
}

/// The value of `series` (name and labels, as the collector writes them) in `text`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Peak resident memory of `pid` (VmHWM), in MiB.
fn peak_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: Option<f64> = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok());
    kib.unwrap_or(0.0) / 1024.0
}

fn tcp_get(addr: &str, path: &str) -> u16 {
    let Ok(stream) = std::net::TcpStream::connect(addr) else {
        return 0;
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    get(stream, path).0
}

fn probe(socket: &Path) -> bool {
    Command::new(program())
        .args(["probe", "--socket"])
        .arg(socket)
        .status()
        .unwrap()
        .success()
}

#[test]
fn idle_and_slowloris_tcp_connections_starve_neither_the_socket_nor_the_probe() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join(sidecar::SOCKET_NAME);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(program())
        .args(["--listen", &addr, "--socket"])
        .arg(&socket)
        .args(["--podinfo", "/nonexistent", "--min-interval-ms", "0"])
        // The Unix listener's counts are written in the full profile only.
        .args(["--metrics-profile", "full"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !probe(&socket) {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    // 300 silent connections and 60 that trickle a head: more than the TCP cap of 256.
    let mut held = Vec::new();
    for i in 0..360 {
        let Ok(mut stream) = std::net::TcpStream::connect(&addr) else {
            continue;
        };
        if i >= 300 {
            let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nX-a: ");
        }
        held.push(stream);
    }

    let (mut socket_ok, mut slowest) = (0, Duration::ZERO);
    for _ in 0..20 {
        let started = Instant::now();
        socket_ok += usize::from(unix_get(&socket, "/metrics").0 == 200);
        slowest = slowest.max(started.elapsed());
    }
    let probes_ok = (0..5).filter(|_| probe(&socket)).count();
    let tcp_ok = (0..5).filter(|_| tcp_get(&addr, "/metrics") == 200).count();
    let (_, metrics) = unix_get(&socket, "/metrics");
    let connections = |listener: &str, action: &str| {
        let series = format!(
            "kube_metrics_collector_connections_total{{listener=\"{listener}\",action=\"{action}\"}}"
        );
        value(&metrics, &series)
    };
    let (evicted, refused) = (connections("tcp", "evicted"), connections("tcp", "refused"));
    println!("attack 6: {}", program().display());
    println!(
        "attack 6: {} attacker connections open; socket scrapes {socket_ok}/20 (slowest {:.1} ms), \
         exec probes {probes_ok}/5, TCP scrapes {tcp_ok}/5; TCP connections evicted {evicted:?}, \
         refused {refused:?}; peak RSS {:.1} MiB",
        held.len(),
        slowest.as_secs_f64() * 1000.0,
        peak_mib(server.0.id()),
    );
    assert_eq!(socket_ok, 20);
    assert_eq!(probes_ok, 5);
    assert_eq!(tcp_ok, 5, "a scrape evicts an idle connection");
    assert!(evicted.is_some_and(|n| n >= 5.0), "{evicted:?}");
    assert_eq!(refused, Some(0.0));
    assert_eq!(connections("unix", "evicted"), Some(0.0));
}
