//! Benchmark: what reading `/proc/<qemu>/smaps` costs against the guest RAM QEMU has resident.
//!
//! The kernel walks the page tables of every mapping for `smaps` (and `smaps_rollup`) while it
//! holds the process's mmap lock, so the cost grows with resident memory and shrinks with huge
//! pages. Each row starts a real QEMU (`-S`, guest RAM preallocated), waits until the RAM is
//! resident, and times reads of `smaps`, `smaps_rollup` and `status`. Rows run with transparent
//! huge pages as the host allows them and with THP disabled for QEMU (`PR_SET_THP_DISABLE`, set
//! by a Python wrapper before it execs QEMU).
//!
//! `cargo run --release -p e2e --bin bench-smaps -- --sizes-gib 1,4,16` (root, qemu-system-x86).
//! Not a timed test: it prints numbers.

use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use e2e::bench;
use e2e::qemu::{BootRam, Guest, QEMU_BINARY};

/// Times smaps reads of a real QEMU with 1, 4, 16 GiB of guest RAM resident.
#[derive(Debug, Parser)]
#[command(name = "bench-smaps")]
struct Args {
    /// Guest RAM sizes to measure, in GiB.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    sizes_gib: Vec<u64>,

    /// Reads of each file per row.
    #[arg(long, default_value_t = 50)]
    reads: usize,
}

const GIB: u64 = 1 << 30;

/// How long preallocating guest RAM may take.
const PREALLOC_DEADLINE: Duration = Duration::from_secs(120);

fn main() -> ExitCode {
    bench::exit_code("bench-smaps", run(Args::parse()))
}

fn run(args: Args) -> Result<()> {
    e2e::preflight(&["qemu-system-x86_64", "python3"])?;
    println!(
        "| guest RAM | THP | AnonHugePages | smaps p50 | smaps p99 | smaps_rollup p50 | status p50 | smaps per GiB |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut worst_per_gib = Duration::ZERO;
    for &gib in &args.sizes_gib {
        for thp in [true, false] {
            let row = measure(gib, thp, args.reads)?;
            worst_per_gib = worst_per_gib.max(row.per_gib);
            println!(
                "| {gib} GiB | {} | {} MiB | {:.2} ms | {:.2} ms | {:.2} ms | {:.3} ms | {:.2} ms |",
                if thp { "madvise" } else { "off" },
                row.anon_huge >> 20,
                ms(row.smaps.0),
                ms(row.smaps.1),
                ms(row.rollup),
                ms(row.status),
                ms(row.per_gib),
            );
        }
    }
    let guest_64 = worst_per_gib * 64;
    println!(
        "\nworst case per GiB: {:.2} ms; a 64 GiB guest: {:.1} ms per read",
        ms(worst_per_gib),
        ms(guest_64)
    );
    for interval in [10u64, 30, 60, 300] {
        let share = guest_64.as_secs_f64() / interval as f64 * 100.0;
        println!("read every {interval:>3} s: {share:.3}% of one core for a 64 GiB guest");
    }
    Ok(())
}

/// One row of the table.
#[derive(Debug)]
struct Row {
    smaps: (Duration, Duration),
    rollup: Duration,
    status: Duration,
    per_gib: Duration,
    anon_huge: u64,
}

fn measure(gib: u64, thp: bool, reads: usize) -> Result<Row> {
    let mut qemu = Qemu::start(gib * GIB, thp)?;
    let result = (|| {
        qemu.wait_resident(gib * GIB)?;
        let dir = PathBuf::from(format!("/proc/{}", qemu.child.id()));
        let smaps = times(&dir.join("smaps"), reads)?;
        let rollup = times(&dir.join("smaps_rollup"), reads)?;
        let status = times(&dir.join("status"), reads)?;
        let anon_huge = rollup_field(&dir, "AnonHugePages").unwrap_or_default();
        let p50 = bench::percentile(&smaps, 50.0);
        Ok(Row {
            smaps: (p50, bench::percentile(&smaps, 99.0)),
            rollup: bench::percentile(&rollup, 50.0),
            status: bench::percentile(&status, 50.0),
            per_gib: p50 / u32::try_from(gib.max(1)).unwrap_or(u32::MAX),
            anon_huge,
        })
    })();
    qemu.stop();
    result
}

/// Sorted durations of `reads` full reads of `path`.
fn times(path: &std::path::Path, reads: usize) -> Result<Vec<Duration>> {
    let mut out = Vec::with_capacity(reads);
    for _ in 0..reads {
        let start = Instant::now();
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        out.push(start.elapsed());
        std::hint::black_box(bytes);
    }
    out.sort();
    Ok(out)
}

/// A field of `smaps_rollup`, in bytes.
fn rollup_field(dir: &std::path::Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("smaps_rollup")).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A paused QEMU whose guest RAM is preallocated.
#[derive(Debug)]
struct Qemu {
    child: Child,
}

impl Qemu {
    fn start(bytes: u64, thp: bool) -> Result<Self> {
        let guest = Guest {
            namespace: "bench".into(),
            vm: "vm".into(),
            memory_mib: bytes >> 20,
            prealloc: true,
            spin: false,
            boot: BootRam::Backend,
            hotplug_mib: None,
        };
        // argv[0] stays Debian's binary: outside a pod nothing classifies it. Neither a boot disk
        // nor QMP is asked for, so no file of QEMU's is named.
        let argv = guest.argv(std::path::Path::new("/nonexistent"));
        let mut command = if thp {
            Command::new(QEMU_BINARY)
        } else {
            // PR_SET_THP_DISABLE (41) is inherited across exec.
            let mut c = Command::new("python3");
            c.args([
                "-c",
                "import ctypes,os,sys; ctypes.CDLL(None).prctl(41,1,0,0,0); os.execvp(sys.argv[1], sys.argv[1:])",
            ]);
            c.arg(QEMU_BINARY);
            c
        };
        command.args(argv.iter().skip(1));
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting qemu-system-x86_64")?;
        Ok(Self { child })
    }

    fn wait_resident(&mut self, bytes: u64) -> Result<()> {
        let deadline = Instant::now() + PREALLOC_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("qemu exited with {status} before its RAM was resident");
            }
            let rss = e2e::hostproc::status_bytes(self.child.id(), "VmRSS").unwrap_or(0);
            if rss >= bytes {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("qemu has {rss} bytes resident after {PREALLOC_DEADLINE:?}, wanted {bytes}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
