//! The prometheus-parse crate's text-format parser against the relay's own
//! (`node/src/relay/parse.rs`), on what a collector really sends: time per parse (release build,
//! on text already read) and allocations per parse (counted by dhat). docs/design.md,
//! "Hand-written, and why", quotes a run; repeat it with
//!
//! ```sh
//! cargo bench -p kube-metrics-node --bench parse
//! ```
//!
//! The input is the collector's golden exposition of a launcher pod, alone and as a full node's
//! worth of targets (one body per pod, as the relay parses them), then two bodies a hostile pod
//! can put on its socket. On the first two both parsers must read the same number of samples, or
//! the comparison would not be of the same work.

use std::hint::black_box;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use kube_metrics_contract::limits::{MAX_BODY_BYTES, MAX_SERIES, MAX_TARGETS};
use kube_metrics_node::relay::parse::Parsed;

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

/// `kube-metrics-collector -M` in a launcher pod, as the sidecar's golden test holds it.
const GOLDEN: &str = include_str!("../../sidecar/tests/fixtures/golden/launcher-pod.prom");
/// The golden body's pod and VM, varied per pod for a node's worth.
const GOLDEN_POD: &str = "pod=\"virt-launcher-vm-0-abcde\"";
const GOLDEN_VM: &str = "domain=\"vm-0\"";
/// Labels on the hostile line: far past any family's, well within the body cap.
const HOSTILE_LABELS: usize = 10_000;
/// Parses per input for the time, per input size.
const CALLS_POD: u32 = 2_000;
const CALLS_NODE: u32 = 20;
const CALLS_HOSTILE: u32 = 200;
/// Parses per input while dhat counts.
const COUNTED_CALLS: u64 = 5;

/// What one parse of all of an input's bodies read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Read {
    samples: usize,
    labels: usize,
    /// Lines the parser refused (the relay counts them; the crate has no such count).
    refused: u64,
}

/// One parser, called on every body of an input.
type Parser = fn(&[String]) -> Read;

struct Input {
    name: String,
    bodies: Vec<String>,
    calls: u32,
    /// Both parsers must read every sample of it (the collector's own output).
    same_samples: bool,
}

fn main() {
    let inputs = inputs();
    let parsers: [(&str, Parser); 2] = [("prometheus-parse", crate_parse), ("ours", our_parse)];
    // Time first: dhat slows every allocation once its profiler runs. Before, `dhat::Alloc` still
    // takes a lock per allocation (about 10 ns on the machine of docs/design.md's run, under 5% of
    // the crate's times); the times include it.
    let timed: Vec<[Option<(Duration, Read)>; 2]> = inputs
        .iter()
        .map(|input| parsers.map(|(_, parse)| time(parse, input)))
        .collect();
    let _profiler = dhat::Profiler::builder().testing().build();
    println!(
        "| input | prometheus-parse 0.2: time, allocations, read | hand-written: time, allocations, read | ratio (time, allocations) |"
    );
    println!("|---|---|---|---|");
    for (input, [theirs, ours]) in inputs.iter().zip(timed) {
        let (our_time, our_read) = ours.expect("the relay's parser never panics");
        let our_alloc = allocations(our_parse, &input.bodies);
        let theirs =
            theirs.map(|(time, read)| (time, allocations(crate_parse, &input.bodies), read));
        if input.same_samples {
            let (_, _, their_read) = theirs.expect("the crate reads the collector's own output");
            assert_eq!(their_read.samples, our_read.samples, "{}", input.name);
            assert_eq!(our_read.refused, 0, "{}", input.name);
        }
        let (their_cell, ratio) = match theirs {
            Some((time, alloc, read)) => (
                cost(time, alloc, read),
                format!(
                    "{} time, {} allocations",
                    times(time.as_secs_f64() / our_time.as_secs_f64()),
                    match our_alloc.0 {
                        0 => format!("{} vs none", thousands(alloc.0 as usize)),
                        ours => times(alloc.0 as f64 / ours as f64),
                    }
                ),
            ),
            None => ("**panics**".to_owned(), "-".to_owned()),
        };
        println!(
            "| {} | {their_cell} | {} | {ratio} |",
            input.name,
            cost(our_time, our_alloc, our_read)
        );
    }
    misread_row();
}

fn inputs() -> Vec<Input> {
    let pod = Parsed::from_text(GOLDEN);
    let samples: usize = pod.families.iter().map(|f| f.samples.len()).sum();
    let node: Vec<String> = (0..MAX_TARGETS)
        .map(|i| {
            GOLDEN
                .replace(GOLDEN_POD, &format!("pod=\"virt-launcher-vm-{i}-abcde\""))
                .replace(GOLDEN_VM, &format!("domain=\"vm-{i}\""))
        })
        .collect();
    let node_bytes: usize = node.iter().map(String::len).sum();
    let many_labels = (0..HOSTILE_LABELS)
        .map(|i| format!("l{i}=\"v\""))
        .collect::<Vec<_>>()
        .join(",");
    let many_labels = format!("kubevirt_pod_infra_processes{{{many_labels}}} 1\n");
    // One line filling the body cap, nearly all of it one label value.
    let head = "kubevirt_pod_infra_processes{l=\"";
    let tail = "\"} 1\n";
    let long_value = "x".repeat(MAX_BODY_BYTES - head.len() - tail.len());
    let long_line = format!("{head}{long_value}{tail}");
    vec![
        Input {
            name: format!(
                "one launcher pod ({} B, {samples} samples)",
                thousands(GOLDEN.len())
            ),
            bodies: vec![GOLDEN.to_owned()],
            calls: CALLS_POD,
            same_samples: true,
        },
        Input {
            name: format!(
                "a full node: {MAX_TARGETS} such pods, one body each ({} B, {} samples)",
                thousands(node_bytes),
                thousands(MAX_TARGETS * samples)
            ),
            bodies: node,
            calls: CALLS_NODE,
            same_samples: true,
        },
        Input {
            name: format!(
                "hostile: {} labels on one line ({} B)",
                thousands(HOSTILE_LABELS),
                thousands(many_labels.len())
            ),
            bodies: vec![many_labels],
            calls: CALLS_HOSTILE,
            same_samples: false,
        },
        Input {
            name: format!(
                "hostile: one {} B line, one label value",
                thousands(long_line.len())
            ),
            bodies: vec![long_line],
            calls: CALLS_HOSTILE,
            same_samples: false,
        },
    ]
}

/// The relay's parse of each body, with its per-target sample cap.
fn our_parse(bodies: &[String]) -> Read {
    let mut read = Read::default();
    for body in bodies {
        let parsed = Parsed::read(black_box(body), MAX_SERIES);
        for sample in parsed.families.iter().flat_map(|f| &f.samples) {
            read.samples += 1;
            read.labels += sample.labels.len();
        }
        read.refused += parsed.malformed + parsed.too_many_labels + parsed.label_too_long;
    }
    read
}

/// The crate's parse of each body. `Scrape::parse` takes lines as owned `String`s, so the copy of
/// each line is part of what using it costs.
fn crate_parse(bodies: &[String]) -> Read {
    use prometheus_parse::{Scrape, Value};
    let mut read = Read::default();
    for body in bodies {
        let lines = black_box(body).lines().map(|line| Ok(line.to_owned()));
        let Ok(scrape) = Scrape::parse(lines) else {
            continue;
        };
        for sample in &scrape.samples {
            // A histogram's or summary's buckets come back as one sample; count their lines.
            read.samples += match &sample.value {
                Value::Histogram(buckets) => buckets.len(),
                Value::Summary(quantiles) => quantiles.len(),
                _ => 1,
            };
            read.labels += sample.labels.len();
        }
    }
    read
}

/// Mean time of one parse of all of `input`'s bodies, after one to warm up; `None` if the parser
/// panics on it.
fn time(parse: Parser, input: &Input) -> Option<(Duration, Read)> {
    let read = catch_unwind(AssertUnwindSafe(|| parse(&input.bodies))).ok()?;
    let start = Instant::now();
    for _ in 0..input.calls {
        black_box(parse(&input.bodies));
    }
    Some((start.elapsed() / input.calls, read))
}

/// Allocations and bytes of one parse, counted by dhat over [`COUNTED_CALLS`] parses.
fn allocations(parse: Parser, bodies: &[String]) -> (u64, u64) {
    let before = dhat::HeapStats::get();
    for _ in 0..COUNTED_CALLS {
        black_box(parse(bodies));
    }
    let after = dhat::HeapStats::get();
    (
        (after.total_blocks - before.total_blocks) / COUNTED_CALLS,
        (after.total_bytes - before.total_bytes) / COUNTED_CALLS,
    )
}

fn cost(time: Duration, (blocks, bytes): (u64, u64), read: Read) -> String {
    let time = if time >= Duration::from_millis(1) {
        format!("{:.2} ms", time.as_secs_f64() * 1e3)
    } else {
        format!("{:.2} µs", time.as_secs_f64() * 1e6)
    };
    let allocations = match blocks {
        0 => "none".to_owned(),
        n => format!(
            "{} allocations, {} B",
            thousands(n as usize),
            thousands(bytes as usize)
        ),
    };
    let samples = match read.samples {
        1 => "1 sample".to_owned(),
        n => format!("{} samples", thousands(n)),
    };
    let read = match read.refused {
        0 => samples,
        1 => format!("{samples}, its line refused"),
        n => format!("{samples}, {n} lines refused"),
    };
    format!("{time}, {allocations}; {read}")
}

/// A label value holding `,` and `=`, which the format allows unescaped: what each parser reads.
fn misread_row() {
    let line = "kubevirt_pod_infra_processes{l=\"a,b=c\"} 1\n";
    let ours: Vec<String> = Parsed::from_text(line)
        .families
        .iter()
        .flat_map(|f| &f.samples)
        .flat_map(|s| &s.labels)
        .map(|(name, value)| format!("{name}={value:?}"))
        .collect();
    let lines = line.lines().map(|l| Ok(l.to_owned()));
    let mut theirs: Vec<String> = prometheus_parse::Scrape::parse(lines)
        .map(|scrape| scrape.samples)
        .unwrap_or_default()
        .iter()
        .flat_map(|s| s.labels.iter())
        .map(|(name, value)| format!("{name}={value:?}"))
        .collect();
    theirs.sort();
    println!(
        "| `{}` | labels {theirs:?} | labels {ours:?} | - |",
        line.trim_end()
    );
}

/// A ratio, to two significant digits or as a whole number.
fn times(ratio: f64) -> String {
    match ratio {
        r if r < 10.0 => format!("{r:.1}×"),
        r => format!("{}×", thousands(r.round() as usize)),
    }
}

/// `12345` as `12,345`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
