//! The serving certificate: PEM -> `CertifiedKey` (no I/O), a resolver that hands out the current
//! one, and a reload loop that polls the mounted files and swaps in a new pair when it is valid.
//!
//! Kubernetes updates a mounted Secret by writing a new `..<timestamp>` directory and renaming the
//! `..data` symlink onto it; `tls.crt` and `tls.key` are symlinks through `..data`. Polling the
//! metadata of the *resolved* files (inode, size, mtime) is cheap and sees that swap; inotify on
//! symlinked paths does not reliably.
//!
//! An expired certificate is loaded all the same (the next rotation may be a moment away), logged
//! at error level, and makes the webhook not ready: see [`Expiry`].
use rustls::{
    ServerConfig,
    crypto::CryptoProvider,
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use std::{
    io,
    path::{Path, PathBuf},
    sync::{Arc, PoisonError, RwLock},
    time::{Duration, SystemTime},
};
use tokio::sync::watch;

use crate::metrics::Metrics;

/// A certificate and key that parsed and belong together.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub key: Arc<CertifiedKey>,
    /// `notAfter` of the leaf, Unix seconds.
    pub not_after: i64,
}

/// What the webhook needs to know about a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    pub dns_names: Vec<String>,
    pub is_ca: bool,
    /// Unix seconds.
    pub not_after: i64,
}

/// A certificate with less time than this left is logged as expiring, at load and when the time
/// comes: the `KubeMetricsWebhookCertificateExpiring` alert's 14 days (cert-manager renews 30 days
/// ahead, so by then renewal is failing).
pub const EXPIRING_WITHIN: Duration = Duration::from_secs(14 * 86_400);

/// Where the serving certificate stands against the clock.
///
/// An expired one is *not ready*. The API server refuses it in the handshake, so every review fails
/// and `failurePolicy: Ignore` admits every pod without the sidecar, the same as when no webhook
/// pod is ready: not-ready costs nothing there. It is better wherever some pod still serves a valid
/// certificate: a replica whose Secret was not updated (or whose new revision carries an old
/// Secret) leaves the Service's endpoints and the others get every review, where it would have
/// failed its share; a rollout stops at it, with the old pods serving; and "not ready" shows in the
/// Deployment's status, where only the API server's log would have said "certificate has expired".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    Valid,
    /// Valid for less than [`EXPIRING_WITHIN`].
    Expiring,
    /// Past its notAfter.
    Expired,
}

/// Hands rustls whatever certificate is current; swapped by the reload loop.
#[derive(Debug, Default)]
pub struct CertStore {
    current: RwLock<Option<Loaded>>,
}

/// The two mounted files.
#[derive(Clone, Debug)]
pub struct PairFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Identity of the resolved files; a change means "read them again".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp([(u64, u64, u64, Option<SystemTime>); 2]);

/// Why a certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("failed to read {}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("no PEM certificate found")]
    NoCertificate,
    #[error("malformed PEM certificate")]
    CertPem(#[source] rustls_pki_types::pem::Error),
    #[error("no usable PEM private key found")]
    KeyPem(#[source] rustls_pki_types::pem::Error),
    #[error("private key is unusable or does not match the certificate")]
    Key(#[source] rustls::Error),
    #[error("malformed X.509 certificate")]
    X509(#[source] x509_parser::nom::Err<x509_parser::error::X509Error>),
    #[error("malformed X.509 extension")]
    Extension(#[source] x509_parser::error::X509Error),
    /// The files changed while being read (a rotation in progress); try again next tick.
    #[error("certificate files changed while being read")]
    Changing,
    #[error("failed to build the TLS configuration")]
    Config(#[source] rustls::Error),
}

/// The provider for everything here: ring, chosen explicitly so that no feature unification
/// (kube's client pulls rustls too) can make rustls pick another one or panic on ambiguity.
pub fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Installs ring as the process default; call once at start. Later calls are harmless.
pub fn install_crypto_provider() {
    let _already_installed = provider().install_default();
}

/// PEM certificate chain + PEM key -> a pair rustls can serve. Checks that the key matches.
pub fn parse_pair(cert_pem: &[u8], key_pem: &[u8]) -> Result<Loaded, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(TlsError::CertPem)?;
    let leaf = chain.first().ok_or(TlsError::NoCertificate)?;
    let not_after = inspect_der(leaf)?.not_after;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(TlsError::KeyPem)?;
    let key = CertifiedKey::from_der(chain, key, &provider()).map_err(TlsError::Key)?;
    // `from_der` accepts "cannot tell"; a key we cannot compare is not one we trust.
    key.keys_match().map_err(TlsError::Key)?;
    Ok(Loaded {
        key: Arc::new(key),
        not_after,
    })
}

/// The first certificate of a PEM file, inspected.
pub fn inspect_pem(cert_pem: &[u8]) -> Result<CertInfo, TlsError> {
    let der = CertificateDer::from_pem_slice(cert_pem).map_err(|error| match error {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::NoCertificate,
        other => TlsError::CertPem(other),
    })?;
    inspect_der(&der)
}

/// One DER certificate, inspected.
pub fn inspect_der(der: &[u8]) -> Result<CertInfo, TlsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(TlsError::X509)?;
    let dns_names = match cert
        .subject_alternative_name()
        .map_err(TlsError::Extension)?
    {
        Some(san) => san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                x509_parser::extensions::GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                _ => None,
            })
            .collect(),
        None => Vec::new(),
    };
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        dns_names,
        is_ca: cert.is_ca(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// Whether the first certificate of `ca_pem` signed the first certificate of `leaf_pem`.
pub fn issued_by(leaf_pem: &[u8], ca_pem: &[u8]) -> bool {
    let (Ok(leaf), Ok(ca)) = (
        CertificateDer::from_pem_slice(leaf_pem),
        CertificateDer::from_pem_slice(ca_pem),
    ) else {
        return false;
    };
    let (Ok((_, leaf)), Ok((_, ca))) = (
        x509_parser::parse_x509_certificate(&leaf),
        x509_parser::parse_x509_certificate(&ca),
    ) else {
        return false;
    };
    ca.is_ca() && leaf.verify_signature(Some(ca.public_key())).is_ok()
}

/// HTTP/1.1 only: the API server speaks it, and it keeps one server path to reason about.
pub fn server_config(store: Arc<CertStore>) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(store);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

// === impl CertStore ===

impl CertStore {
    pub fn set(&self, loaded: Loaded) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(loaded);
    }

    pub fn current(&self) -> Option<Loaded> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether a certificate is loaded, whatever its dates.
    pub fn is_loaded(&self) -> bool {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Whether the API server can accept the certificate at `now` (Unix seconds): one is loaded and
    /// it has not expired. What /readyz reports ([`Expiry`]).
    pub fn is_servable(&self, now: i64) -> bool {
        self.current()
            .is_some_and(|loaded| expiry(loaded.not_after, now) != Expiry::Expired)
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current().map(|loaded| loaded.key)
    }
}

// === impl PairFiles ===

impl PairFiles {
    fn stamp(&self) -> Result<Stamp, TlsError> {
        Ok(Stamp([file_stamp(&self.cert)?, file_stamp(&self.key)?]))
    }

    /// Reads and parses both files; fails with `Changing` if a swap happened meanwhile, so a
    /// certificate from one Secret version is never paired with a key from another.
    fn load(&self) -> Result<(Stamp, Loaded), TlsError> {
        let before = self.stamp()?;
        let cert = read(&self.cert)?;
        let key = read(&self.key)?;
        if self.stamp()? != before {
            return Err(TlsError::Changing);
        }
        Ok((before, parse_pair(&cert, &key)?))
    }
}

/// Polls `files` and keeps `store` current.
#[derive(Debug)]
pub struct Reloader {
    files: PairFiles,
    store: Arc<CertStore>,
    metrics: Metrics,
    /// The stamp last acted on (loaded or rejected), so a broken pair is reported once.
    seen: Option<Stamp>,
    /// The serving certificate's notAfter and expiry last logged, so each is logged once.
    reported: Option<(i64, Expiry)>,
}

impl Reloader {
    pub fn new(files: PairFiles, store: Arc<CertStore>, metrics: Metrics) -> Self {
        Self {
            files,
            store,
            metrics,
            seen: None,
            reported: None,
        }
    }

    /// Loads the pair if the files changed since the last look. `Ok(false)`: nothing to do.
    /// On error the previous pair stays in the store.
    pub fn poll(&mut self) -> Result<bool, TlsError> {
        let stamp = self.files.stamp()?;
        if self.seen == Some(stamp) {
            return Ok(false);
        }
        match self.files.load() {
            Ok((stamp, loaded)) => {
                self.seen = Some(stamp);
                self.metrics.cert_loaded(Some(loaded.not_after));
                let not_after = rfc3339(loaded.not_after);
                tracing::info!(%not_after, "Loaded serving certificate");
                self.store.set(loaded);
                self.report_expiry(unix_now());
                Ok(true)
            }
            Err(TlsError::Changing) => Err(TlsError::Changing),
            Err(error) => {
                self.seen = Some(stamp);
                self.metrics.cert_loaded(None);
                Err(error)
            }
        }
    }

    /// Logs the serving certificate's expiry when it is new or has changed since it was last
    /// logged: a warning when it expires within [`EXPIRING_WITHIN`], an error once it has expired.
    fn report_expiry(&mut self, now: i64) {
        let Some(not_after) = self.store.current().map(|loaded| loaded.not_after) else {
            return;
        };
        let state = expiry(not_after, now);
        if self.reported == Some((not_after, state)) {
            return;
        }
        self.reported = Some((not_after, state));
        let days_left = (not_after - now) as f64 / 86_400.0;
        let not_after = rfc3339(not_after);
        match state {
            Expiry::Valid => {}
            Expiry::Expiring => {
                tracing::warn!(%not_after, days_left, "Serving certificate expires soon");
            }
            Expiry::Expired => tracing::error!(
                %not_after,
                "Serving certificate has expired; not ready until a valid one is mounted"
            ),
        }
    }

    /// Polls every `interval` until `shutdown` flips.
    pub async fn run(mut self, interval: Duration, mut shutdown: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => return,
                _ = ticker.tick() => {}
            }
            let polled = self.poll();
            // A certificate that was fine at load expires while it is served.
            self.report_expiry(unix_now());
            match polled {
                Ok(_) | Err(TlsError::Changing) => {}
                Err(error @ TlsError::Io { .. }) if self.store.is_loaded() => {
                    tracing::debug!(error = %kube_metrics_runtime::log::error_chain(&error), "Certificate files unreadable; keeping the current pair");
                }
                Err(error) => {
                    tracing::warn!(error = %kube_metrics_runtime::log::error_chain(&error), "Failed to reload certificate; keeping the current pair");
                }
            }
        }
    }
}

/// Where a certificate valid until `not_after` stands at `now` (both Unix seconds). X.509's
/// notAfter is the last valid second, as the API server's Go client reads it.
pub fn expiry(not_after: i64, now: i64) -> Expiry {
    let window = EXPIRING_WITHIN.as_secs() as i64;
    if now > not_after {
        Expiry::Expired
    } else if not_after - now < window {
        Expiry::Expiring
    } else {
        Expiry::Valid
    }
}

/// Now, in Unix seconds (0 before 1970, which no certificate here predates).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64)
}

/// `2030-01-01T00:00:00Z`, for a log field.
fn rfc3339(unix: i64) -> String {
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Io {
        path: path.to_owned(),
        source,
    })
}

/// `metadata` follows symlinks, so this is the file `..data` points at now.
fn file_stamp(path: &Path) -> Result<(u64, u64, u64, Option<SystemTime>), TlsError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|source| TlsError::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok((meta.dev(), meta.ino(), meta.len(), meta.modified().ok()))
}

#[cfg(test)]
mod tests;
