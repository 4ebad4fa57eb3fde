use super::*;

fn projected(uid: &str, ns: &str, name: &str, labels: &str) -> Projected {
    let some = |v: &str| (!v.is_empty()).then(|| v.to_owned());
    Projected {
        uid: some(uid),
        namespace: some(ns),
        name: some(name),
        labels: some(labels),
    }
}

#[test]
fn table_of_links() {
    for (target, want) in [
        ("labels", Link::Sibling("labels")),
        (
            "..2024_01_01_00_00_00.123456789",
            Link::Sibling("..2024_01_01_00_00_00.123456789"),
        ),
        ("..data/labels", Link::Data("labels")),
        ("..data/../labels", Link::Escapes),
        ("..data/a/b", Link::Escapes),
        ("..data/", Link::Escapes),
        ("/etc/passwd", Link::Escapes),
        ("../../other-pod/labels", Link::Escapes),
        ("..", Link::Escapes),
        (".", Link::Escapes),
        ("", Link::Escapes),
        ("sub/labels", Link::Escapes),
    ] {
        assert_eq!(link(target), want, "{target:?}");
    }
}

#[test]
fn table_of_scrape_labels() {
    for (labels, want) in [
        (
            "kube-metrics-collector.io/scrape=\"relay\"\n",
            Some("relay"),
        ),
        (
            "a=\"b\"\nkube-metrics-collector.io/scrape=\"direct\"",
            Some("direct"),
        ),
        (
            "kube-metrics-collector.io/scrape=\"re\\\"lay\"",
            Some("re\"lay"),
        ),
        ("kube-metrics-collector.io/scrape=relay", None),
        ("kube-metrics-collector.io/scrape=\"a\\nb\"", None),
        ("x-kube-metrics-collector.io/scrape=\"relay\"", None),
        ("", None),
    ] {
        assert_eq!(scrape_label(labels).as_deref(), want, "{labels:?}");
    }
}

#[test]
fn table_of_decisions() {
    let relay = "kube-metrics-collector.io/scrape=\"relay\"\n";
    let direct = "kube-metrics-collector.io/scrape=\"direct\"\n";
    let id = |ns: &str, pod: &str| {
        Ok(Route::Relay(Identity {
            namespace: ns.into(),
            pod: pod.into(),
        }))
    };
    for (dir, p, want) in [
        ("u1", projected("u1", "ns", "p", relay), id("ns", "p")),
        ("u1", projected("u1\n", "ns", "p", relay), id("ns", "p")),
        ("u1", projected("u1", "ns", "p", direct), Ok(Route::Direct)),
        (
            "u1",
            projected("u2", "ns", "p", relay),
            Err(AttestError::UidMismatch),
        ),
        (
            "u1",
            projected("", "ns", "p", relay),
            Err(AttestError::Missing),
        ),
        (
            "u1",
            projected("u1", "", "p", relay),
            Err(AttestError::Missing),
        ),
        (
            "u1",
            projected("u1", "ns", " ", relay),
            Err(AttestError::Missing),
        ),
        (
            "u1",
            projected("u1", "ns", "p", ""),
            Err(AttestError::NotRelay),
        ),
        (
            "u1",
            projected("u1", "ns", "p", "a=\"b\""),
            Err(AttestError::NotRelay),
        ),
    ] {
        assert_eq!(decide(dir, &p), want, "{dir} {p:?}");
    }
}
