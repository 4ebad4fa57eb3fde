//! The user-workload rewrite (`contract/src/user_workload.rs`) against a PromQL parser crate,
//! `promql-parser`, on every `expr:` of the default PrometheusRule: time per expression of our
//! rewrite and of the crate's parse and print (release build), and how many expressions come back
//! from the crate's parse and print as they went in. docs/design.md, "Hand-written, and why",
//! quotes a run; repeat it with
//!
//! ```sh
//! cargo bench -p kube-metrics-contract --bench rewrite
//! ```
//!
//! The parse and print is only where a rewrite through the crate would start (it would still have
//! to find and change the selectors in the tree), so its time is a lower bound of that rewrite's.

use std::hint::black_box;
use std::time::{Duration, Instant};

use kube_metrics_contract::user_workload::rewrite;
use promql_parser::parser::{self, Expr};

/// The rule file the OpenShift one is generated from (`tests/src/user_workload.rs`).
const RULES: &str = include_str!("../../manifests/components/monitoring/prometheusrule.yaml");
/// The namespace the manifests install into, as the generated rule file is rewritten for.
const INSTALL_NAMESPACE: &str = "kube-metrics-collector";
/// Passes over every expression, for the time.
const PASSES: u32 = 500;

/// One way of turning an expression into text.
type Print = fn(&str) -> Option<String>;

fn main() {
    let exprs = exprs(RULES);
    assert!(!exprs.is_empty(), "no `expr: |` block in the rule file");
    let bytes: usize = exprs.iter().map(|e| e.len()).sum();
    let ways: [(&str, Print); 4] = [
        ("`user_workload::rewrite`", |e| {
            rewrite(e, INSTALL_NAMESPACE).ok()
        }),
        ("promql-parser 0.11: `parse`", |e| {
            parser::parse(e).ok().map(|_| String::new())
        }),
        ("`parse`, then `Display`", |e| {
            parser::parse(e).ok().map(|x| x.to_string())
        }),
        ("`parse`, then `Expr::prettify`", |e| {
            parser::parse(e).ok().as_ref().map(Expr::prettify)
        }),
    ];
    println!(
        "{} expressions, {bytes} B, from manifests/components/monitoring/prometheusrule.yaml",
        exprs.len()
    );
    println!("| | time per expression | failed | byte-identical to the input | lines kept |");
    println!("|---|---|---|---|---|");
    for (name, print) in ways {
        let outputs: Vec<Option<String>> = exprs.iter().map(|e| print(e)).collect();
        let failed = outputs.iter().filter(|o| o.is_none()).count();
        let printed = name != "promql-parser 0.11: `parse`";
        let (identical, lines) = match printed {
            true => (
                count(&exprs, &outputs, |e, o| e == o).to_string(),
                count(&exprs, &outputs, |e, o| {
                    e.lines().count() == o.lines().count()
                })
                .to_string(),
            ),
            false => ("-".to_owned(), "-".to_owned()),
        };
        println!(
            "| {name} | {} | {failed} | {identical} | {lines} |",
            micros(time(print, &exprs))
        );
    }
    first_reformatted(&exprs);
}

/// The body of each `expr: |` block, its indentation removed, as `tests/src/user_workload.rs`
/// hands it to the rewrite.
fn exprs(rules: &str) -> Vec<String> {
    let mut exprs = Vec::new();
    let mut lines = rules.lines().peekable();
    while let Some(line) = lines.next() {
        if !line.trim_end().ends_with("expr: |") {
            continue;
        }
        let indent = " ".repeat(line.len() - line.trim_start().len() + 2);
        let mut block = Vec::new();
        while let Some(next) = lines.next_if(|l| l.starts_with(&indent) || l.trim().is_empty()) {
            block.push(next.strip_prefix(indent.as_str()).unwrap_or(""));
        }
        exprs.push(block.join("\n").trim_end().to_owned());
    }
    exprs
}

/// Expressions whose output is there and passes `same` against the input.
fn count(exprs: &[String], outputs: &[Option<String>], same: fn(&str, &str) -> bool) -> usize {
    exprs
        .iter()
        .zip(outputs)
        .filter(|(e, o)| o.as_deref().is_some_and(|o| same(e, o)))
        .count()
}

/// Mean time per expression over [`PASSES`] passes, after one to warm up.
fn time(print: Print, exprs: &[String]) -> Duration {
    let pass = || {
        for e in exprs {
            black_box(print(black_box(e)));
        }
    };
    pass();
    let start = Instant::now();
    for _ in 0..PASSES {
        pass();
    }
    start.elapsed() / (PASSES * exprs.len() as u32)
}

fn micros(time: Duration) -> String {
    format!("{:.1} µs", time.as_secs_f64() * 1e6)
}

/// The first multi-line expression as the crate prints it back, to show what reformatting means.
fn first_reformatted(exprs: &[String]) {
    let Some((e, printed)) = exprs
        .iter()
        .filter(|e| e.contains('\n'))
        .find_map(|e| Some((e, parser::parse(e).ok()?)))
    else {
        return;
    };
    println!(
        "\nInput:\n{e}\n\nDisplay:\n{printed}\n\nprettify:\n{}",
        printed.prettify()
    );
}
