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
    assert_eq!(error_chain(&error), "failed to read /x/tls.crt: gone");
}
