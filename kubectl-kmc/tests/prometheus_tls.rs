//! `--prometheus https://…` with `--prometheus-ca` and `--prometheus-token`, against a loopback
//! TLS server that answers the query API only to the right token.

use std::process::{Command, Output};

use http::StatusCode;
use kube_metrics_fake_api::{Answer, FakeApi, Request};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde_json::json;

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

/// Prometheus' query API over TLS on loopback, from the fake API server (which serves it as a
/// kube-apiserver would through its service proxy; none can run here), answering only the right
/// token.
fn serve(cert_pem: &str, key_pem: &str) -> FakeApi {
    let api = FakeApi::start_tls(cert_pem, key_pem).expect("fake over TLS");
    let unauthorized = |request: &Request| {
        let token = request.headers.get(http::header::AUTHORIZATION);
        token.is_none_or(|v| v != format!("Bearer {TOKEN}").as_str())
    };
    api.route_when(unauthorized, |_| {
        Answer::text(StatusCode::UNAUTHORIZED, "Unauthorized\n")
    });
    // Only the rule of resident memory per process reads `{type="resident"}` whole.
    let resident = "(kubevirt_pod_infra_memory_amount_bytes{type=\"resident\"})";
    api.prometheus().answer(
        resident,
        vec![json!({"metric": {"namespace": "vms", "pod": "virt-launcher-vm1-x", "name": "vm1", "process": "qemu"},
                    "value": [1, "1048576000"]})],
    );
    api.prometheus().answer(
        "kubevirt_vmi_info",
        vec![
            json!({"metric": {"namespace": "vms", "name": "vm1", "vmi_pod": "virt-launcher-vm1-x"},
                    "value": [1, "1"]}),
        ],
    );
    api
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
    let api = serve(&cert_pem, &key_pem);
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).expect("ca file");
    let url = format!("https://localhost:{}", api.addr.port());
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
