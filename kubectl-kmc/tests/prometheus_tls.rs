//! `--prometheus https://…` with `--prometheus-ca` and `--prometheus-token`, against a loopback
//! TLS server that answers the query API only to the right token.

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;

mod fake_api;

const TOKEN: &str = "s3cret";

/// A CA, and a certificate for `localhost` it signed: (CA PEM, leaf PEM, leaf key PEM).
fn certificates() -> (String, String, String) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let ca_key = KeyPair::generate().expect("ca key");
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca, ca_key);
    let leaf = CertificateParams::new(vec!["localhost".to_owned()]).expect("leaf params");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).expect("leaf");
    (ca_cert.pem(), leaf_cert.pem(), leaf_key.serialize_pem())
}

async fn answer(
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let authorized = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .is_some_and(|v| v == format!("Bearer {TOKEN}").as_str());
    if !authorized {
        let mut response = Response::new(Full::new(Bytes::from_static(b"Unauthorized\n")));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        return Ok(response);
    }
    let query = request.uri().query().unwrap_or_default();
    // Only the rule of resident memory per process reads `{type="resident"}` whole.
    let resident = "%28kubevirt_pod_infra_memory_amount_bytes%7Btype%3D%22resident%22%7D%29";
    let result = if query.contains(resident) {
        json!([{"metric": {"namespace": "vms", "pod": "virt-launcher-vm1-x", "name": "vm1", "process": "qemu"},
                "value": [1, "1048576000"]}])
    } else if query.contains("kubevirt_vmi_info") {
        json!([{"metric": {"namespace": "vms", "name": "vm1", "vmi_pod": "virt-launcher-vm1-x"},
                "value": [1, "1"]}])
    } else {
        json!([])
    };
    let body = json!({"status": "success", "data": {"resultType": "vector", "result": result}});
    Ok(Response::new(Full::new(Bytes::from(body.to_string()))))
}

/// Serves TLS on loopback from a thread of its own, until the process ends.
fn serve(cert_pem: &str, key_pem: &str) -> SocketAddr {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .expect("cert");
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    fake_api::serve_loopback(move |stream| {
        let acceptor = acceptor.clone();
        async move {
            // A client that rejects the certificate ends the handshake; nothing to serve.
            if let Ok(stream) = acceptor.accept(stream).await {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(answer))
                    .await;
            }
        }
    })
}

fn kmc(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kubectl-kmc"));
    command.args(args);
    for (var, _) in std::env::vars().filter(|(k, _)| k.starts_with("KUBECTL_KMC_")) {
        command.env_remove(var);
    }
    command.output().expect("run kubectl-kmc")
}

#[test]
fn https_with_a_ca_file_and_a_token() {
    let (ca_pem, cert_pem, key_pem) = certificates();
    let addr = serve(&cert_pem, &key_pem);
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).expect("ca file");
    let url = format!("https://localhost:{}", addr.port());
    let ca = ca.to_str().expect("path");

    let output = kmc(&[
        "top",
        "--prometheus",
        &url,
        "--prometheus-ca",
        ca,
        "--prometheus-token",
        TOKEN,
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("vms         vm1   qemu    0m           1000.0Mi"),
        "{stdout}"
    );

    let output = kmc(&["top", "--prometheus", &url, "--prometheus-ca", ca]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "kubectl kmc: Prometheus at {url} refused the request: 401 Unauthorized (check --prometheus-token)\n"
        )
    );

    // Without the CA the certificate is not trusted.
    let output = kmc(&["top", "--prometheus", &url, "--prometheus-token", TOKEN]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(&format!("kubectl kmc: TLS to Prometheus: {url}: ")),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
