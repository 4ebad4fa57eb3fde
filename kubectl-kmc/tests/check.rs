//! `kubectl kmc check` against a fake API server (it stands in for kube-apiserver, which cannot
//! run here): one golden output per case, and the exit code; and the one-line errors of bad input.

use std::path::PathBuf;
use std::process::{Command, Output};

use http::{Method, StatusCode};
use kube_metrics_fake_api::{Answer, FakeApi};
use serde_json::{Value, json};

const MWCS: &str = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";
const SLICES: &str = "/apis/discovery.k8s.io/v1/namespaces/kube-metrics-collector/endpointslices";
const NAMESPACES: &str = "/api/v1/namespaces";
const PODS: &str = "/api/v1/namespaces/vms/pods";
const VMS: &str = "/apis/kubevirt.io/v1/namespaces/vms/virtualmachines";
const DAEMON_SETS: &str = "/apis/apps/v1/namespaces/kube-metrics-collector/daemonsets";
const AGENT_PODS: &str = "/api/v1/namespaces/kube-metrics-collector/pods";
const KUBEVIRTS: &str = "/apis/kubevirt.io/v1/kubevirts";
const SCCS: &str = "/apis/security.openshift.io/v1/securitycontextconstraints";
const MONITORING_CONFIGMAPS: &str = "/api/v1/namespaces/openshift-monitoring/configmaps";

fn relay_daemon_set(desired: i32, ready: i32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "kube-metrics-collector-relay", "namespace": "kube-metrics-collector"},
        "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": "kube-metrics-collector-relay"}},
                 "template": {"spec": {"containers": [{"name": "relay"}]}}},
        "status": {"desiredNumberScheduled": desired, "numberReady": ready,
                   "currentNumberScheduled": desired, "numberMisscheduled": 0},
    })
}

fn relay_pod(name: &str, scc: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "kube-metrics-collector",
                     "labels": {"app.kubernetes.io/name": "kube-metrics-collector-relay"},
                     "annotations": {"openshift.io/scc": scc}},
        "spec": {"containers": [{"name": "relay"}]},
    })
}

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

/// The fake API server (standing in for kube-apiserver, which cannot run here) with no objects,
/// serving Prometheus' query API too (no answers yet).
fn start() -> FakeApi {
    let api = FakeApi::start().expect("fake API server");
    api.prometheus();
    api
}

/// A cluster where everything is right: vm1 injected, its series in Prometheus, and an old,
/// finished launcher pod of the same VM that must not be taken for the current one.
fn healthy() -> FakeApi {
    let injected = json!({"kube-metrics-collector.io/status": "injected",
                          "kube-metrics-collector.io/reason-source": "vmi"});
    let api = start();
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
        api.set(path, objects);
    }
    api.set(DAEMON_SETS, vec![relay_daemon_set(2, 2)]);
    api.set(
        KUBEVIRTS,
        vec![json!({"apiVersion": "kubevirt.io/v1", "kind": "KubeVirt",
                     "metadata": {"name": "kubevirt", "namespace": "kubevirt"}})],
    );
    api.prometheus().answer(
        "kubevirt_pod_infra_pod_info",
        vec![
            json!({"metric": {"__name__": "kubevirt_pod_infra_pod_info", "namespace": "vms",
                               "pod": "virt-launcher-vm1-abcde"}, "value": [1, "1"]}),
        ],
    );
    api
}

/// vm1's one running launcher pod, with `annotations` and no scrape label.
fn set_vm1_pod(api: &FakeApi, annotations: Value) {
    let vm1 = pod(
        "virt-launcher-vm1-abcde",
        "2026-12-01T09:00:00Z",
        "Running",
        annotations,
        None,
    );
    api.set(PODS, vec![vm1]);
}

/// Runs the binary with a kubeconfig naming `api`, in a clean environment.
fn kmc(api: &FakeApi, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = api
        .write_kubeconfig(dir.path(), Some("vms"))
        .expect("kubeconfig");
    let mut command = Command::new(env!("CARGO_BIN_EXE_kubectl-kmc"));
    command.arg("--kubeconfig").arg(kubeconfig).args(args);
    run(command)
}

fn run(mut command: Command) -> Output {
    // A clean environment: no flag defaults or proxies from the caller's.
    for (var, _) in std::env::vars().filter(|(k, _)| {
        k.starts_with("KUBECTL_KMC_") || k == "KUBECONFIG" || k.to_lowercase().ends_with("_proxy")
    }) {
        command.env_remove(var);
    }
    command.output().expect("run kubectl-kmc")
}

fn golden(case: &str, output: &Output) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{case}.txt"));
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
    let api = healthy();
    let output = kmc(&api, &["check", "vm1", "--prometheus", &api.url()]);
    golden("check-injected", &output);
    assert_eq!(output.status.code(), Some(0));
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn vm_skipped_for_a_gpu_fails_with_the_reason() {
    let api = healthy();
    let skipped = json!({"kube-metrics-collector.io/status": "skipped",
                         "kube-metrics-collector.io/reason": "vfio-device",
                         "kube-metrics-collector.io/reason-source": "vmi"});
    set_vm1_pod(&api, skipped);
    let output = kmc(&api, &["check", "vm1", "--prometheus", &api.url()]);
    golden("check-skipped-gpu", &output);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn namespace_not_opted_in_fails_and_the_pod_was_never_seen() {
    let api = healthy();
    api.set(NAMESPACES, vec![namespace(false)]);
    set_vm1_pod(&api, json!({}));
    let output = kmc(&api, &["check", "-n", "vms", "vm1"]);
    golden("check-namespace-not-opted-in", &output);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn webhook_without_ready_endpoints_fails() {
    let api = healthy();
    api.set(SLICES, vec![endpoint_slice(false)]);
    // Without a VM: only the webhook and the context's namespace are checked.
    let output = kmc(&api, &["check"]);
    golden("check-webhook-without-endpoints", &output);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn empty_ca_bundle_fails() {
    let api = healthy();
    api.set(MWCS, vec![webhook_config("")]);
    let output = kmc(&api, &["check", "vm1"]);
    golden("check-cabundle-empty", &output);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn without_prometheus_the_series_are_said_to_be_unchecked() {
    let api = healthy();
    let output = kmc(&api, &["check", "vm1"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("- Prometheus has its series (kubevirt_pod_infra_pod_info)\n    not checked: no --prometheus"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("Status check results are √ (2 not checked)\n"),
        "{stdout}"
    );
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn prometheus_out_of_reach_exits_2_with_the_checklist() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port");
    let api = healthy();
    let output = kmc(
        &api,
        &["check", "vm1", "--prometheus", &format!("http://{addr}")],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("? Prometheus has its series (kubevirt_pod_infra_pod_info)\n    Prometheus at http://{addr} is unreachable: ")),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("Status check results are ? (2 could not be checked)\n"),
        "{stdout}"
    );
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn json_output_carries_every_line_and_the_counts() {
    let api = healthy();
    api.set(SLICES, vec![endpoint_slice(false)]);
    let output = kmc(
        &api,
        &["check", "vm1", "-o", "json", "--prometheus", &api.url()],
    );
    assert_eq!(output.status.code(), Some(1));
    let document: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(
        document["summary"],
        json!({"passed": 11, "failed": 1, "notChecked": 0, "unknown": 0})
    );
    let failed: Vec<&Value> = document["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .flat_map(|s| s["lines"].as_array().expect("lines"))
        .filter(|l| l["outcome"] == "failed")
        .collect();
    assert_eq!(
        failed[0]["text"],
        "Service kube-metrics-collector/kube-metrics-webhook has ready endpoints"
    );
}

/// OpenShift: the relay's SCC, user-workload monitoring and the namespaces' labels are checked;
/// here user-workload monitoring is off and one relay pod runs under `privileged`.
#[test]
fn openshift_specifics_are_checked() {
    let api = healthy();
    // Serving SCCs puts security.openshift.io in the fake's discovery (`/apis`): OpenShift.
    api.set(
        SCCS,
        vec![
            json!({"apiVersion": "security.openshift.io/v1", "kind": "SecurityContextConstraints",
                     "metadata": {"name": "kube-metrics-collector-relay"}}),
        ],
    );
    api.set(
        AGENT_PODS,
        vec![
            relay_pod(
                "kube-metrics-collector-relay-a",
                "kube-metrics-collector-relay",
            ),
            relay_pod("kube-metrics-collector-relay-b", "privileged"),
        ],
    );
    api.set(MONITORING_CONFIGMAPS,
        vec![json!({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "cluster-monitoring-config", "namespace": "openshift-monitoring"},
                     "data": {"config.yaml": "enableUserWorkload: false\n"}})],
    );
    let mut namespaces = vec![namespace(true)];
    namespaces.push(json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "kube-metrics-collector", "labels": {"openshift.io/user-monitoring": "false"}}}));
    api.set(NAMESPACES, namespaces);
    let output = kmc(&api, &["check", "vm1", "--prometheus", &api.url()]);
    golden("check-openshift", &output);
    assert_eq!(output.status.code(), Some(1));
}

/// Without --prometheus, the cluster's one prometheus-operator Prometheus is asked through the
/// API server's service proxy.
#[test]
fn prometheus_is_found_through_the_api_server() {
    let api = healthy();
    api.set(
        "/apis/monitoring.coreos.com/v1/prometheuses",
        vec![
            json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
                     "metadata": {"name": "k8s", "namespace": "monitoring"}, "spec": {}}),
        ],
    );
    let output = kmc(&api, &["check", "vm1"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("√ Prometheus has its series (kubevirt_pod_infra_pod_info)\n"),
        "{stdout}"
    );
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        api.requests().iter().any(|r| r.path
            == "/api/v1/namespaces/monitoring/services/prometheus-operated:web/proxy/api/v1/query"),
        "{:?}",
        api.calls()
    );
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn unknown_vm_is_a_one_line_error() {
    let api = healthy();
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
    let api = healthy();
    let message = r#"pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "vms""#;
    api.answer(
        Method::GET,
        PODS,
        Answer::status(StatusCode::FORBIDDEN, message),
    );
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

/// KubeVirt's word that VMI vms/vm1 runs in pod virt-launcher-vm1-abcde.
fn vouching(api: &FakeApi) {
    api.prometheus().answer(
        "kubevirt_vmi_info{job=\"kubevirt-prometheus-metrics\"}",
        vec![json!({"metric": {"namespace": "vms", "name": "vm1", "vmi_pod": "virt-launcher-vm1-abcde"},
                    "value": [1, "1"]})],
    );
}

#[test]
fn prometheus_without_the_series_is_an_error() {
    let api = start();
    vouching(&api);
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

/// What a tenant controls reaches the output escaped: a reason annotation with a shell command,
/// a newline and escape sequences stays on its line, as text.
#[test]
fn a_hostile_reason_is_printed_escaped() {
    let api = healthy();
    let skipped = json!({"kube-metrics-collector.io/status": "skipped",
                         "kube-metrics-collector.io/reason": HOSTILE,
                         "kube-metrics-collector.io/reason-source": "vmi\u{1b}[8m"});
    set_vm1_pod(&api, skipped);
    let output = kmc(&api, &["check", "vm1"]);
    assert_no_control_characters(&output.stdout);
    golden("check-hostile-reason", &output);
    assert_eq!(output.status.code(), Some(1));
}

/// A name chosen by a tenant: a shell command, a newline that would start a line of its own, an
/// OSC title, a bell, a CSI that clears the screen.
const HOSTILE: &str = "vm;touch /tmp/x;#\nspec: {}\n\u{1b}]0;owned\u{7}\u{1b}[2J";

fn assert_no_control_characters(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    assert!(
        !text.chars().any(|c| c != '\n' && c.is_control()),
        "{text:?}"
    );
}

/// Prometheus' error text (which can quote a label value) is escaped on the one error line.
#[test]
fn prometheus_error_texts_are_escaped() {
    let api = start();
    api.prometheus()
        .fail(format!("parse error: unexpected {HOSTILE}"));
    let output = kmc(&api, &["top", "--prometheus", &api.url()]);
    assert_eq!(output.status.code(), Some(2));
    assert_no_control_characters(&output.stderr);
    let text = stderr(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.ends_with(
            ": 400 Bad Request parse error: unexpected vm;touch /tmp/x;#\\nspec: {}\\n\\u{1b}]0;owned\\u{7}\\u{1b}[2J\n"
        ),
        "{text}"
    );
}

/// Like kubectl, the plugin reaches Prometheus through `HTTP_PROXY`/`HTTPS_PROXY` unless
/// `NO_PROXY` names its host: here the fake is the proxy, and the host does not resolve.
#[test]
fn prometheus_is_reached_through_the_environments_proxy() {
    let api = start();
    api.prometheus().fail("answered through the proxy");
    let top = |no_proxy: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_kubectl-kmc"))
            .args(["top", "--prometheus", "http://prometheus.invalid:9090"])
            .env("HTTP_PROXY", api.url())
            .env("NO_PROXY", no_proxy)
            .output()
            .expect("run kubectl-kmc");
        stderr(&output)
    };
    let proxied = top("");
    assert!(
        proxied.ends_with(": 400 Bad Request answered through the proxy\n"),
        "{proxied}"
    );
    let direct = top("prometheus.invalid");
    assert!(
        direct.starts_with(
            "kubectl kmc: Prometheus at http://prometheus.invalid:9090 is unreachable"
        ),
        "{direct}"
    );
}

/// Credentials in the URL reach neither an error nor the output.
#[test]
fn credentials_in_the_url_are_never_echoed() {
    let api = start();
    let url = format!("http://alice:s3cret@{}", api.addr);
    let output = kmc(&api, &["top", "--prometheus", &url]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(
        !text.contains("s3cret") && !text.contains("alice"),
        "{text}"
    );
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port");
    let output = kmc(
        &api,
        &[
            "top",
            "--prometheus",
            &format!("http://alice:s3cret@{addr}/?t=s3cret"),
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(
        !text.contains("s3cret") && !text.contains("alice"),
        "{text}"
    );
}

/// Without KubeVirt's series nothing vouches for a VM: a loud error, and a flag to proceed.
#[test]
fn top_without_kubevirts_series_refuses_unless_told() {
    let api = start();
    let resident = "(kubevirt_pod_infra_memory_amount_bytes{type=\"resident\"})";
    let sample = |ns: &str, name: &str, pod: &str| {
        json!({"metric": {"namespace": ns, "name": name, "pod": pod, "process": "qemu"},
               "value": [1, "1048576000"]})
    };
    api.prometheus().answer(
        resident,
        vec![
            sample("vms", "vm1", "virt-launcher-vm1-abcde"),
            sample("tenant", HOSTILE, "fake"),
            sample("vms", "vm1", "fake"),
        ],
    );
    let output = kmc(&api, &["top", "--prometheus", &api.url()]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "kubectl kmc: Prometheus has no kubevirt_vmi_info{job=\"kubevirt-prometheus-metrics\"}: KubeVirt's own metrics are not scraped, so nothing vouches that the collector's series come from VMs, and any pod can pose as one; scrape KubeVirt (virt-operator's ServiceMonitor kubevirt-prometheus-metrics), name its job with --kubevirt-job, or pass --allow-unvouched to count every series as a VM\n"
    );

    let output = kmc(
        &api,
        &["top", "--prometheus", &api.url(), "--allow-unvouched"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_no_control_characters(&output.stdout);
    assert!(
        stderr(&output).starts_with(
            "kubectl kmc: warning: no kubevirt_vmi_info vouches for any VM (--allow-unvouched)"
        ),
        "{}",
        stderr(&output)
    );
    golden("top-unvouched", &output);

    // With KubeVirt's word, only its VM's pod counts, and what was left out is said.
    let api = same_answers(&api);
    vouching(&api);
    let output = kmc(&api, &["top", "--prometheus", &api.url()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    golden("top-vouched", &output);
    assert_eq!(
        stderr(&output),
        "kubectl kmc: note: 1 series left out: KubeVirt reports no VMI of that namespace and name (kubevirt_vmi_info): not a VM, whatever its labels say\n\
         kubectl kmc: note: 1 series left out: KubeVirt names other launcher pods for that VMI (kubevirt_vmi_info's vmi_pod)\n"
    );
}

/// The same canned answers, in a fake of their own.
fn same_answers(api: &FakeApi) -> FakeApi {
    let copy = start();
    for (key, samples) in api.prometheus().answers() {
        copy.prometheus().answer(key, samples);
    }
    copy
}

#[test]
fn names_on_the_command_line_must_be_kubernetes_names() {
    let api = healthy();
    let output = kmc(&api, &["check", "-n", "vms;id", "vm1"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "kubectl kmc: vms;id is not a valid namespace name: it must consist of lower case letters, digits and '-', and start and end with a letter or digit\n"
    );
    let output = kmc(&api, &["check", "vm\u{1b}[2J"]);
    assert_eq!(output.status.code(), Some(2));
    assert_no_control_characters(&output.stderr);
    assert!(
        stderr(&output).starts_with("kubectl kmc: vm\\u{1b}[2J is not a valid VirtualMachine name"),
        "{}",
        stderr(&output)
    );
}

/// An answer past `--prometheus-max-mib` stops the command, saying the cap and why.
#[test]
fn answers_past_the_cap_are_refused() {
    let api = start();
    let big: Vec<Value> = (0..20_000)
        .map(|i| {
            json!({"metric": {"namespace": "vms", "name": format!("vm-{i:05}"), "vmi_pod": "p"},
                   "value": [1, "1"]})
        })
        .collect();
    api.prometheus().answer("kubevirt_vmi_info", big);
    let output = kmc(
        &api,
        &[
            "top",
            "--prometheus",
            &api.url(),
            "--prometheus-max-mib",
            "1",
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        format!(
            "kubectl kmc: Prometheus at {} answered more than 1 MiB, the cap that keeps this plugin's memory bounded: narrow the question (-n, a VM, a shorter --range) or raise --prometheus-max-mib\n",
            api.url()
        )
    );
}

/// A value that is no finite, non-negative number is left out per series, and counted.
#[test]
fn values_that_are_not_numbers_are_left_out_and_counted() {
    let api = start();
    vouching(&api);
    let sample = |process: &str, value: &str| {
        json!({"metric": {"namespace": "vms", "name": "vm1", "pod": "virt-launcher-vm1-abcde", "process": process},
               "value": [1, value]})
    };
    api.prometheus().answer(
        "(kubevirt_pod_infra_memory_amount_bytes{type=\"resident\"})",
        vec![
            sample("qemu", "1048576000"),
            sample("virtqemud", "NaN"),
            sample("virtlogd", "+Inf"),
            sample("virt-launcher", "-5"),
        ],
    );
    let output = kmc(&api, &["top", "--prometheus", &api.url(), "-o", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let json: Value = serde_json::from_slice(&output.stdout).expect("json");
    let roles: Vec<&str> = json[0]["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .filter_map(|r| r["role"].as_str())
        .collect();
    assert_eq!(roles, ["qemu"]);
    assert_eq!(
        stderr(&output),
        "kubectl kmc: note: 1 series left out: the value is NaN\n\
         kubectl kmc: note: 1 series left out: the value is infinite\n\
         kubectl kmc: note: 1 series left out: the value is negative\n"
    );
}
