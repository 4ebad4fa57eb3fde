//! `webhook/src/quantity.rs` against the `kube_quantity` crate, on the quantities the webhook
//! meets (the policy's flags, the per-pod overrides, every container's requests and limits) and on
//! ones it must refuse: time per parse (release build, the best of [`BATCHES`] batches), allocations
//! per parse (counted by dhat), and every input and comparison where the two disagree.
//! docs/design.md, "Hand-written, and why", quotes a run; repeat it with
//!
//! ```sh
//! cargo bench -p kube-metrics-webhook --bench quantity
//! ```
//!
//! What the webhook does with a quantity: `request == limit` for every container (Guaranteed QoS,
//! where `1Gi` must equal `1024Mi` and `1073741824`), `request <= override <= max` for an
//! override, and zero for a flag. Ours keeps the text too (for warnings); the crate's value would
//! need it kept beside it.

use std::hint::black_box;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use kube_metrics_webhook::quantity;
use kube_quantity::ParsedQuantity;

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

const ROUNDS: u32 = 2_000;
const BATCHES: u32 = 10;
const COUNTED_ROUNDS: u64 = 20;

/// Quantities as pods, VMIs' launcher pods and the webhook's flags write them.
const VALID: [&str; 30] = [
    "100m",
    "250m",
    "1",
    "2",
    "0.5",
    "1.5",
    "1e3",
    "64Mi",
    "32Mi",
    "2320Mi",
    "1Gi",
    "0.5Gi",
    "1.5Gi",
    "1024Mi",
    "128974848",
    "129e6",
    "129M",
    "1k",
    "1Ki",
    ".5",
    "+2",
    "5n",
    "1u",
    "1E-3",
    "0",
    "1T",
    "1P",
    "1E",
    "8E",
    "1Ei",
];

/// What Kubernetes refuses, and what the webhook must not read as a resource.
const INVALID: [&str; 16] = [
    "",
    "-1",
    "1.2.3",
    "m",
    ".",
    "1x",
    "1 Mi",
    "1mi",
    "1e",
    "1e99",
    "Mi",
    "1.5.Mi",
    "0x10",
    "1,5",
    "NaN",
    "999999999999999999999999999999Ei",
];

/// Pairs the webhook compares, each both ways round: a request and a limit of one container,
/// written as people write them.
const PAIRS: [(&str, &str); 20] = [
    ("1Gi", "1024Mi"),
    ("1", "1000m"),
    ("0.5", "500m"),
    ("1e3", "1k"),
    ("0.5Gi", "512Mi"),
    ("1.5Gi", "1536Mi"),
    ("1Gi", "1073741824"),
    ("2320Mi", "2432696320"),
    ("64Mi", "67108864"),
    ("1Ki", "1024"),
    ("1Mi", "1048576"),
    ("100m", "0.1"),
    ("0.1Gi", "102.4Mi"),
    ("1E-3", "1m"),
    ("1Ei", "1024Pi"),
    ("1E", "1000P"),
    ("1Gi", "1G"),
    ("9007199254740993", "9007199254740992"),
    ("1.000000001", "1"),
    ("100E", "1n"),
];

/// One parser, over a list of texts.
type Parse<'a> = &'a dyn Fn(&[&str]);

/// What one parser made of a text.
#[derive(Debug, PartialEq)]
enum Read {
    /// The value in units, as text with its digits exact where the parser keeps them.
    Value(String),
    Refused,
    Panicked,
}

fn main() {
    let inputs: Vec<&str> = VALID.iter().chain(&INVALID).copied().collect();
    let ours = |texts: &[&str]| {
        for text in texts {
            black_box(quantity::parse(black_box(text)));
        }
    };
    let theirs = |texts: &[&str]| {
        for text in texts {
            black_box(ParsedQuantity::try_from(black_box(*text)).ok());
        }
    };
    let rows: [(&str, Parse<'_>); 2] = [
        ("`quantity::parse`", &ours),
        ("`kube_quantity` 0.9", &theirs),
    ];
    let sets = [("valid", &VALID[..]), ("invalid", &INVALID[..])];
    let timed: Vec<Vec<Duration>> = rows
        .iter()
        .map(|(_, parse)| sets.iter().map(|(_, texts)| time(*parse, texts)).collect())
        .collect();
    std::panic::set_hook(Box::new(|_| {}));
    let _profiler = dhat::Profiler::builder().testing().build();
    println!(
        "| parser | per valid quantity ({}) | per invalid one ({}) |",
        VALID.len(),
        INVALID.len()
    );
    println!("|---|---|---|");
    for ((name, parse), times) in rows.iter().zip(&timed) {
        let cells: Vec<String> = sets
            .iter()
            .zip(times)
            .map(|((_, texts), time)| {
                let (blocks, bytes) = allocations(*parse, texts);
                format!(
                    "{:.0} ns, {blocks:.1} allocations ({bytes:.0} B)",
                    time.as_secs_f64() * 1e9
                )
            })
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
    println!("\n| input | `quantity::parse` | `kube_quantity` |\n|---|---|---|");
    for text in &inputs {
        let (a, b) = (read_ours(text), read_theirs(text));
        if a != b {
            println!("| `{text:?}` | {} | {} |", shown(&a), shown(&b));
        }
    }
    println!(
        "\n| pair | `quantity::parse`: a == b, b == a | `kube_quantity`: a == b, b == a |\n|---|---|---|"
    );
    for (a, b) in PAIRS {
        let ours = [equal_ours(a, b), equal_ours(b, a)].join(", ");
        let theirs = [equal_theirs(a, b), equal_theirs(b, a)].join(", ");
        let mark = if ours == theirs { "" } else { " **differs**" };
        println!("| `{a}`, `{b}` | {ours} | {theirs}{mark} |");
    }
    println!(
        "\n(inputs on which both agree are not listed: {} of {})",
        inputs
            .iter()
            .filter(|t| read_ours(t) == read_theirs(t))
            .count(),
        inputs.len()
    );
}

fn equal_ours(a: &str, b: &str) -> String {
    match (quantity::parse(a), quantity::parse(b)) {
        (Some(a), Some(b)) => (a.nano() == b.nano()).to_string(),
        _ => "refused".to_owned(),
    }
}

fn equal_theirs(a: &str, b: &str) -> String {
    catch_unwind(
        || match (ParsedQuantity::try_from(a), ParsedQuantity::try_from(b)) {
            (Ok(a), Ok(b)) => (a == b).to_string(),
            _ => "refused".to_owned(),
        },
    )
    .unwrap_or_else(|_| "panics".to_owned())
}

fn read_ours(text: &str) -> Read {
    match quantity::parse(text) {
        Some(q) => Read::Value(units(q.nano())),
        None => Read::Refused,
    }
}

/// The crate's value in units: `to_bytes_f64`, the one accessor for a value below 1 (its integer
/// ones truncate `100m` to 0), printed exactly when it is whole.
fn read_theirs(text: &str) -> Read {
    match catch_unwind(AssertUnwindSafe(|| {
        ParsedQuantity::try_from(text).map(|q| q.to_bytes_f64())
    })) {
        Ok(Ok(Some(value))) => Read::Value(float_units(value)),
        Ok(Ok(None)) | Ok(Err(_)) => Read::Refused,
        Err(_) => Read::Panicked,
    }
}

/// Nano-units as a decimal number of units.
fn units(nano: u128) -> String {
    let (whole, frac) = (nano / 1_000_000_000, nano % 1_000_000_000);
    match frac {
        0 => whole.to_string(),
        frac => format!("{whole}.{}", format!("{frac:09}").trim_end_matches('0')),
    }
}

/// A float of units printed as [`units`] prints, so equal values print alike.
fn float_units(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e30 {
        format!("{value:.0}")
    } else {
        value.to_string()
    }
}

fn shown(read: &Read) -> String {
    match read {
        Read::Value(value) => value.clone(),
        Read::Refused => "refused".to_owned(),
        Read::Panicked => "**panics**".to_owned(),
    }
}

/// Time of one parse: `ROUNDS` rounds over `texts`, the quickest of `BATCHES` batches.
fn time(parse: &dyn Fn(&[&str]), texts: &[&str]) -> Duration {
    parse(texts);
    (0..BATCHES)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..ROUNDS {
                parse(black_box(texts));
            }
            start.elapsed() / (ROUNDS * texts.len() as u32)
        })
        .min()
        .unwrap_or_default()
}

/// Allocations and bytes of one parse, counted by dhat.
fn allocations(parse: &dyn Fn(&[&str]), texts: &[&str]) -> (f64, f64) {
    let before = dhat::HeapStats::get();
    for _ in 0..COUNTED_ROUNDS {
        parse(black_box(texts));
    }
    let after = dhat::HeapStats::get();
    let per = (COUNTED_ROUNDS * texts.len() as u64) as f64;
    (
        (after.total_blocks - before.total_blocks) as f64 / per,
        (after.total_bytes - before.total_bytes) as f64 / per,
    )
}
