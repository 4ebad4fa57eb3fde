//! Generated fleets for the golden outputs of `recommend`: `n` VMs of the shapes a cluster runs,
//! from a fixed seed, with now and then a leaking VM, a heavy one (an outlier) and one OOM-killed
//! after a leak, so that every fleet size shows the method at work.

use super::{Ending, Pod, Role, STEP, Vm};

/// vCPUs and guest RAM in Mi.
const SHAPES: [(u32, f64); 6] = [
    (1, 1024.0),
    (2, 2048.0),
    (2, 4096.0),
    (4, 8192.0),
    (4, 16_384.0),
    (8, 32_768.0),
];

/// A xorshift64* generator: the same fleet on every machine, without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [lo, hi), rounded to a tenth so that the outputs read well.
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((lo + unit * (hi - lo)) * 10.0).round() / 10.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What a generated VM is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Healthy,
    Leaking,
    Heavy,
    OomKilled,
}

/// Every twelfth VM from the second on leaks, from the tenth on was OOM-killed, and past the
/// first dozen, from the sixth on, is heavy; past the first dozen only one in three of those, so
/// that a large fleet is mostly healthy. A fleet of 3 has its leak, one of 12 its ten VMs that
/// make a quantile other than the largest.
fn kind(i: usize, rng: &mut Rng) -> Kind {
    let trap = match i % 12 {
        1 => Kind::Leaking,
        5 if i >= 12 => Kind::Heavy,
        9 => Kind::OomKilled,
        _ => return Kind::Healthy,
    };
    if i < 12 || rng.below(3) == 0 {
        trap
    } else {
        Kind::Healthy
    }
}

/// `n` VMs in `namespace`, each with `history` seconds of history up to the end.
pub fn fleet(n: usize, namespace: &str, history: i64) -> Vec<Vm> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (n as u64).wrapping_mul(0x1000_0001));
    (0..n)
        .map(|i| {
            let kind = kind(i, &mut rng);
            vm(i, kind, namespace, history, &mut rng)
        })
        .collect()
}

fn vm(i: usize, kind: Kind, namespace: &str, history: i64, rng: &mut Rng) -> Vm {
    let (vcpus, guest_mi) = SHAPES[rng.below(SHAPES.len())];
    let mut vm = Vm::new(namespace, &format!("vm-{i:03}"), vcpus, guest_mi, history);
    vm.touched = rng.uniform(0.3, 0.95);
    vm.tpm = rng.below(10) == 0;
    vm.hugepages = rng.below(15) == 0;
    vm.video = rng.below(8) != 0;
    for role in &mut vm.roles {
        role.base_mi = rng.uniform(role.base_mi * 0.92, role.base_mi * 1.08);
    }
    if vm.tpm {
        vm.roles
            .push(Role::steady("swtpm", rng.uniform(10.0, 14.0)));
    }
    vm.estimate_mi = vm.budget_sum_mi();
    vm.pods[0].qemu_own = Role::steady("qemu", rng.uniform(60.0, 85.0) + 6.0 * f64::from(vcpus));
    let (user, system) = (rng.uniform(0.05, 0.9), rng.uniform(0.01, 0.1));
    vm.cpu = ((user * 1000.0).round() / 1000.0, system, 0.01);
    match kind {
        Kind::Healthy => {}
        Kind::Leaking => {
            let leaking = if rng.below(2) == 0 { 3 } else { 1 };
            vm.roles[leaking].leak_mi_per_day = rng.uniform(20.0, 60.0);
        }
        Kind::Heavy => vm.roles[1].base_mi = rng.uniform(220.0, 300.0),
        Kind::OomKilled => oom_killed(&mut vm, history),
    }
    vm
}

/// The guest touched all its RAM, QEMU's own memory leaked until the overhead filled the
/// allowance, and the compute container was OOM-killed three quarters into the history; the VM
/// restarted in a new pod that leaks again.
fn oom_killed(vm: &mut Vm, history: i64) {
    vm.touched = 1.0;
    vm.hugepages = false;
    vm.estimate_mi = vm.budget_sum_mi();
    let killed_at = -history / 4 / STEP * STEP;
    let life = (history + killed_at) as f64 / 86_400.0;
    let first = vm.pods[0].clone();
    let start = vm.overhead_mi(&first, 0);
    // Start at 85% of the allowance; the last scrape before the kill 2Mi short of it.
    let base = first.qemu_own.base_mi - (start - 0.85 * vm.estimate_mi);
    let per_day = (0.15 * vm.estimate_mi - 2.0) / life;
    let qemu_own = Role {
        name: "qemu",
        base_mi: base.max(20.0),
        leak_mi_per_day: per_day,
        spike: None,
    };
    vm.pods = vec![
        Pod {
            name: format!("virt-launcher-{}-x1", vm.name),
            from: -history,
            to: killed_at,
            ending: Ending::OomKilled,
            qemu_own: qemu_own.clone(),
        },
        Pod {
            name: format!("virt-launcher-{}-x2", vm.name),
            from: killed_at + STEP,
            to: 0,
            ending: Ending::Running,
            qemu_own,
        },
    ];
}
