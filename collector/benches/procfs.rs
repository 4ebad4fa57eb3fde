//! The procfs crate's `/proc` parsers against the collector's own (`collector/src/proc/parse.rs`),
//! on the files of one live process: time per call (release build, 10,000 calls on bytes already
//! read) and allocations per call (counted by dhat). docs/design.md, "Hand-written, and why",
//! quotes a run; repeat it with
//!
//! ```sh
//! cargo bench -p kube-metrics-collect --bench procfs
//! ```
//!
//! The process is a Python interpreter with 300 MiB in 300 anonymous mappings, so that `smaps` has
//! the size of a launcher pod's busiest process.

use std::hint::black_box;
use std::io::Read as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kube_metrics_collect::proc::parse;
use procfs::{FromBufRead as _, FromRead as _};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

/// Calls per parser for the time; `smaps` is two thousand times larger, so it gets fewer.
const CALLS: u32 = 10_000;
const SMAPS_CALLS: u32 = 200;
/// Calls per parser while dhat counts.
const COUNTED_CALLS: u64 = 100;

/// One parser, called on a file's bytes.
type Parser = Box<dyn Fn(&[u8])>;

struct Row {
    file: &'static str,
    bytes: usize,
    calls: u32,
    procfs: Parser,
    ours: Parser,
}

fn main() {
    let mut child = python_with_mappings();
    let pid = child.id();
    let read = |name: &str| std::fs::read(format!("/proc/{pid}/{name}")).expect("read /proc");
    let files = [
        ("stat", read("stat"), CALLS),
        ("status", read("status"), CALLS),
        ("io", read("io"), CALLS),
        ("smaps_rollup", read("smaps_rollup"), CALLS),
        ("smaps", read("smaps"), SMAPS_CALLS),
    ];
    let rows: Vec<(Row, Vec<u8>)> = files
        .into_iter()
        .map(|(file, bytes, calls)| (row(file, bytes.len(), calls), bytes))
        .collect();
    println!("| file (size) | procfs 0.18: time, allocations | hand-written: time, allocations |");
    println!("|---|---|---|");
    let timed: Vec<(Duration, Duration)> = rows
        .iter()
        .map(|(row, bytes)| {
            (
                time(&row.procfs, bytes, row.calls),
                time(&row.ours, bytes, row.calls),
            )
        })
        .collect();
    // dhat counts only while its profiler runs, and slows every allocation while it does: the
    // times above are taken before it starts.
    let _profiler = dhat::Profiler::builder().testing().build();
    for ((row, bytes), (procfs_time, our_time)) in rows.iter().zip(timed) {
        println!(
            "| `{}` ({} B) | {} | {} |",
            row.file,
            row.bytes,
            cost(procfs_time, allocations(&row.procfs, bytes)),
            cost(our_time, allocations(&row.ours, bytes)),
        );
    }
    let truncated = b"1 (a)";
    let procfs_truncated = std::panic::catch_unwind(|| {
        let _ = procfs::process::Stat::from_read(&truncated[..]);
    });
    println!(
        "| `stat` = `1 (a)` (truncated) | {} | `{:?}` |",
        if procfs_truncated.is_err() {
            "panics"
        } else {
            "no panic"
        },
        parse::stat(truncated).err()
    );
    let _ = child.kill();
    let _ = child.wait();
}

fn row(file: &'static str, bytes: usize, calls: u32) -> Row {
    fn procfs<T>(result: procfs::ProcResult<T>) {
        black_box(result.is_ok());
    }
    let (procfs, ours): (Parser, Parser) = match file {
        "stat" => (
            Box::new(|b| procfs(procfs::process::Stat::from_read(b))),
            Box::new(|b| {
                black_box(parse::stat(b).is_ok());
            }),
        ),
        "status" => (
            Box::new(|b| procfs(procfs::process::Status::from_buf_read(b))),
            Box::new(|b| {
                black_box(parse::status(b));
            }),
        ),
        "io" => (
            Box::new(|b| procfs(procfs::process::Io::from_buf_read(b))),
            Box::new(|b| {
                black_box(parse::io(b));
            }),
        ),
        "smaps_rollup" => (
            Box::new(|b| procfs(procfs::process::SmapsRollup::from_buf_read(b))),
            Box::new(|b| {
                black_box(parse::pss(b));
            }),
        ),
        _ => (
            Box::new(|b| procfs(procfs::process::MemoryMaps::from_buf_read(b))),
            // The collector reads `smaps_rollup`; summing `Pss:` over `smaps` is what it would do
            // where only `smaps` exists (kernels before 4.14).
            Box::new(|b| {
                let pss: u64 = b
                    .split(|&c| c == b'\n')
                    .filter(|line| line.starts_with(b"Pss:"))
                    .filter_map(parse::pss)
                    .sum();
                black_box(pss);
            }),
        ),
    };
    Row {
        file,
        bytes,
        calls,
        procfs,
        ours,
    }
}

/// Mean time of one call, after one call to warm up.
fn time(parse: &dyn Fn(&[u8]), bytes: &[u8], calls: u32) -> Duration {
    parse(black_box(bytes));
    let start = Instant::now();
    for _ in 0..calls {
        parse(black_box(bytes));
    }
    start.elapsed() / calls
}

/// Allocations and bytes of one call, counted by dhat over [`COUNTED_CALLS`] calls.
fn allocations(parse: &dyn Fn(&[u8]), bytes: &[u8]) -> (u64, u64) {
    let before = dhat::HeapStats::get();
    for _ in 0..COUNTED_CALLS {
        parse(black_box(bytes));
    }
    let after = dhat::HeapStats::get();
    (
        (after.total_blocks - before.total_blocks) / COUNTED_CALLS,
        (after.total_bytes - before.total_bytes) / COUNTED_CALLS,
    )
}

fn cost(time: Duration, (blocks, bytes): (u64, u64)) -> String {
    let time = if time >= Duration::from_millis(1) {
        format!("{:.2} ms", time.as_secs_f64() * 1e3)
    } else {
        format!("{:.2} µs", time.as_secs_f64() * 1e6)
    };
    match blocks {
        0 => format!("{time}, none"),
        n => format!("{time}, {n} allocations, {bytes} B"),
    }
}

/// A Python process with 300 anonymous mappings of 1 MiB, each touched, once it says so.
fn python_with_mappings() -> Child {
    let program = "import mmap, sys, time\n\
                   bufs = [mmap.mmap(-1, 1 << 20) for _ in range(300)]\n\
                   for m in bufs: m[0:1 << 20:4096] = b'x' * 256\n\
                   print('ready', flush=True)\n\
                   time.sleep(600)\n";
    let mut child = Command::new("python3")
        .args(["-c", program])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs the process whose /proc files are parsed");
    let mut ready = [0u8; 6];
    child
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut ready)
        .expect("python3 says it is ready");
    child
}
