//! A stand-in for one process of a virt-launcher pod: named threads, touched memory, optional CPU
//! burn, then sleep until killed.
//!
//! It is configured only through the environment, so that its command line can be exactly what the
//! real process would show (`/usr/libexec/qemu-kvm -name guest=ns_vm,debug-threads=on ...`); the
//! harness starts it with the real path as argv[0]. Every argument is ignored.
//!
//! - `FAKE_THREADS`: comma-separated names of extra threads (`CPU 0/KVM,IO iothread1,worker`).
//! - `FAKE_BURN`: comma-separated thread names that burn CPU; `main` is the main thread.
//! - `FAKE_BURN_PERCENT`: share of each 100 ms a burning thread spins (default 20, so a test pod
//!   stays cheap on a shared 2-core machine).
//! - `FAKE_MEM_MIB`: anonymous memory to allocate and touch, in MiB.

use std::time::{Duration, Instant};

/// One burn cycle: spin for `percent` of it, sleep for the rest.
const BURN_PERIOD: Duration = Duration::from_millis(100);
/// Linux keeps at most 15 bytes of a thread name (`TASK_COMM_LEN` - 1).
const COMM_LEN: usize = 15;
const PAGE: usize = 4096;

fn main() {
    let threads = list(&env("FAKE_THREADS"));
    let burn = list(&env("FAKE_BURN"));
    let percent: u32 = env("FAKE_BURN_PERCENT").parse().unwrap_or(20).min(100);
    let mem_mib: usize = env("FAKE_MEM_MIB").parse().unwrap_or(0);

    name_main_thread();
    // Named, not `_`, so it lives until the end of main, which never comes.
    let _memory = touch(mem_mib);

    for name in &threads {
        let burns = burn.contains(name);
        let spawned = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || run(burns, percent));
        if let Err(error) = spawned {
            eprintln!("fake-process: cannot start thread {name}: {error}");
            std::process::exit(1);
        }
    }
    run(burn.iter().any(|n| n == "main"), percent);
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Gives the main thread the `comm` the real binary would have: exec sets it from the file name
/// (`fake-process`), not from argv[0].
fn name_main_thread() {
    let argv0 = std::env::args().next().unwrap_or_default();
    let base = argv0.rsplit('/').next().unwrap_or(&argv0);
    let comm: String = base.chars().take(COMM_LEN).collect();
    // Best effort: a fake with the wrong comm is still a usable fake.
    let _ = std::fs::write("/proc/thread-self/comm", comm);
}

/// Allocates `mib` MiB and writes every page, so it counts as resident.
fn touch(mib: usize) -> Vec<u8> {
    let mut memory = vec![0u8; mib * 1024 * 1024];
    for page in memory.chunks_mut(PAGE) {
        if let Some(byte) = page.first_mut() {
            *byte = 1;
        }
    }
    std::hint::black_box(memory)
}

/// Sleeps forever, spinning `percent` of every period when `burns`.
fn run(burns: bool, percent: u32) -> ! {
    let spin = BURN_PERIOD * percent / 100;
    loop {
        if burns {
            let start = Instant::now();
            let mut x: u64 = 0;
            while start.elapsed() < spin {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            std::thread::sleep(BURN_PERIOD.saturating_sub(spin));
        } else {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}
