//! The relay's reading of the text format against Prometheus' own, through `promtool check
//! metrics` (scripts/setup installs it): every value spelling of the parser's decision table reads
//! as promtool reads it, and whatever the relay forwards of generated hostile targets, promtool
//! accepts whole. promtool runs on one batch of everything forwarded, not once per case.

use std::io::Write as _;
use std::process::{Command, Stdio};

use kube_metrics_contract::metrics::{FAMILIES, POD_INFO};
use kube_metrics_node::relay::merge::{Identity, merge};
use kube_metrics_node::relay::parse::{VALUE_SPELLINGS, is_sample_value};
use proptest::prelude::*;
use proptest::strategy::ValueTree as _;
use proptest::test_runner::TestRunner;

/// Targets per batch, and sample lines per target at most.
const TARGETS: usize = 300;
const LINES: usize = 40;
/// Spellings the relay refuses that are each checked to be refused by promtool too.
const REFUSED_CHECKED: usize = 40;

/// `promtool check metrics` on `text`: Ok, or what promtool said.
fn promtool(text: &str) -> Result<(), String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool: run scripts/setup");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    match output.status.success() {
        true => Ok(()),
        false => Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )),
    }
}

/// One gauge sample per value, under a HELP so that promtool's linter has nothing to say.
fn gauge_with_values<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    let mut text = String::from("# HELP m M.\n# TYPE m gauge\n");
    for (i, value) in values.into_iter().enumerate() {
        text.push_str(&format!("m{{i=\"{i}\"}} {value}\n"));
    }
    text
}

/// Checks that promtool reads each of `accepted` and none of `refused`.
fn agree_with_promtool(accepted: &[&str], refused: &[&str]) {
    let batch = gauge_with_values(accepted.iter().copied());
    promtool(&batch).unwrap_or_else(|e| panic!("promtool refused a value the relay reads: {e}"));
    for token in refused {
        assert!(
            promtool(&gauge_with_values([*token])).is_err(),
            "promtool reads {token:?}, which the relay refuses"
        );
    }
}

#[test]
fn the_value_decision_table_is_what_promtool_reads() {
    let (accepted, refused): (Vec<_>, Vec<_>) = VALUE_SPELLINGS.iter().partition(|(_, ok)| *ok);
    let accepted: Vec<&str> = accepted.iter().map(|(t, _)| *t).collect();
    let refused: Vec<&str> = refused.iter().map(|(t, _)| *t).collect();
    agree_with_promtool(&accepted, &refused);
}

/// Value tokens near the edges of the float grammar: digits, dots, exponents, signs, the special
/// words and the characters Prometheus refuses outright.
fn value_token() -> impl Strategy<Value = String> {
    prop_oneof![
        "[+-]?[0-9]{0,3}(\\.[0-9]{0,3})?([eE][+-]?[0-9]{1,3})?",
        "[+-]?(1|9)\\.[0-9]{0,2}[eE][+-]?3[0-9]{2}",
        "[+-]{0,2}([iI][nN][fF]([iI][nN][iI][tT][yY])?|[nN][aA][nN])",
        "[+-]?0[xX][0-9a-f]{1,3}(\\.[0-9])?([pP][+-]?[0-9])?",
        "[0-9_.eEpPxX+-]{1,6}",
    ]
}

#[test]
fn generated_values_are_read_as_promtool_reads_them() {
    let mut runner = TestRunner::deterministic();
    let strategy = value_token();
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..3000 {
        let token = strategy.new_tree(&mut runner).unwrap().current();
        match is_sample_value(&token) {
            true => accepted.push(token),
            false if !refused.contains(&token) => refused.push(token),
            false => {}
        }
    }
    refused.truncate(REFUSED_CHECKED);
    let accepted: Vec<&str> = accepted.iter().map(String::as_str).collect();
    let refused: Vec<&str> = refused.iter().map(String::as_str).collect();
    assert!(accepted.len() > 500 && refused.len() == REFUSED_CHECKED);
    agree_with_promtool(&accepted, &refused);
}

/// The label names of a sample: some of those its family carries, in its order, and now and
/// then one it does not (reserved, foreign, or one too many).
fn label_names(family: usize) -> impl Strategy<Value = Vec<String>> {
    let allowed: Vec<String> = FAMILIES[family]
        .labels
        .iter()
        .map(|l| l.to_string())
        .collect();
    let count = allowed.len();
    let own = proptest::sample::subsequence(allowed, 0..=count);
    let foreign = proptest::option::weighted(
        0.1,
        proptest::sample::select(vec![
            "job",
            "instance",
            "cluster",
            "prometheus_replica",
            "exported_pod",
            "__name__",
            "le",
            "node",
            "namespace",
            "pod",
            "a",
            "b",
            "c",
            "d",
            "e",
            "f",
            "g",
        ]),
    );
    (own, foreign).prop_map(|(mut names, foreign)| {
        if let Some(name) = foreign.filter(|n| !names.iter().any(|m| m == n)) {
            names.push(name.to_owned());
        }
        names
    })
}

/// A label value as written in the text: plain, escaped, unicode, control characters, long,
/// and rarely an escape the format does not have.
fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![
        400 => "[a-z0-9._-]{0,12}",
        200 => "([a-zé☃ \\t\\x01]|\\\\\\\\|\\\\\"|\\\\n){0,8}",
        40 => "[a-z]{500,520}",
        1 => "\\\\[a-z]",
    ]
}

/// A sample's value: mostly a plain number or special value, sometimes one from the edges.
fn sample_value() -> impl Strategy<Value = String> {
    prop_oneof![
        120 => "[+-]?[0-9]{1,6}(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,2})?",
        20 => "NaN|[+-]Inf|inf|-infinity",
        2 => value_token(),
    ]
}

/// One sample line of family `family`, or a line of something else.
fn line(family: usize) -> impl Strategy<Value = String> {
    let name = FAMILIES[family].name;
    let labels = label_names(family).prop_flat_map(|names| {
        let values = proptest::collection::vec(label_value(), names.len());
        (Just(names), values)
            .prop_map(|(names, values)| names.into_iter().zip(values).collect::<Vec<_>>())
    });
    let timestamp = prop_oneof![
        200 => Just(None),
        20 => "[0-9]{1,13}".prop_map(Some),
        1 => "-[0-9]{1,3}|[0-9]{20}".prop_map(Some),
    ];
    let sample = (labels, sample_value(), timestamp).prop_map(move |(labels, value, timestamp)| {
        let labels: Vec<String> = labels.iter().map(|(n, v)| format!("{n}=\"{v}\"")).collect();
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", labels.join(","))
        };
        let timestamp = timestamp.map(|t| format!(" {t}")).unwrap_or_default();
        format!("{name}{labels} {value}{timestamp}\n")
    });
    prop_oneof![
        200 => sample,
        1 => Just(format!("# TYPE {name} untyped\n")),
        10 => Just("up{job=\"x\"} 1\n".to_owned()),
        10 => Just("kube_metrics_collector_relay_targets{state=\"ok\"} 7\n".to_owned()),
    ]
}

/// A target's exposition: its pod_info, then lines of a few families, each under its HELP
/// and TYPE (the HELP every target gives, so that the answer keeps it).
fn target(namespace: String, pod: String) -> impl Strategy<Value = (Identity, String)> {
    let families = proptest::collection::vec(0..FAMILIES.len(), 1..4);
    families
        .prop_flat_map(|families| {
            let lines: Vec<_> = families
                .iter()
                .map(|f| proptest::collection::vec(line(*f), 0..LINES / 4).prop_map({
                    let f = *f;
                    move |lines| (f, lines)
                }))
                .collect();
            lines
        })
        .prop_map(move |families| {
            let mut text = format!(
                "# HELP {POD_INFO} H.\n# TYPE {POD_INFO} gauge\n{POD_INFO}{{namespace=\"{namespace}\",pod=\"{pod}\"}} 1\n"
            );
            for (f, lines) in families {
                let family = &FAMILIES[f];
                if family.name == POD_INFO {
                    continue;
                }
                text.push_str(&format!("# HELP {} H.\n# TYPE {} {}\n", family.name, family.name, family.kind));
                lines.iter().for_each(|l| text.push_str(l));
            }
            let identity = Identity { namespace: namespace.clone(), pod: pod.clone() };
            (identity, text)
        })
}

#[test]
fn everything_the_relay_forwards_of_generated_targets_passes_promtool() {
    let mut runner = TestRunner::deterministic();
    let mut targets = Vec::with_capacity(TARGETS);
    for i in 0..TARGETS {
        let strategy = target(format!("ns-{}", i % 7), format!("pod-{i}"));
        targets.push(strategy.new_tree(&mut runner).unwrap().current());
    }
    let merged = merge(&targets);
    let accepted = merged.targets.iter().filter(|t| t.identity.is_ok()).count();
    let series = merged.text.lines().filter(|l| !l.starts_with('#')).count();
    let mut reasons = std::collections::BTreeMap::new();
    for report in &merged.targets {
        let reason = report.identity.as_ref().err().map_or("ok", |r| r.reason());
        *reasons.entry(reason).or_insert(0) += 1;
    }
    println!("{TARGETS} generated targets: {reasons:?}; {series} series merged");
    assert!(
        accepted > TARGETS / 2 && series > 1000,
        "{accepted} targets, {series} series"
    );
    if let Err(error) = promtool(&merged.text) {
        // promtool names the line: show it.
        let line = error
            .split("line ")
            .nth(1)
            .and_then(|rest| rest.split(':').next())
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| merged.text.lines().nth(n - 1));
        panic!("promtool refused the relay's answer: {error}\nline: {line:?}");
    }
}
