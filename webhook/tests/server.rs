//! The HTTPS and admin listeners over real TLS on 127.0.0.1, with certificates from `certgen`.
mod common;

use common::*;
use http::{Method, StatusCode};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn ready_server() -> (SecretDir, Server, tokio_rustls::TlsConnector) {
    let bundle = bundle();
    let mut secret = SecretDir::new();
    secret.publish_bundle(&bundle);
    let server = Server::start(&secret, test_limits()).await.unwrap();
    (secret, server, tls_connector(&[&bundle]))
}

#[tokio::test]
async fn answers_the_fixture_with_its_uid_ignoring_the_query() {
    let (_secret, server, connector) = ready_server().await;
    let mut conn = Conn::open(&connector, server.addr()).await.unwrap();
    for path in ["/mutate?timeout=10s", "/mutate"] {
        let (status, body) = conn
            .send(
                Method::POST,
                path,
                Some("application/json; charset=utf-8"),
                fixture(),
            )
            .await
            .unwrap();
        assert_eq!(
            status,
            StatusCode::OK,
            "{path}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(answer_uid(&body).as_deref(), Some(FIXTURE_UID), "{path}");
    }
    let (_, metrics) = server.admin_get("/metrics").await;
    let answered: f64 = ["injected", "skipped", "error"]
        .iter()
        .filter_map(|r| {
            metric(
                &metrics,
                &format!("kube_metrics_webhook_requests_total{{result=\"{r}\"}}"),
            )
        })
        .sum();
    assert_eq!(answered, 2.0, "{metrics}");
    // Lookups are off (no cluster here): each review that would have looked the VMI up says so.
    assert_eq!(
        metric(
            &metrics,
            "kube_metrics_webhook_vmi_lookups_total{result=\"off\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        metric(
            &metrics,
            "kube_metrics_webhook_request_duration_seconds_count"
        ),
        Some(2.0)
    );
}

/// method, path, Content-Type, body, expected status.
type Case = (
    Method,
    &'static str,
    Option<&'static str>,
    Vec<u8>,
    StatusCode,
);

#[tokio::test]
async fn refuses_bad_requests_with_clear_statuses() {
    let (_secret, server, connector) = ready_server().await;
    let mut conn = Conn::open(&connector, server.addr()).await.unwrap();
    let json = Some("application/json");
    let over_cap = vec![b' '; 6 * 1024 * 1024 + 1];
    let cases: [Case; 7] = [
        (
            Method::POST,
            "/mutate",
            json,
            b"{not json".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/mutate",
            json,
            br#"{"kind":"AdmissionReview"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/mutate",
            Some("text/plain"),
            fixture(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            Method::POST,
            "/mutate",
            None,
            fixture(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            Method::POST,
            "/mutate",
            json,
            over_cap,
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            Method::GET,
            "/mutate",
            None,
            Vec::new(),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::POST,
            "/validate",
            json,
            fixture(),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (method, path, content_type, body, want) in cases {
        // A 413 may close the connection before the client finished sending.
        let mut fresh = Conn::open(&connector, server.addr()).await.unwrap();
        let (status, _) = fresh
            .send(method.clone(), path, content_type, body)
            .await
            .unwrap();
        assert_eq!(status, want, "{method} {path} {content_type:?}");
    }
    // The keep-alive connection opened first is still usable after all that.
    assert_eq!(conn.review_fixture().await.unwrap().0, StatusCode::OK);
    let (_, metrics) = server.admin_get("/metrics").await;
    // 400, 400, 415, 415, 413 count as bad requests; 405 and 404 never reach the review.
    assert_eq!(
        metric(
            &metrics,
            "kube_metrics_webhook_requests_total{result=\"bad_request\"}"
        ),
        Some(5.0)
    );
}

/// Bodies under the byte cap whose parse would cost far more than their size: refused like a
/// malformed body (400, `bad_request`), before any of it is built; a real review still passes.
#[tokio::test]
async fn refuses_bodies_over_the_complexity_limit_like_malformed_ones() {
    let (_secret, server, connector) = ready_server().await;
    let mut conn = Conn::open(&connector, server.addr()).await.unwrap();
    let n = 200_000;
    let shapes = [
        ("strings", format!("[{}\"\"]", "\"\",".repeat(n))),
        ("nesting", format!("{}{}", "[".repeat(100), "]".repeat(100))),
        (
            "members",
            format!(
                "{{{}\"z\":0}}",
                (0..n).map(|i| format!("\"a{i}\":0,")).collect::<String>()
            ),
        ),
    ];
    for (name, body) in shapes {
        let (status, body) = conn
            .send(
                Method::POST,
                "/mutate",
                Some("application/json"),
                body.into_bytes(),
            )
            .await
            .unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(&body[..], b"malformed AdmissionReview\n", "{name}");
    }
    assert_eq!(conn.review_fixture().await.unwrap().0, StatusCode::OK);
    let (_, metrics) = server.admin_get("/metrics").await;
    assert_eq!(
        metric(
            &metrics,
            "kube_metrics_webhook_requests_total{result=\"bad_request\"}"
        ),
        Some(3.0)
    );
}

#[tokio::test]
async fn caps_a_chunked_body_while_reading_it() {
    let (_secret, server, connector) = ready_server().await;
    let mut stream = tls_stream(&connector, server.addr()).await.unwrap();
    let head = "POST /mutate HTTP/1.1\r\nHost: kmw\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 1024 * 1024];
    // 7 MiB without a declared length: only `Limited` can stop it. The server may answer and
    // close before we are done writing, so a write error is fine; the status line is what counts.
    for _ in 0..7 {
        let framed = [
            format!("{:x}\r\n", chunk.len()).into_bytes(),
            chunk.clone(),
            b"\r\n".to_vec(),
        ]
        .concat();
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let mut response = vec![0; 64];
    let n = stream.read(&mut response).await.unwrap();
    let line = String::from_utf8_lossy(&response[..n]).into_owned();
    assert!(line.starts_with("HTTP/1.1 413"), "{line}");
}

/// Reads until EOF or error; returns how long that took.
async fn time_until_closed(stream: &mut (impl AsyncReadExt + Unpin)) -> Duration {
    let started = Instant::now();
    let mut buf = vec![0; 1024];
    let outcome = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(outcome.is_ok(), "connection still open after 10 s");
    started.elapsed()
}

#[tokio::test]
async fn cuts_off_slow_clients() {
    let (_secret, server, connector) = ready_server().await;
    let limits = test_limits();

    // Never starts the TLS handshake.
    let mut silent = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let waited = time_until_closed(&mut silent).await;
    assert!(
        waited < limits.handshake + Duration::from_secs(1),
        "handshake: {waited:?}"
    );

    // Sends half a request head, then nothing.
    let mut slow_head = tls_stream(&connector, server.addr()).await.unwrap();
    slow_head
        .write_all(b"POST /mutate HTTP/1.1\r\nHost: kmw\r\n")
        .await
        .unwrap();
    let waited = time_until_closed(&mut slow_head).await;
    assert!(
        waited < limits.header_read + Duration::from_secs(1),
        "head: {waited:?}"
    );

    // Declares a body it never finishes: answered 408 after the request timeout.
    let mut slow_body = tls_stream(&connector, server.addr()).await.unwrap();
    let head = "POST /mutate HTTP/1.1\r\nHost: kmw\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{";
    slow_body.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut response = vec![0; 64];
    let n = slow_body.read(&mut response).await.unwrap();
    assert!(String::from_utf8_lossy(&response[..n]).starts_with("HTTP/1.1 408"));
    assert!(
        started.elapsed() < limits.request + Duration::from_secs(1),
        "body: {:?}",
        started.elapsed()
    );

    // The server is still fine.
    let mut conn = Conn::open(&connector, server.addr()).await.unwrap();
    assert_eq!(conn.review_fixture().await.unwrap().0, StatusCode::OK);
}

#[tokio::test]
async fn admin_routes() {
    let (_secret, server, _) = ready_server().await;
    assert_eq!(server.admin_get("/healthz").await.0, StatusCode::OK);
    assert_eq!(server.admin_get("/readyz?verbose").await.0, StatusCode::OK);
    assert_eq!(server.admin_get("/nope").await.0, StatusCode::NOT_FOUND);
    let (status, metrics) = server.admin_get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let expiry = metric(
        &metrics,
        "kube_metrics_webhook_certificate_expiry_timestamp_seconds",
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (expiry - now - 86_400.0).abs() < 120.0,
        "expiry {expiry} vs now {now}"
    );
    assert_eq!(
        metric(
            &metrics,
            "kube_metrics_webhook_certificate_reloads_total{result=\"success\"}"
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn becomes_ready_once_a_certificate_appears() {
    let mut secret = SecretDir::new();
    let server = Server::start(&secret, test_limits()).await.unwrap();
    assert_eq!(server.admin_get("/healthz").await.0, StatusCode::OK);
    assert_eq!(
        server.admin_get("/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let bundle = bundle();
    let connector = tls_connector(&[&bundle]);
    assert!(
        Conn::open(&connector, server.addr()).await.is_err(),
        "no certificate, no handshake"
    );

    secret.publish_bundle(&bundle);
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.admin_get("/readyz").await.0 != StatusCode::OK {
        assert!(
            Instant::now() < deadline,
            "not ready 5 s after the certificate appeared"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut conn = Conn::open(&connector, server.addr()).await.unwrap();
    assert_eq!(conn.peer_leaf, leaf_der(&bundle));
    assert_eq!(conn.review_fixture().await.unwrap().0, StatusCode::OK);
}

#[tokio::test]
async fn refuses_to_start_with_a_broken_pair() {
    let (a, b) = (bundle(), bundle());
    let mut secret = SecretDir::new();
    secret.publish(&a.cert_pem, &b.key_pem);
    let error = Server::start(&secret, test_limits()).await.unwrap_err();
    assert!(format!("{error:#}").contains("does not match"), "{error:#}");
}
