//! `kubectl kmc check` against a fake API server: one golden output per case, and the exit code;
//! and the one-line errors of bad input.

mod fake_api;

use std::path::PathBuf;
use std::process::{Command, Output};

use fake_api::{FakeApi, State};
use serde_json::{Value, json};

const MWCS: &str = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";
const SLICES: &str = "/apis/discovery.k8s.io/v1/namespaces/kube-metrics-collector/endpointslices";
const NAMESPACES: &str = "/api/v1/namespaces";
const PODS: &str = "/api/v1/namespaces/vms/pods";
const VMS: &str = "/apis/kubevirt.io/v1/namespaces/vms/virtualmachines";

fn webhook_config(ca_bundle: &str) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "kube-metrics-collector"},
        "webhooks": [{
            "name": "inject.kube-metrics-collector.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "clientConfig": {"caBundle": ca_bundle, "service": {
                "name": "kube-metrics-webhook", "namespace": "kube-metrics-collector", "path": "/mutate", "port": 443}},
            "namespaceSelector": {
                "matchLabels": {"kube-metrics-collector.io/inject": "enabled"},
                "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                                      "values": ["kube-metrics-collector", "kube-system"]}]},
        }],
    })
}

fn endpoint_slice(ready: bool) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kube-metrics-webhook-x1", "namespace": "kube-metrics-collector",
                     "labels": {"kubernetes.io/service-name": "kube-metrics-webhook"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.5"], "conditions": {"ready": ready}}],
    })
}

fn namespace(opted_in: bool) -> Value {
    let mut labels = json!({"kubernetes.io/metadata.name": "vms"});
    if opted_in {
        labels["kube-metrics-collector.io/inject"] = json!("enabled");
    }
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "vms", "labels": labels}})
}

fn pod(name: &str, created: &str, phase: &str, annotations: Value, scrape: Option<&str>) -> Value {
    let mut labels = json!({"kubevirt.io": "virt-launcher", "vm.kubevirt.io/name": "vm1"});
    if let Some(scrape) = scrape {
        labels["kube-metrics-collector.io/scrape"] = json!(scrape);
    }
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "vms", "creationTimestamp": created,
                     "labels": labels, "annotations": annotations,
                     "ownerReferences": [{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
                                          "name": "vm1", "uid": "0b5e", "controller": true}]},
        "spec": {"nodeName": "node-1", "containers": [{"name": "compute"}]},
        "status": {"phase": phase},
    })
}

/// A cluster where everything is right: vm1 injected, its series in Prometheus, and an old,
/// finished launcher pod of the same VM that must not be taken for the current one.
fn healthy() -> State {
    let injected = json!({"kube-metrics-collector.io/status": "injected",
                          "kube-metrics-collector.io/reason-source": "vmi"});
    let mut state = State::default();
    let collections = [
        (MWCS, vec![webhook_config("Y2E=")]),
        (SLICES, vec![endpoint_slice(true)]),
        (NAMESPACES, vec![namespace(true)]),
        (
            PODS,
            vec![
                pod(
                    "virt-launcher-vm1-abcde",
                    "2026-12-01T09:00:00Z",
                    "Running",
                    injected,
                    Some("relay"),
                ),
                pod(
                    "virt-launcher-vm1-old12",
                    "2026-11-30T09:00:00Z",
                    "Succeeded",
                    json!({}),
                    None,
                ),
            ],
        ),
        (
            VMS,
            vec![
                json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "vm1"}}),
            ],
        ),
    ];
    for (path, objects) in collections {
        state.collections.insert(path.into(), objects);
    }
    state.prometheus.push((
        "kubevirt_pod_infra_pod_info".into(),
        vec![
            json!({"metric": {"__name__": "kubevirt_pod_infra_pod_info", "namespace": "vms",
                               "pod": "virt-launcher-vm1-abcde"}, "value": [1, "1"]}),
        ],
    ));
    state
}

fn set(state: &mut State, path: &str, objects: Vec<Value>) {
    state.collections.insert(path.into(), objects);
}

/// Runs the binary with a kubeconfig naming `api`, in a clean environment.
fn kmc(api: &FakeApi, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = api.write_kubeconfig(dir.path());
    let mut command = Command::new(env!("CARGO_BIN_EXE_kubectl-kmc"));
    command.arg("--kubeconfig").arg(kubeconfig).args(args);
    run(command)
}

fn run(mut command: Command) -> Output {
    // A clean environment: no flag defaults from the caller's.
    for (var, _) in
        std::env::vars().filter(|(k, _)| k.starts_with("KUBECTL_KMC_") || k == "KUBECONFIG")
    {
        command.env_remove(var);
    }
    command.output().expect("run kubectl-kmc")
}

fn golden(case: &str, output: &Output) {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/check-{case}.txt"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    if std::env::var_os("KMC_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, stdout.as_bytes()).expect("write golden");
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        stdout,
        want,
        "{case}; stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn injected_vm_passes_every_check() {
    let api = FakeApi::start(healthy());
    let output = kmc(&api, &["check", "vm1", "--prometheus", &api.url()]);
    golden("injected", &output);
    assert_eq!(output.status.code(), Some(0));
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn vm_skipped_for_a_gpu_fails_with_the_reason() {
    let mut state = healthy();
    let skipped = json!({"kube-metrics-collector.io/status": "skipped",
                         "kube-metrics-collector.io/reason": "vfio-device",
                         "kube-metrics-collector.io/reason-source": "vmi"});
    set(
        &mut state,
        PODS,
        vec![pod(
            "virt-launcher-vm1-abcde",
            "2026-12-01T09:00:00Z",
            "Running",
            skipped,
            None,
        )],
    );
    let api = FakeApi::start(state);
    let output = kmc(&api, &["check", "vm1", "--prometheus", &api.url()]);
    golden("skipped-gpu", &output);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn namespace_not_opted_in_fails_and_the_pod_was_never_seen() {
    let mut state = healthy();
    set(&mut state, NAMESPACES, vec![namespace(false)]);
    set(
        &mut state,
        PODS,
        vec![pod(
            "virt-launcher-vm1-abcde",
            "2026-12-01T09:00:00Z",
            "Running",
            json!({}),
            None,
        )],
    );
    let api = FakeApi::start(state);
    let output = kmc(&api, &["check", "-n", "vms", "vm1"]);
    golden("namespace-not-opted-in", &output);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn webhook_without_ready_endpoints_fails() {
    let mut state = healthy();
    set(&mut state, SLICES, vec![endpoint_slice(false)]);
    let api = FakeApi::start(state);
    // Without a VM: only the webhook and the context's namespace are checked.
    let output = kmc(&api, &["check"]);
    golden("webhook-without-endpoints", &output);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn empty_ca_bundle_fails() {
    let mut state = healthy();
    set(&mut state, MWCS, vec![webhook_config("")]);
    let api = FakeApi::start(state);
    let output = kmc(&api, &["check", "vm1"]);
    golden("cabundle-empty", &output);
    assert_eq!(output.status.code(), Some(1));
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn unknown_vm_is_a_one_line_error() {
    let api = FakeApi::start(healthy());
    let output = kmc(&api, &["check", "nosuch"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "kubectl kmc: unknown VM vms/nosuch: no VirtualMachine, VirtualMachineInstance or launcher pod of that name\n"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn forbidden_names_the_verb_and_resource() {
    let mut state = healthy();
    let message = r#"pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "vms""#;
    state.forbidden.insert(PODS.into(), message.into());
    let api = FakeApi::start(state);
    let output = kmc(&api, &["check", "vm1"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        format!("kubectl kmc: no permission to list pods in namespace vms: {message}\n")
    );
}

#[test]
fn no_cluster_is_a_one_line_error() {
    // A port that was free a moment ago: nothing listens there.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    let config = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "gone",
        "clusters": [{"name": "gone", "cluster": {"server": format!("http://{addr}")}}],
        "users": [{"name": "gone", "user": {}}],
        "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "gone"}}],
    });
    std::fs::write(&kubeconfig, config.to_string()).expect("kubeconfig");
    let mut command = Command::new(env!("CARGO_BIN_EXE_kubectl-kmc"));
    command.arg("--kubeconfig").arg(&kubeconfig).arg("check");
    let output = run(command);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(
        text.starts_with(&format!(
            "kubectl kmc: the API server at http://{addr} is unreachable: "
        )),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");

    let mut command = Command::new(env!("CARGO_BIN_EXE_kubectl-kmc"));
    command
        .arg("--kubeconfig")
        .arg(dir.path().join("missing"))
        .arg("check");
    let output = run(command);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(
        text.starts_with("kubectl kmc: no cluster: cannot read "),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");
}

#[test]
fn prometheus_unreachable_is_a_one_line_error() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port");
    let mut command = Command::new(env!("CARGO_BIN_EXE_kubectl-kmc"));
    command.args(["top", "--prometheus", &format!("http://{addr}")]);
    let output = run(command);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(
        text.starts_with(&format!(
            "kubectl kmc: Prometheus at http://{addr} is unreachable: "
        )),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");
}

#[test]
fn prometheus_without_the_series_is_an_error() {
    let api = FakeApi::start(State::default());
    let output = kmc(
        &api,
        &["top", "vm1", "-n", "vms", "--prometheus", &api.url()],
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "kubectl kmc: Prometheus has no kubevirt_pod_infra_memory_amount_bytes for VM vms/vm1: is it injected and scraped? (kubectl kmc check vm1)\n"
    );
}
