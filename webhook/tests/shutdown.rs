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
    tokio::time::sleep(Duration::from_millis(200)).await;

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
