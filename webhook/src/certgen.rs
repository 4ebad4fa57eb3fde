//! DNS names -> a CA and a CA-signed serving certificate, as PEM. No I/O: writing files and
//! talking to the API server are `certgen::run`'s job (`certgen/cluster.rs`, `certgen/files.rs`).
//!
//! The leaf is signed by its own CA rather than self-signed, because the API server trusts the
//! `caBundle`: a CA that outlives one leaf is what cert-manager's CA Issuer chain does too, and
//! a self-signed leaf used as its own CA is what breaks on rotation (docs/peers.md).
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::ops::Range;
use std::time::Duration;
use time::OffsetDateTime;

pub mod cluster;
pub mod files;

/// The Secret keys a `kubernetes.io/tls` Secret uses, and the files a mounted Secret shows.
pub const TLS_CRT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";
pub const CA_CRT: &str = "ca.crt";

/// Backdating `notBefore` absorbs clock skew between the Job's node and the API server.
const BACKDATE: Duration = Duration::from_secs(60 * 60);

/// A CA and a serving certificate and key it signed, all PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Bundle {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Validated settings for `certgen`.
#[derive(Debug)]
pub struct Config {
    pub service: String,
    pub namespace: String,
    pub validity: Duration,
    pub target: Target,
}

/// Where the certificate goes.
#[derive(Debug)]
pub enum Target {
    /// Write `tls.crt`, `tls.key`, `ca.crt` into this directory.
    Files(std::path::PathBuf),
    /// Create the Secret (or reuse a valid one) and patch `caBundle` of every webhook.
    Cluster {
        secret: String,
        webhook_config: String,
    },
}

/// Why a certificate could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum CertgenError {
    #[error("no DNS names to certify")]
    NoNames,
    #[error("validity period is out of range")]
    Validity,
    #[error("failed to generate certificate")]
    Rcgen(#[from] rcgen::Error),
}

/// Runs the subcommand: the only place here that does I/O.
pub async fn run(config: Config) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let Config {
        service,
        namespace,
        validity,
        target,
    } = config;
    let names = dns_names(&service, &namespace);
    match target {
        Target::Files(dir) => {
            let bundle = generate(&names, validity)?;
            files::write(&dir, &bundle)
                .with_context(|| format!("failed to write certificates to {}", dir.display()))?;
            tracing::info!(dir = %dir.display(), "Wrote certificates");
            Ok(())
        }
        Target::Cluster {
            secret,
            webhook_config,
        } => {
            let client = kube::Client::try_default()
                .await
                .context("failed to configure the Kubernetes client")?;
            let target = cluster::Names {
                namespace,
                secret,
                webhook_config,
                service,
            };
            cluster::apply(client, &target, &names, validity).await
        }
    }
}

// === impl Bundle ===

// By hand, so the private key never lands in a log line.
impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("ca_pem", &self.ca_pem)
            .finish_non_exhaustive()
    }
}

/// The names the API server may use for the webhook Service: it dials
/// `<service>.<namespace>.svc`; the rest cover in-cluster clients and tools.
pub fn dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_owned(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// Generates a fresh CA and a serving certificate for `names` (the first one is the CN),
/// both valid from now (minus an hour) for `validity`.
pub fn generate(names: &[String], validity: Duration) -> Result<Bundle, CertgenError> {
    let now = OffsetDateTime::now_utc();
    let not_before = now
        .checked_sub(time_duration(BACKDATE)?)
        .ok_or(CertgenError::Validity)?;
    let not_after = now
        .checked_add(time_duration(validity)?)
        .ok_or(CertgenError::Validity)?;
    issue(names, not_before..not_after, not_before..not_after)
}

/// A fresh CA valid over `ca_valid` and a serving certificate for `names` (the first one is the
/// CN) valid over `leaf_valid`, signed by it: what [`generate`] makes, and what the tests make of a CA
/// that expires before its leaf.
pub fn issue(
    names: &[String],
    ca_valid: Range<OffsetDateTime>,
    leaf_valid: Range<OffsetDateTime>,
) -> Result<Bundle, CertgenError> {
    let common_name = names.first().ok_or(CertgenError::NoNames)?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, format!("{common_name} CA"));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = ca_valid.start;
    ca.not_after = ca_valid.end;
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let mut leaf = CertificateParams::new(names.to_vec())?;
    leaf.distinguished_name
        .push(DnType::CommonName, common_name.as_str());
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = leaf_valid.start;
    leaf.not_after = leaf_valid.end;
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;

    Ok(Bundle {
        ca_pem: ca_cert.pem(),
        cert_pem: leaf_cert.pem(),
        key_pem: leaf_key.serialize_pem(),
    })
}

fn time_duration(duration: Duration) -> Result<time::Duration, CertgenError> {
    time::Duration::try_from(duration).map_err(|_| CertgenError::Validity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn names_cover_the_service_dns_forms() {
        assert_eq!(
            dns_names("kmw", "ns-0"),
            [
                "kmw",
                "kmw.ns-0",
                "kmw.ns-0.svc",
                "kmw.ns-0.svc.cluster.local"
            ]
        );
    }

    #[test]
    fn leaf_is_signed_by_the_ca_and_names_the_service() {
        let names = dns_names("kmw", "ns-0");
        let bundle = generate(&names, DAY).unwrap();
        assert_ne!(bundle.ca_pem, bundle.cert_pem);
        let leaf = tls::inspect_pem(bundle.cert_pem.as_bytes()).unwrap();
        let ca = tls::inspect_pem(bundle.ca_pem.as_bytes()).unwrap();
        assert_eq!(leaf.dns_names, names);
        assert!(!leaf.is_ca);
        assert!(ca.is_ca);
        assert_eq!(leaf.issuer, ca.subject);
        assert_ne!(leaf.subject, leaf.issuer, "leaf must not be self-signed");
        assert!(tls::issued_by(
            bundle.cert_pem.as_bytes(),
            bundle.ca_pem.as_bytes()
        ));
        assert!(!tls::issued_by(
            bundle.cert_pem.as_bytes(),
            bundle.cert_pem.as_bytes()
        ));
        let other = generate(&names, DAY).unwrap();
        assert!(!tls::issued_by(
            bundle.cert_pem.as_bytes(),
            other.ca_pem.as_bytes()
        ));
        let now = OffsetDateTime::now_utc().unix_timestamp();
        assert!(
            (leaf.not_after - now - 86_400).abs() < 60,
            "{} vs {now}",
            leaf.not_after
        );
        // The key matches the certificate (what the server checks before using a pair).
        tls::parse_pair(bundle.cert_pem.as_bytes(), bundle.key_pem.as_bytes()).unwrap();
    }

    #[test]
    fn every_call_makes_a_new_ca_and_key() {
        let names = dns_names("kmw", "ns-0");
        let (a, b) = (
            generate(&names, DAY).unwrap(),
            generate(&names, DAY).unwrap(),
        );
        assert_ne!(a.ca_pem, b.ca_pem);
        assert_ne!(a.key_pem, b.key_pem);
    }

    #[test]
    fn rejects_no_names_and_absurd_validity() {
        assert!(matches!(generate(&[], DAY), Err(CertgenError::NoNames)));
        let names = dns_names("kmw", "ns-0");
        let forever = Duration::from_secs(u64::MAX);
        assert!(matches!(
            generate(&names, forever),
            Err(CertgenError::Validity)
        ));
    }

    #[test]
    fn debug_never_prints_the_key() {
        let bundle = generate(&dns_names("kmw", "ns-0"), DAY).unwrap();
        assert!(!format!("{bundle:?}").contains("PRIVATE KEY"));
    }
}
