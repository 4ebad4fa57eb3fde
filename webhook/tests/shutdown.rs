//! Graceful shutdown of the real binary: after SIGTERM, readiness goes, new connections are
//! refused, and a request already in flight still gets its answer.
mod common;

use common::*;
use http::StatusCode;
use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Kills the child if the test fails half-way, so no server outlives it.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads JSON log lines until the "Listening" event; returns (addr, admin_addr). The rest of
/// the log is echoed by a thread, so a failing test shows what the server said.
fn listening(stderr: impl std::io::Read + Send + 'static) -> (SocketAddr, SocketAddr) {
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref().take(100) {
        let line = line.unwrap();
        eprintln!("server: {line}");
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if event["fields"]["message"] == "Listening" {
            let field = |name: &str| event["fields"][name].as_str().unwrap().parse().unwrap();
            std::thread::spawn(move || {
                lines
                    .map_while(Result::ok)
                    .for_each(|l| eprintln!("server: {l}"))
            });
            return (field("addr"), field("admin_addr"));
        }
    }
    panic!("server never logged Listening");
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn in_flight_request_completes_after_sigterm() {
    let bundle = bundle();
    let mut secret = SecretDir::new();
    secret.publish_bundle(&bundle);
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-metrics-webhook"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            // No cluster here.
            "--vmi-lookup",
            "off",
        ])
        .arg("--tls-cert")
        .arg(secret.cert())
        .arg("--tls-key")
        .arg(secret.key())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let guard = Guard(child);
    let (addr, admin_addr) = listening(stderr);
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
    tokio::time::sleep(Duration::from_millis(200)).await;

    sigterm(&guard.0);
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
    let mut guard = guard;
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = guard.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit 5 s after the drain");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}");
}
