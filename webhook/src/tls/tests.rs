//! Certificate pairs loaded and refused, with certificates made by `certgen`.

use super::*;
use crate::certgen;

fn bundle() -> certgen::Bundle {
    certgen::generate(
        &certgen::dns_names("kmw", "ns-0"),
        Duration::from_secs(86_400),
    )
    .unwrap()
}

fn leaf_der(loaded: &Loaded) -> Vec<u8> {
    loaded.key.end_entity_cert().unwrap().to_vec()
}

#[test]
fn parses_a_matching_pair() {
    let b = bundle();
    let loaded = parse_pair(b.cert_pem.as_bytes(), b.key_pem.as_bytes()).unwrap();
    assert_eq!(
        loaded.not_after,
        inspect_pem(b.cert_pem.as_bytes()).unwrap().not_after
    );
}

#[test]
fn rejects_a_key_from_another_pair() {
    let (a, b) = (bundle(), bundle());
    let error = parse_pair(a.cert_pem.as_bytes(), b.key_pem.as_bytes()).unwrap_err();
    assert!(matches!(error, TlsError::Key(_)), "{error:?}");
}

#[test]
fn rejects_empty_and_garbage_input() {
    let b = bundle();
    let cases: [(&[u8], &[u8]); 4] = [
        (b"", b.key_pem.as_bytes()),
        (b"not pem at all", b.key_pem.as_bytes()),
        (b.cert_pem.as_bytes(), b""),
        // A PEM block whose payload is not a certificate.
        (
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            b.key_pem.as_bytes(),
        ),
    ];
    for (cert, key) in cases {
        assert!(
            parse_pair(cert, key).is_err(),
            "{:?}",
            String::from_utf8_lossy(cert)
        );
    }
}

#[test]
fn store_is_not_loaded_until_set() {
    let store = CertStore::default();
    assert!(!store.is_loaded());
    let b = bundle();
    store.set(parse_pair(b.cert_pem.as_bytes(), b.key_pem.as_bytes()).unwrap());
    assert!(store.is_loaded());
}

fn write_pair(dir: &Path, b: &certgen::Bundle) {
    std::fs::write(dir.join("tls.crt"), &b.cert_pem).unwrap();
    std::fs::write(dir.join("tls.key"), &b.key_pem).unwrap();
}

#[test]
fn reloader_swaps_on_change_and_keeps_the_last_good_pair() {
    let dir = tempfile::tempdir().unwrap();
    let files = PairFiles {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
    };
    let store = Arc::new(CertStore::default());
    let metrics = Metrics::new().unwrap();
    let mut reloader = Reloader::new(files, store.clone(), metrics.clone());

    assert!(
        matches!(reloader.poll(), Err(TlsError::Io { .. })),
        "no files yet"
    );
    assert!(!store.is_loaded());

    let first = bundle();
    write_pair(dir.path(), &first);
    assert!(reloader.poll().unwrap());
    let first_der = leaf_der(&store.current().unwrap());
    assert!(
        !reloader.poll().unwrap(),
        "unchanged files are not reloaded"
    );

    // A key that does not match: rejected once, the first pair stays.
    let other = bundle();
    std::fs::write(dir.path().join("tls.key"), &other.key_pem).unwrap();
    assert!(matches!(reloader.poll(), Err(TlsError::Key(_))));
    assert!(
        !reloader.poll().unwrap(),
        "a rejected pair is reported once"
    );
    assert_eq!(leaf_der(&store.current().unwrap()), first_der);

    let second = bundle();
    write_pair(dir.path(), &second);
    assert!(reloader.poll().unwrap());
    assert_ne!(leaf_der(&store.current().unwrap()), first_der);

    let text = String::from_utf8(metrics.render().1).unwrap();
    assert!(
        text.contains("kube_metrics_webhook_certificate_reloads_total{result=\"success\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("kube_metrics_webhook_certificate_reloads_total{result=\"failure\"} 1"),
        "{text}"
    );
}

#[test]
fn error_chain_prints_every_cause() {
    let error = TlsError::Io {
        path: "/x/tls.crt".into(),
        source: io::Error::other("gone"),
    };
    assert_eq!(
        kube_metrics_runtime::log::error_chain(&error),
        "failed to read /x/tls.crt: gone"
    );
}

/// A self-signed pair valid until `not_after` (Unix seconds), issued a day before.
fn pair_until(not_after: i64) -> (String, String) {
    let at = |unix: i64| time::OffsetDateTime::from_unix_timestamp(unix).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["kmw.ns-0.svc".to_owned()]).unwrap();
    params.not_before = at(not_after - 2 * 86_400);
    params.not_after = at(not_after);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

#[test]
fn expiry_table() {
    const DAY: i64 = 86_400;
    let now = 1_900_000_000;
    let cases = [
        ("a year left", now + 365 * DAY, Expiry::Valid),
        ("exactly 14 days left", now + 14 * DAY, Expiry::Valid),
        (
            "a second under 14 days",
            now + 14 * DAY - 1,
            Expiry::Expiring,
        ),
        ("a day left", now + DAY, Expiry::Expiring),
        ("its last second", now, Expiry::Expiring),
        ("a second past", now - 1, Expiry::Expired),
        ("a year past", now - 365 * DAY, Expiry::Expired),
    ];
    for (name, not_after, want) in cases {
        assert_eq!(expiry(not_after, now), want, "{name}");
    }
}

/// Log lines written while `f` runs, as text.
fn logs_of<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buffer(Arc<std::sync::Mutex<Vec<u8>>>);
    impl io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&buffer.0.lock().unwrap()).into_owned();
    (out, text)
}

/// An expired pair is loaded (a rotation may be a moment away) but logged as an error with its
/// notAfter and not servable; one that expires soon is a warning and servable; one that expires
/// while served is logged once, when it does.
#[test]
fn expiry_is_logged_at_load_and_when_it_comes_and_expired_is_not_servable() {
    let dir = tempfile::tempdir().unwrap();
    let files = PairFiles {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
    };
    let store = Arc::new(CertStore::default());
    let mut reloader = Reloader::new(files.clone(), store.clone(), Metrics::new().unwrap());
    let write = |(cert, key): (String, String)| {
        std::fs::write(&files.cert, cert).unwrap();
        std::fs::write(&files.key, key).unwrap();
    };
    let now = unix_now();

    // 2001-09-09T01:46:40Z.
    write(pair_until(1_000_000_000));
    let (loaded, logs) = logs_of(|| reloader.poll());
    assert!(loaded.unwrap());
    assert!(
        logs.contains("ERROR") && logs.contains("Serving certificate has expired"),
        "{logs}"
    );
    assert!(logs.contains("not_after=2001-09-09T01:46:40Z"), "{logs}");
    assert!(store.is_loaded());
    assert!(!store.is_servable(now));

    let soon = now + 5 * 86_400;
    write(pair_until(soon));
    let (_, logs) = logs_of(|| reloader.poll());
    assert!(
        logs.contains("WARN") && logs.contains("Serving certificate expires soon"),
        "{logs}"
    );
    assert!(!logs.contains("has expired"), "{logs}");
    assert!(store.is_servable(now));

    // Time passes: the same certificate expires while served.
    let (_, logs) = logs_of(|| reloader.report_expiry(soon + 1));
    assert!(logs.contains("Serving certificate has expired"), "{logs}");
    assert!(!store.is_servable(soon + 1));
    let (_, logs) = logs_of(|| reloader.report_expiry(soon + 2));
    assert!(logs.is_empty(), "logged once: {logs}");

    // A year left: loaded at info, nothing else.
    write(pair_until(now + 365 * 86_400));
    let (_, logs) = logs_of(|| reloader.poll());
    assert!(logs.contains("Loaded serving certificate"), "{logs}");
    assert!(!logs.contains("WARN") && !logs.contains("ERROR"), "{logs}");
    assert!(store.is_servable(now));
}
