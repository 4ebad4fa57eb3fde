//! The exposition writer (`exposition/src/write.rs`) against the `prometheus` crate's registry and
//! `TextEncoder`, on one collector scrape: 25 families and 278 samples, shaped as the collector
//! writes them for a launcher pod whose every helper process runs (contract's `FAMILIES`, their
//! labels, values of the size /proc gives). Time per scrape (release build, the mean of
//! [`SCRAPES`] in the quickest of [`BATCHES`] batches) and allocations per scrape (counted by
//! dhat). docs/design.md, "Hand-written, and
//! why", quotes a run; repeat it with
//!
//! ```sh
//! cargo bench -p kube-metrics-exposition --bench writer
//! ```
//!
//! What a scrape costs each way, from values already collected:
//! - the crate: set every sample through `with_label_values`, `Registry::gather`,
//!   `TextEncoder::encode` into a reused buffer. Three ways to hold the series: the registry built
//!   once and every vec reset first (the collector writes each scrape from a fresh collection,
//!   and a process that exited must not leave its series behind); built once and the series
//!   kept (the cheapest, and what it would cost if no series ever went away); a new registry for
//!   each scrape.
//! - ours: `Writer` into a reused buffer, as the collector writes its families.
//!
//! Before anything is timed, both outputs are parsed into their sample lines (labels put in name
//! order, as the crate writes them) and HELP/TYPE lines and compared, so the rows measure the
//! same work.

use std::hint::black_box;
use std::time::{Duration, Instant};

use kube_metrics_exposition::{Format, Kind, Writer};
use prometheus::{CounterVec, Encoder as _, GaugeVec, Opts, Registry, TextEncoder};

#[path = "writer/scrape.rs"]
mod scrape;

use scrape::{Family, PREFIX};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

/// Scrapes timed per row: the best of [`BATCHES`] batches, since other builds share the machine.
const SCRAPES: u32 = 200;
const BATCHES: u32 = 10;
/// Scrapes per row while dhat counts.
const COUNTED_SCRAPES: u64 = 50;

/// One way to write a scrape into a buffer.
type Scrape<'a> = Box<dyn Fn(&mut Vec<u8>) + 'a>;

/// A family's vec in the crate's registry.
#[derive(Clone)]
enum Series {
    Counter(CounterVec),
    Gauge(GaugeVec),
}

/// The crate's side: a registry holding one vec per family.
struct Crate {
    registry: Registry,
    vecs: Vec<Series>,
}

fn main() {
    let families = scrape::families();
    let samples: usize = families.iter().map(|f| f.samples.len()).sum();
    let built = Crate::new(&families);
    let mut out = Vec::new();
    same_samples(&families, &built, &mut out);

    let rows: [(&str, Scrape<'_>); 5] = [
        (
            "`prometheus` 0.14: reset, set, gather, encode",
            Box::new(|out| built.scrape(&families, true, out)),
        ),
        (
            "`prometheus` 0.14: set (series kept), gather, encode",
            Box::new(|out| built.scrape(&families, false, out)),
        ),
        (
            "`prometheus` 0.14: new registry, set, gather, encode",
            Box::new(|out| Crate::new(&families).scrape(&families, false, out)),
        ),
        (
            "`Writer`",
            Box::new(|out| write(&families, Format::Text, out)),
        ),
        (
            "`Writer`, OpenMetrics 1.0.0",
            Box::new(|out| write(&families, Format::OpenMetrics, out)),
        ),
    ];
    let timed: Vec<(Duration, usize)> = rows
        .iter()
        .map(|(_, scrape)| {
            let time = time(scrape.as_ref(), &mut out);
            (time, out.len())
        })
        .collect();
    // Every allocation pays dhat's check even while it does not count, and the crate makes
    // thousands: what one costs, to take them all away from the crate's time below.
    let pair = allocation_cost();
    // dhat counts only while its profiler runs, and slows every allocation while it does: the
    // times above are taken before it starts.
    let _profiler = dhat::Profiler::builder().testing().build();
    println!(
        "One scrape: {} families, {samples} samples, text 0.0.4 unless said; time: mean of {SCRAPES} \
         scrapes, best of {BATCHES} batches; allocations over {COUNTED_SCRAPES}. An allocation and its free cost {:.0} ns \
         here (dhat's idle check included).\n",
        families.len(),
        pair.as_secs_f64() * 1e9,
    );
    println!(
        "| encoder | time per scrape | allocations | bytes allocated | output | time, x the writer \
         | x the writer, with no cost for allocations |"
    );
    println!("|---|---|---|---|---|---|---|");
    let counted: Vec<(Duration, u64, u64)> = rows
        .iter()
        .zip(&timed)
        .map(|((_, scrape), (time, _))| {
            let (blocks, bytes) = allocations(scrape.as_ref(), &mut out);
            (*time, blocks, bytes)
        })
        .collect();
    let writer = counted.get(3).map_or(Duration::MAX, |(time, _, _)| *time);
    let ratio = |t: Duration| t.as_secs_f64() / writer.as_secs_f64();
    for ((name, _), ((time, blocks, bytes), (_, len))) in
        rows.iter().zip(counted.iter().zip(&timed))
    {
        let free = time.saturating_sub(pair * u32::try_from(*blocks).unwrap_or(u32::MAX));
        println!(
            "| {name} | {:.1} µs | {blocks} | {bytes} B | {len} B | {:.1} | {:.1} |",
            time.as_secs_f64() * 1e6,
            ratio(*time),
            ratio(free),
        );
    }
}

// === impl Crate ===

impl Crate {
    /// The registry with one vec per family: `host` and `domain` as constant labels, the way a
    /// collector built on the crate would hold a pod's identity.
    fn new(families: &[Family]) -> Self {
        let registry = Registry::new();
        let vecs = families
            .iter()
            .map(|f| {
                let mut opts = Opts::new(f.name, f.help);
                if f.prefixed {
                    for (name, value) in PREFIX {
                        opts = opts.const_label(name, value);
                    }
                }
                let vec = match f.kind {
                    Kind::Counter => Series::Counter(CounterVec::new(opts, f.labels).expect("vec")),
                    _ => Series::Gauge(GaugeVec::new(opts, f.labels).expect("vec")),
                };
                let collector: Box<dyn prometheus::core::Collector> = match &vec {
                    Series::Counter(v) => Box::new(v.clone()),
                    Series::Gauge(v) => Box::new(v.clone()),
                };
                registry.register(collector).expect("register");
                vec
            })
            .collect();
        Self { registry, vecs }
    }

    /// Sets this scrape's values, after dropping every series when `reset`, then gathers and
    /// encodes them into `out`.
    fn scrape(&self, families: &[Family], reset: bool, out: &mut Vec<u8>) {
        for (family, vec) in families.iter().zip(&self.vecs) {
            match vec {
                Series::Counter(v) => {
                    if reset {
                        v.reset();
                    }
                    for (values, value) in &family.samples {
                        // A counter only goes up: by what the collection added since.
                        let counter = v.with_label_values(values);
                        counter.inc_by((*value - counter.get()).max(0.0));
                    }
                }
                Series::Gauge(v) => {
                    if reset {
                        v.reset();
                    }
                    for (values, value) in &family.samples {
                        v.with_label_values(values).set(*value);
                    }
                }
            }
        }
        out.clear();
        let gathered = self.registry.gather();
        TextEncoder::new().encode(&gathered, out).expect("encode");
    }
}

/// One scrape through the writer, as the collector writes it.
fn write(families: &[Family], format: Format, out: &mut Vec<u8>) {
    out.clear();
    let mut w = Writer::new(out, format);
    w.set_prefix(&PREFIX);
    for f in families {
        w.family(f.name, f.help, f.kind);
        for (values, value) in &f.samples {
            let mut labels = [("", ""); 6];
            for ((slot, name), value) in labels.iter_mut().zip(f.labels).zip(values) {
                *slot = (name, value.as_str());
            }
            let labels = labels.get(..f.labels.len()).unwrap_or_default();
            w.sample(f.prefixed, labels, *value);
        }
    }
    w.finish();
}

/// Panics unless the crate and the writer write the same HELP, TYPE and samples.
fn same_samples(families: &[Family], built: &Crate, out: &mut Vec<u8>) {
    built.scrape(families, true, out);
    let theirs = scrape::normalise(&String::from_utf8_lossy(out));
    write(families, Format::Text, out);
    let ours = scrape::normalise(&String::from_utf8_lossy(out));
    let samples: usize = families.iter().map(|f| f.samples.len()).sum();
    assert_eq!(ours.iter().filter(|l| !l.starts_with('#')).count(), samples);
    if theirs != ours {
        for (a, b) in theirs.iter().zip(&ours).filter(|(a, b)| a != b).take(5) {
            eprintln!("prometheus: {a}\nwriter:     {b}");
        }
        panic!("the crate and the writer disagree");
    }
}

/// Time of one scrape: the mean of [`SCRAPES`], in the quickest of [`BATCHES`] batches, after
/// one scrape to warm up.
fn time(scrape: &dyn Fn(&mut Vec<u8>), out: &mut Vec<u8>) -> Duration {
    scrape(out);
    (0..BATCHES)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..SCRAPES {
                scrape(black_box(out));
            }
            start.elapsed() / SCRAPES
        })
        .min()
        .unwrap_or_default()
}

/// Mean time of one small allocation and its free, under the global allocator.
fn allocation_cost() -> Duration {
    const PAIRS: u32 = 1_000_000;
    let start = Instant::now();
    for _ in 0..PAIRS {
        drop(black_box(Vec::<u8>::with_capacity(black_box(48))));
    }
    start.elapsed() / PAIRS
}

/// Allocations and bytes of one scrape, counted by dhat over [`COUNTED_SCRAPES`] scrapes.
fn allocations(scrape: &dyn Fn(&mut Vec<u8>), out: &mut Vec<u8>) -> (u64, u64) {
    scrape(out);
    let before = dhat::HeapStats::get();
    for _ in 0..COUNTED_SCRAPES {
        scrape(black_box(out));
    }
    let after = dhat::HeapStats::get();
    (
        (after.total_blocks - before.total_blocks) / COUNTED_SCRAPES,
        (after.total_bytes - before.total_bytes) / COUNTED_SCRAPES,
    )
}
