//! Shared by the server tests: a Secret volume laid out the way the kubelet does it, a server on
//! 127.0.0.1 with real certificates from `certgen`, and a TLS client that reports the peer
//! certificate it saw.
#![allow(dead_code)] // Each test binary uses a different subset.

pub mod deployment;
pub mod fixtures;
pub mod vmi_api;

use bytes::Bytes;
use clap::Parser;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use kube_metrics_webhook::{
    Args,
    args::Config,
    certgen::{self, Bundle},
    serve::{self, Running},
    state::Limits,
    vmi::lookup::VmiLookups,
};
use rustls::{ClientConfig, RootCertStore, pki_types::ServerName};
use rustls_pki_types::{CertificateDer, pem::PemObject};
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};
use tokio::{net::TcpStream, sync::watch};
use tokio_rustls::{TlsConnector, client::TlsStream};

/// A KubeVirt v1.8.4 launcher pod at CREATE, inside an AdmissionReview as the API server sends it.
pub const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/admission/pod-a.json"
);
pub const FIXTURE_UID: &str = "705ab4f5-6393-11e8-b7cc-42010a800002";
/// The name the API server dials; the certificate must carry it.
pub const SERVER_NAME: &str = "kmw.ns-0.svc";

pub fn fixture() -> Vec<u8> {
    std::fs::read(FIXTURE).expect("shared fixture")
}

pub fn bundle() -> Bundle {
    certgen::generate(
        &certgen::dns_names("kmw", "ns-0"),
        Duration::from_secs(86_400),
    )
    .unwrap()
}

/// A self-signed certificate for [`SERVER_NAME`] and its key, PEM, valid until `not_after` (Unix
/// seconds) and issued two days before: `certgen` makes none that has expired.
pub fn pair_until(not_after: i64) -> (String, String) {
    let at = |unix: i64| time::OffsetDateTime::from_unix_timestamp(unix).unwrap();
    let mut params = rcgen::CertificateParams::new(vec![SERVER_NAME.to_owned()]).unwrap();
    params.not_before = at(not_after - 2 * 86_400);
    params.not_after = at(not_after);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// The leaf of a bundle, DER, to compare with what a client saw.
pub fn leaf_der(bundle: &Bundle) -> Vec<u8> {
    CertificateDer::from_pem_slice(bundle.cert_pem.as_bytes())
        .unwrap()
        .to_vec()
}

/// A directory shaped like a mounted Secret: `tls.crt -> ..data/tls.crt`, `..data -> ..vN`.
#[derive(Debug)]
pub struct SecretDir {
    pub dir: tempfile::TempDir,
    version: u32,
}

impl SecretDir {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for name in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(Path::new("..data").join(name), dir.path().join(name))
                .unwrap();
        }
        Self { dir, version: 0 }
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("tls.crt")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.path().join("tls.key")
    }

    /// Publishes a pair the way the kubelet's AtomicWriter does: write a fresh versioned
    /// directory, point `..data_tmp` at it, rename `..data_tmp` over `..data` (atomic).
    pub fn publish(&mut self, cert_pem: &str, key_pem: &str) {
        self.version += 1;
        let version = format!("..v{}", self.version);
        let target = self.dir.path().join(&version);
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("tls.crt"), cert_pem).unwrap();
        std::fs::write(target.join("tls.key"), key_pem).unwrap();
        let tmp = self.dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&version, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.path().join("..data")).unwrap();
    }

    pub fn publish_bundle(&mut self, bundle: &Bundle) {
        self.publish(&bundle.cert_pem, &bundle.key_pem);
    }
}

/// Limits short enough for tests to observe timeouts quickly.
pub fn test_limits() -> Limits {
    Limits {
        handshake: Duration::from_millis(800),
        header_read: Duration::from_millis(800),
        request: Duration::from_millis(1500),
        drain: Duration::from_secs(5),
        reload_interval: Duration::from_millis(100),
        ..Limits::default()
    }
}

/// Builds the serve config through the real flag parser, on ephemeral loopback ports. VMI lookups
/// are off: there is no cluster here (tests that want a VMI inject a fake: [`Server::start_with`]).
pub fn serve_config(secret: &SecretDir, limits: Limits) -> serve::Config {
    let (cert, key) = (secret.cert(), secret.key());
    let args = Args::try_parse_from([
        "kube-metrics-webhook",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--vmi-lookup",
        "off",
    ])
    .unwrap();
    let Config::Serve(mut config) = args.into_config().unwrap().1 else {
        panic!("not serve")
    };
    config.limits = limits;
    *config
}

/// A running server plus the switch that shuts it down.
#[derive(Debug)]
pub struct Server {
    pub running: Running,
    pub shutdown: watch::Sender<bool>,
}

impl Server {
    pub async fn start(secret: &SecretDir, limits: Limits) -> anyhow::Result<Server> {
        Self::start_with(secret, limits, VmiLookups::Off).await
    }

    /// Like `start`, with the given VMI lookups.
    pub async fn start_with(
        secret: &SecretDir,
        limits: Limits,
        vmi: VmiLookups,
    ) -> anyhow::Result<Server> {
        kube_metrics_webhook::tls::install_crypto_provider();
        let (shutdown, rx) = watch::channel(false);
        let config = serve::Config {
            vmi,
            ..serve_config(secret, limits)
        };
        let running = serve::start(config, rx.into()).await?;
        Ok(Server { running, shutdown })
    }

    pub fn addr(&self) -> SocketAddr {
        self.running.addr
    }

    pub async fn admin_get(&self, path: &str) -> (StatusCode, String) {
        admin_get(self.running.admin_addr, path).await
    }
}

/// GET over plain HTTP on a fresh connection.
pub async fn admin_get(addr: SocketAddr, path: &str) -> (StatusCode, String) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::get(path)
        .header(header::HOST, "admin")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(req).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Trusts the given CAs and nothing else.
pub fn tls_connector(cas: &[&Bundle]) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots
            .add(CertificateDer::from_pem_slice(ca.ca_pem.as_bytes()).unwrap())
            .unwrap();
    }
    let provider = Arc::new(kube_metrics_webhook::tls::provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    // A resumed session presents no certificate and rustls reports the cached one; every
    // connection must show what the server serves now.
    config.resumption = rustls::client::Resumption::disabled();
    TlsConnector::from(Arc::new(config))
}

/// A verified TLS connection to the webhook.
pub async fn tls_stream(
    connector: &TlsConnector,
    addr: SocketAddr,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    connector
        .connect(ServerName::try_from(SERVER_NAME).unwrap(), tcp)
        .await
}

/// One HTTP/1.1 keep-alive connection over TLS.
#[derive(Debug)]
pub struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    /// The leaf certificate the server presented, DER.
    pub peer_leaf: Vec<u8>,
}

impl Conn {
    pub async fn open(connector: &TlsConnector, addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream = tls_stream(connector, addr).await?;
        let peer_leaf = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|certs| certs.first())
            .map(|cert| cert.to_vec())
            .unwrap_or_default();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Conn { sender, peer_leaf })
    }

    pub async fn send(
        &mut self,
        method: http::Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, SERVER_NAME);
        if let Some(content_type) = content_type {
            req = req.header(header::CONTENT_TYPE, content_type);
        }
        let req = req.body(Full::new(Bytes::from(body)))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(req).await?;
        let status = response.status();
        Ok((status, response.into_body().collect().await?.to_bytes()))
    }

    /// POSTs the fixture pod to /mutate the way the API server does.
    pub async fn review_fixture(&mut self) -> anyhow::Result<(StatusCode, Bytes)> {
        self.send(
            http::Method::POST,
            "/mutate?timeout=10s",
            Some("application/json"),
            fixture(),
        )
        .await
    }
}

/// The uid of an AdmissionReview answer, if it is one.
pub fn answer_uid(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    assert_eq!(value["kind"], "AdmissionReview", "{value}");
    value["response"]["uid"].as_str().map(str::to_owned)
}

/// path -> value of every `add` in an allowed AdmissionReview answer's patch.
pub fn patch_values(body: &[u8]) -> std::collections::HashMap<String, serde_json::Value> {
    let answer: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let bytes: Vec<u8> =
        serde_json::from_value(answer["response"]["patch"].clone()).unwrap_or_default();
    let ops: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    ops.as_array()
        .into_iter()
        .flatten()
        .filter_map(|op| Some((op["path"].as_str()?.to_owned(), op["value"].clone())))
        .collect()
}

/// The value of one unlabelled or labelled series in a text exposition.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// The real binary serving on loopback with the published pair, VMI lookups off (no cluster
/// here); killed on drop, so no server outlives a failed test.
pub struct Binary {
    pub child: std::process::Child,
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
}

/// What happens to the server's log after the "Listening" line.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ServerLog {
    /// Copied to the test's stderr, so a failing test shows what the server said.
    Echo,
    /// Read and dropped (the benchmark: writing the log is part of the measured cost).
    Drain,
}

impl Binary {
    /// Starts `kube-metrics-webhook serve` with `extra` flags appended, and waits for its
    /// "Listening" log line to learn both addresses.
    pub fn start(secret: &SecretDir, extra: &[&str], log: ServerLog) -> Binary {
        let mut args = vec!["--vmi-lookup", "off"];
        args.extend(extra);
        Self::spawn(
            std::path::Path::new(env!("CARGO_BIN_EXE_kube-metrics-webhook")),
            secret,
            &args,
            &[],
            log,
        )
    }

    /// Starts `program serve` (this build's webhook or another, e.g. an older build to compare
    /// with) with `args` and `envs`, VMI lookups as `args` say.
    pub fn spawn(
        program: &Path,
        secret: &SecretDir,
        args: &[&str],
        envs: &[(&str, &std::ffi::OsStr)],
        log: ServerLog,
    ) -> Binary {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new(program)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
            ])
            .args(["--log-format", "json"])
            .arg("--tls-cert")
            .arg(secret.cert())
            .arg("--tls-key")
            .arg(secret.key())
            .args(args)
            .envs(envs.iter().copied())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut binary = None;
        for line in lines.by_ref().take(100) {
            let line = line.unwrap();
            if log == ServerLog::Echo {
                eprintln!("server: {line}");
            }
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if event["fields"]["message"] == "Listening" {
                let field = |name: &str| event["fields"][name].as_str().unwrap().parse().unwrap();
                binary = Some((field("addr"), field("admin_addr")));
                break;
            }
        }
        let Some((addr, admin_addr)) = binary else {
            let _ = child.kill();
            panic!("server never logged Listening");
        };
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if log == ServerLog::Echo {
                    eprintln!("server: {line}");
                }
            }
        });
        Binary {
            child,
            addr,
            admin_addr,
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// VmRSS and the peak VmHWM of `pid` (`/proc/<pid>/status`), in KiB.
pub fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets the peak to the current RSS (proc(5): clear_refs, "5").
pub fn reset_peak(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
