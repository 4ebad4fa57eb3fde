//! `kube-metrics-webhook certgen` as a process: `--out-dir` mode end to end, and cluster mode's
//! clean failure when no API server is configured at all. Cluster mode against an API server (a
//! fake on loopback; no cluster exists where these tests run) is `certgen_cluster.rs`.
use kube_metrics_webhook::{certgen, tls};
use std::process::Command;

fn certgen_cmd() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kube-metrics-webhook"));
    cmd.arg("certgen").env_remove("KUBERNETES_SERVICE_HOST");
    cmd
}

#[test]
fn writes_a_ca_signed_pair_for_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tls");
    let status = certgen_cmd()
        .args([
            "--service",
            "kmw",
            "--namespace",
            "ns-0",
            "--validity-days",
            "30",
            "--out-dir",
        ])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "{status}");
    let read = |name: &str| std::fs::read(out.join(name)).unwrap();
    let (cert, key, ca) = (read("tls.crt"), read("tls.key"), read("ca.crt"));
    let loaded = tls::parse_pair(&cert, &key).unwrap();
    assert!(
        tls::issued_by(&cert, &ca),
        "tls.crt must be signed by ca.crt"
    );
    assert_eq!(
        tls::inspect_pem(&cert).unwrap().dns_names,
        certgen::dns_names("kmw", "ns-0")
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (loaded.not_after - now - 30 * 86_400).abs() < 120,
        "{}",
        loaded.not_after
    );
}

#[test]
fn cluster_mode_without_a_cluster_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let output = certgen_cmd()
        .args([
            "--service",
            "kmw",
            "--namespace",
            "ns-0",
            "--secret",
            "kmw-tls",
            "--webhook-config",
            "kmw",
        ])
        .env("KUBECONFIG", dir.path().join("absent"))
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("failed to configure the Kubernetes client"),
        "{stderr}"
    );
}
