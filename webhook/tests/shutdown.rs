//! Graceful shutdown of the real binary: after SIGTERM, readiness goes, new connections are
//! refused, and a request already in flight still gets its answer.
mod common;

use common::*;
use http::StatusCode;
use std::{
    process::{Child, Command},
    time::{Duration, Instant},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits until the server has read every byte this connection sent: acknowledged by its kernel
/// (nothing left in our send queue) and taken out of its socket (nothing left in its receive
/// queue). Only then is the request in flight in the server rather than in a kernel buffer; a
/// connection whose request head the server has not read yet is idle and closed at once by the
/// graceful shutdown.
async fn wait_until_read(server: std::net::SocketAddr, client: std::net::SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
        let queued = |local: u16, remote: u16| {
            tcp_queues(&tcp, local, remote)
                .unwrap_or_else(|| panic!("no socket {local} -> {remote} in /proc/net/tcp:\n{tcp}"))
        };
        let (client_tx, _) = queued(client.port(), server.port());
        let (_, server_rx) = queued(server.port(), client.port());
        if client_tx == 0 && server_rx == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the server has not read the request 5 s after it was sent \
             (client send queue {client_tx}, server receive queue {server_rx})"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The (send, receive) queue lengths of the established IPv4 socket from port `local` to port
/// `remote`, from the text of /proc/net/tcp.
fn tcp_queues(table: &str, local: u16, remote: u16) -> Option<(u64, u64)> {
    let port = |address: &str| u16::from_str_radix(address.rsplit(':').next()?, 16).ok();
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (from, to, state, queues) = (
            fields.get(1)?,
            fields.get(2)?,
            fields.get(3)?,
            fields.get(4)?,
        );
        if port(from)? != local || port(to)? != remote || *state != "01" {
            return None;
        }
        let (tx, rx) = queues.split_once(':')?;
        Some((
            u64::from_str_radix(tx, 16).ok()?,
            u64::from_str_radix(rx, 16).ok()?,
        ))
    })
}

#[test]
fn tcp_queues_reads_the_socket_of_a_port_pair() {
    let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:A2B4 01 00000000:0000002A 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:A2B4 0100007F:1F90 01 00000010:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 20 4 30 10 -1
";
    assert_eq!(tcp_queues(table, 0x1F90, 0xA2B4), Some((0, 0x2A)));
    assert_eq!(tcp_queues(table, 0xA2B4, 0x1F90), Some((0x10, 0)));
    assert_eq!(
        tcp_queues(table, 0x1F90, 0),
        None,
        "listening, not established"
    );
    assert_eq!(tcp_queues(table, 1, 2), None);
}

#[tokio::test]
async fn in_flight_request_completes_after_sigterm() {
    let bundle = bundle();
    let mut secret = SecretDir::new();
    secret.publish_bundle(&bundle);
    let server = Binary::start(&secret, &[], ServerLog::Echo);
    let (addr, admin_addr) = (server.addr, server.admin_addr);
    assert_eq!(admin_get(admin_addr, "/readyz").await.0, StatusCode::OK);

    // Start a review: the head and half the body, so the request is in flight.
    let connector = tls_connector(&[&bundle]);
    let mut stream = tls_stream(&connector, addr).await.unwrap();
    let body = fixture();
    let (first, rest) = body.split_at(body.len() / 2);
    let head = format!(
        "POST /mutate?timeout=10s HTTP/1.1\r\nHost: kmw\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first).await.unwrap();
    stream.flush().await.unwrap();
    let client = stream.get_ref().0.local_addr().unwrap();
    wait_until_read(addr, client).await;

    sigterm(&server.child);
    let deadline = Instant::now() + Duration::from_secs(5);
    while admin_get(admin_addr, "/readyz").await.0 != StatusCode::SERVICE_UNAVAILABLE {
        assert!(Instant::now() < deadline, "still ready 5 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after SIGTERM"
    );

    // Finish the request: it must be answered in full.
    stream.write_all(rest).await.unwrap();
    stream.flush().await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response))
        .await
        .expect("response within 5 s")
        .ok(); // rustls reports a missing close_notify as an error; the bytes are what count
    let response = String::from_utf8_lossy(&response).into_owned();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let body_start = response.find("\r\n\r\n").unwrap() + 4;
    assert_eq!(
        answer_uid(&response.as_bytes()[body_start..]).as_deref(),
        Some(FIXTURE_UID)
    );

    // With nothing left in flight, the process exits on its own, successfully.
    let mut server = server;
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit 5 s after the drain");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}");
}

/// The manifests set `KMW_LOG_LEVEL` and `KMW_LOG_FORMAT`: the binary must read both.
#[test]
fn log_flags_read_their_kmw_env_twins() {
    let run = |name: &str, value: &str| {
        Command::new(env!("CARGO_BIN_EXE_kube-metrics-webhook"))
            .args(["serve", "--vmi-lookup", "off"])
            .env(name, value)
            .output()
            .unwrap()
    };
    let out = run("KMW_LOG_LEVEL", "kube_metrics_webhook=loud");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("invalid --log-level"), "{stderr}");
    let out = run("KMW_LOG_FORMAT", "yaml");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("yaml") && stderr.contains("--log-format"),
        "{stderr}"
    );
}
