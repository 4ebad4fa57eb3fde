//! The collector's two listeners under attack, against the built binary: while hundreds of idle
//! and slowloris TCP connections are open (any pod that reaches the pod IP can make them), the Unix
//! socket (the relay's path) and the exec probe (over the socket) keep answering, and so does a
//! scrape over TCP (Prometheus' direct path), by evicting the oldest idle connection.

use kube_metrics_contract::sidecar;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kube-metrics-collector");

/// Kills the server if an assertion fails before the test ends.
struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The status of `GET path` over `stream`, 0 when none came.
fn get(mut stream: impl Read + Write, path: &str) -> u16 {
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    if stream.write_all(req.as_bytes()).is_err() {
        return 0;
    }
    let mut raw = String::new();
    let _ = stream.read_to_string(&mut raw);
    raw.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn unix_get(socket: &Path, path: &str) -> u16 {
    let stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    get(stream, path)
}

fn tcp_get(addr: &str, path: &str) -> u16 {
    let Ok(stream) = std::net::TcpStream::connect(addr) else {
        return 0;
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    get(stream, path)
}

fn probe(socket: &Path) -> bool {
    Command::new(BIN)
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
    let child = Command::new(BIN)
        .args(["--listen", &addr, "--socket"])
        .arg(&socket)
        .args(["--podinfo", "/nonexistent", "--min-interval-ms", "0"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Server(child);
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
        socket_ok += usize::from(unix_get(&socket, "/metrics") == 200);
        slowest = slowest.max(started.elapsed());
    }
    let probes_ok = (0..5).filter(|_| probe(&socket)).count();
    let tcp_ok = (0..5).filter(|_| tcp_get(&addr, "/metrics") == 200).count();
    println!(
        "attack 6: {} attacker connections open; socket scrapes {socket_ok}/20 (slowest {:.1} ms), \
         exec probes {probes_ok}/5, TCP scrapes {tcp_ok}/5",
        held.len(),
        slowest.as_secs_f64() * 1000.0
    );
    assert_eq!(socket_ok, 20);
    assert_eq!(probes_ok, 5);
    assert_eq!(tcp_ok, 5, "a scrape evicts an idle connection");
}
