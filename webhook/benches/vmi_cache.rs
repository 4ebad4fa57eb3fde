//! What the VMI cache holds against what a kube-runtime reflector would: heap bytes per VMI,
//! counted by dhat, after N VMIs of one shape are decoded and applied as watch events. The cache is
//! the webhook's own (`webhook/src/vmi/cache.rs`: each VMI decoded into `VmiSubset`, its facts
//! kept); the reflector is kube's `reflector::store::Writer` over `DynamicObject`, which keeps
//! each object whole, as the watch decodes it. docs/design.md, "Hand-written, and why", quotes a
//! run; repeat it with
//!
//! ```sh
//! cargo bench -p kube-metrics-webhook --bench vmi_cache
//! ```
//!
//! Two shapes: KubeVirt's round-trip VMI (every field set, `managedFields` and `status`
//! included) with ~4 KiB of cloud-init userData, as `tests/memory_bench.rs` serves it: ~23 KiB of
//! JSON, what lookup.rs calls a typical VMI; and a small VM (`tests/fixtures/vmi/masquerade.json`,
//! 1.8 KiB). Each copy has its own name, namespace and uid. Each text is made, decoded and
//! dropped one at a time, so only what each side keeps is counted; the time per VMI (decode and
//! apply) is taken first, without dhat counting.

use std::hint::black_box;
use std::time::Instant;

use kube::api::DynamicObject;
use kube::runtime::{reflector, watcher};
use kube_metrics_webhook::vmi::cache::{VmiCache, VmiSubset};
use kube_metrics_webhook::vmi::lookup::vmi_resource;
use serde_json::{Value, json};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

/// How many VMIs each side holds.
const COUNTS: [usize; 2] = [1_000, 5_000];
/// Namespaces the VMIs are spread over.
const NAMESPACES: usize = 50;

/// One side: a fresh holder, and what applying one VMI's JSON text to it does.
trait Holder {
    fn new() -> Self;
    fn apply(&mut self, text: &str);
    fn len(&self) -> usize;
}

/// The webhook's cache, as the watch task feeds it.
struct Ours(VmiCache);

/// A reflector's store of whole objects.
struct Reflector(
    reflector::store::Writer<DynamicObject>,
    reflector::Store<DynamicObject>,
);

fn main() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let shapes = [
        (
            "round-trip VMI + 4 KiB userData",
            full(read(&format!(
                "{fixtures}/kubevirt-api-roundtrip-vmi-release-1.9.json"
            ))),
        ),
        (
            "small VMI (masquerade.json)",
            template(read(&format!("{fixtures}/vmi/masquerade.json"))),
        ),
    ];
    let timed: Vec<[f64; 2]> = shapes
        .iter()
        .map(|(_, template)| [micros::<Ours>(template), micros::<Reflector>(template)])
        .collect();
    let _profiler = dhat::Profiler::builder().testing().build();
    println!(
        "| VMI (JSON per copy) | VMIs | cache: bytes per VMI | reflector: bytes per VMI | reflector / cache |"
    );
    println!("|---|---|---|---|---|");
    for ((shape, template), [ours_us, theirs_us]) in shapes.iter().zip(&timed) {
        let size = copy(template, 0).len();
        for count in COUNTS {
            let ours = held::<Ours>(template, count);
            let theirs = held::<Reflector>(template, count);
            println!(
                "| {shape} ({size} B) | {count} | {ours} | {theirs} | {:.0}x |",
                theirs as f64 / ours as f64
            );
        }
        println!("|   decode and apply, per VMI | | {ours_us:.1} µs | {theirs_us:.1} µs | |");
    }
}

// === impl Ours ===

impl Holder for Ours {
    fn new() -> Self {
        Ours(VmiCache::default())
    }

    fn apply(&mut self, text: &str) {
        let vmi: VmiSubset = serde_json::from_str(text).expect("a VMI");
        self.0.apply(watcher::Event::Apply(vmi));
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

// === impl Reflector ===

impl Holder for Reflector {
    fn new() -> Self {
        let writer = reflector::store::Writer::new(vmi_resource());
        let reader = writer.as_reader();
        Reflector(writer, reader)
    }

    fn apply(&mut self, text: &str) {
        let vmi: DynamicObject = serde_json::from_str(text).expect("a VMI");
        self.0.apply_watcher_event(&watcher::Event::Apply(vmi));
    }

    fn len(&self) -> usize {
        self.1.len()
    }
}

/// Heap bytes a fresh `H` holds per VMI once `count` VMIs are applied to it.
fn held<H: Holder>(template: &str, count: usize) -> u64 {
    let before = dhat::HeapStats::get().curr_bytes;
    let mut holder = H::new();
    for i in 0..count {
        holder.apply(&copy(template, i));
    }
    assert_eq!(holder.len(), count);
    let after = dhat::HeapStats::get().curr_bytes;
    drop(black_box(holder));
    ((after - before) / count) as u64
}

/// Microseconds to decode and apply one VMI, over the larger count.
fn micros<H: Holder>(template: &str) -> f64 {
    let count = COUNTS[COUNTS.len() - 1];
    let texts: Vec<String> = (0..count).map(|i| copy(template, i)).collect();
    let mut holder = H::new();
    let start = Instant::now();
    for text in &texts {
        holder.apply(text);
    }
    let elapsed = start.elapsed();
    drop(black_box(holder));
    elapsed.as_secs_f64() * 1e6 / count as f64
}

/// Copy `i` of a template: its own name, namespace and uid.
fn copy(template: &str, i: usize) -> String {
    template
        .replace("@NAMESPACE@", &format!("tenant-{:02}", i % NAMESPACES))
        .replace("@NAME@", &format!("vm-{i:05}"))
        .replace("@UID@", &format!("6f1c2b7e-3d4a-4c59-8e21-{i:012}"))
}

fn read(path: &str) -> Value {
    let text = std::fs::read_to_string(path).expect("the fixture");
    serde_json::from_str(&text).expect("a JSON fixture")
}

/// The VMI as one line of JSON, with `@NAMESPACE@`, `@NAME@` and `@UID@` to fill in.
fn template(mut vmi: Value) -> String {
    vmi["metadata"]["namespace"] = json!("@NAMESPACE@");
    vmi["metadata"]["name"] = json!("@NAME@");
    vmi["metadata"]["uid"] = json!("@UID@");
    serde_json::to_string(&vmi).expect("JSON")
}

/// The round-trip VMI with ~4 KiB of cloud-init userData, as `tests/memory_bench.rs` makes it.
fn full(mut vmi: Value) -> String {
    let user_data = format!(
        "#cloud-config\nusers:\n{}",
        "  - name: user\n    ssh_authorized_keys: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI]\n"
            .repeat(55)
    );
    vmi["spec"]["volumes"][0]["cloudInitNoCloud"]["userData"] = json!(user_data);
    template(vmi)
}
