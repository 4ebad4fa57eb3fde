//! The relay forwards a sample only when each of its labels is one its family carries in
//! `kube_metrics_contract::metrics::FAMILIES`: these lists must be exactly what the collector
//! writes, or the relay would drop the collector's own series (or let foreign ones through).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{Tree, env, mk, text};
use kube_metrics_collector::scrape::Scraper;
use kube_metrics_contract::metrics::FAMILIES;
use kube_metrics_contract::sidecar::{
    PODINFO_ANNOTATIONS, PODINFO_MEMORY_LIMIT, PODINFO_MEMORY_REQUEST,
};
use kube_metrics_node::relay::merge::{Identity, merge};
use kube_metrics_node::relay::parse::Parsed;
use kube_metrics_runtime::{ConnectionStats, Kind};

/// Each family of `text` with the label names of its samples, in the order written; fails on a
/// family whose samples disagree on them.
fn label_names(text: &str) -> BTreeMap<String, Vec<String>> {
    let parsed = Parsed::from_text(text);
    assert_eq!(parsed.malformed, 0, "{text}");
    let mut names = BTreeMap::new();
    for family in parsed.families {
        for sample in &family.samples {
            let labels: Vec<String> = sample.labels.iter().map(|(n, _)| n.to_string()).collect();
            let first = names.entry(family.name.clone()).or_insert(labels.clone());
            assert_eq!(*first, labels, "{}", sample.line);
        }
    }
    names
}

/// A pod whose collector writes every family: the pod's identity, node and memory from the
/// downward API, a virt-launcher and a QEMU whose guest RAM was read from `smaps`.
fn every_family() -> Tree {
    let tree = Tree::new();
    tree.podinfo_file(
        PODINFO_ANNOTATIONS,
        "kubevirt.io/domain=\"vm-0\"\nkubevirt.io/memory-overhead-bytes=\"231735296\"\n",
    );
    tree.podinfo_file(PODINFO_MEMORY_REQUEST, "2147483648\n");
    tree.podinfo_file(PODINFO_MEMORY_LIMIT, "2147483648\n");
    tree.put(&mk(11, "/usr/bin/virt-launcher", "virt-launcher"));
    tree.put_captured_qemu(90, "dimm-hotplug-256m-tcg");
    tree
}

/// The scraper of a collector serving both listeners.
fn serving(tree: &Tree) -> Scraper {
    let mut scraper = tree.scraper(env());
    scraper.count_connections(Kind::ALL.to_vec(), Arc::new(ConnectionStats::default()));
    scraper
}

#[test]
fn every_family_carries_exactly_the_contracts_labels_in_its_order() {
    let tree = every_family();
    let written = label_names(&text(&mut serving(&tree)));
    for family in FAMILIES {
        let labels = written
            .get(family.name)
            .unwrap_or_else(|| panic!("{} not written: {written:?}", family.name));
        assert_eq!(*labels, family.labels, "{}", family.name);
    }
    assert_eq!(written.len(), FAMILIES.len(), "{written:?}");
}

#[test]
fn the_golden_exposition_has_only_the_contracts_labels() {
    let golden = include_str!("fixtures/golden/launcher-pod.prom");
    for (name, labels) in label_names(golden) {
        let family = FAMILIES.iter().find(|f| f.name == name);
        let family = family.unwrap_or_else(|| panic!("{name} is not in the contract"));
        assert_eq!(labels, family.labels, "{name}");
    }
}

#[test]
fn the_relay_forwards_every_family_and_every_line_the_collector_writes() {
    let tree = every_family();
    let written = text(&mut serving(&tree));
    let pod = Identity {
        namespace: "ns-0".into(),
        pod: "virt-launcher-vm-0-abcde".into(),
    };
    let merged = merge(&[(pod, &written)]);
    let report = &merged.targets[0];
    assert!(report.identity.is_ok(), "{:?}", report.identity);
    assert_eq!(report.dropped, Default::default(), "{merged:?}");
    let samples = |text: &str| text.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(samples(&merged.text), samples(&written));
    for family in FAMILIES {
        let typed = format!("# TYPE {} {}\n", family.name, family.kind);
        assert!(
            merged.text.contains(&typed),
            "{} not forwarded",
            family.name
        );
    }
}

/// The relay forwards exactly the contract's families with the contract's types: the list
/// here and what the collector declares must both agree with it.
#[test]
fn families_and_their_types_match_the_contract() {
    let golden = include_str!("fixtures/golden/launcher-pod.prom");
    let mut typed = 0;
    for line in golden.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let (name, kind) = line.split_once(' ').unwrap();
        assert_eq!(
            kube_metrics_contract::metrics::family_type(name),
            Some(kind),
            "{name}"
        );
        typed += 1;
    }
    assert!(typed >= 15, "{typed} TYPE lines in the golden exposition");
}
