//! The downward-API volume read through the kubelet's own symlinks only, and the route it decides.

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
        // Go's escapes are undone; a value other than direct or relay is refused later.
        ("kube-metrics-collector.io/scrape=\"a\\nb\"", Some("a\nb")),
        ("kube-metrics-collector.io/scrape=\"a\\qb\"", None),
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
    let logged = Identity {
        namespace: "ns".into(),
        pod: "p".into(),
    };
    let relayed = Ok(Route::Relay(logged.clone()));
    let old = Projected {
        labels: Some(relay.into()),
        ..Projected::default()
    };
    for (case, p, log, want) in [
        (
            "all agree",
            projected("u1", "ns", "p", relay),
            true,
            relayed.clone(),
        ),
        (
            "trailing newline",
            projected("u1\n", "ns\n", "p", relay),
            true,
            relayed.clone(),
        ),
        ("before the upgrade", old.clone(), true, relayed.clone()),
        (
            "direct",
            projected("u1", "ns", "p", direct),
            true,
            Ok(Route::Direct),
        ),
        (
            "another uid",
            projected("u2", "ns", "p", relay),
            true,
            Err(AttestError::UidMismatch),
        ),
        (
            "forged namespace",
            projected("u1", "victim", "p", relay),
            true,
            Err(AttestError::Mismatch),
        ),
        (
            "forged name",
            projected("u1", "ns", "victim", relay),
            true,
            Err(AttestError::Mismatch),
        ),
        (
            "no log directory",
            projected("u1", "ns", "p", relay),
            false,
            Err(AttestError::Missing),
        ),
        (
            "no labels",
            projected("u1", "ns", "p", ""),
            true,
            Err(AttestError::NotRelay),
        ),
        (
            "no scrape label",
            projected("u1", "ns", "p", "a=\"b\""),
            true,
            Err(AttestError::NotRelay),
        ),
    ] {
        let log = log.then_some(&logged);
        assert_eq!(decide("u1", &p, log), want, "{case}");
    }
}
