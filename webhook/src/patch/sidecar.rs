//! The injected container and its two volumes as raw JSON, exactly as docs/design.md fixes them.
//! No I/O.
use kube_metrics_contract::sidecar::{
    CONTAINER_NAME, ENV_KUBEVIRT_RELEASE, ENV_LOG_LEVEL, ENV_METRICS_PROFILE, ENV_NODE_NAME,
    ENV_POD_NAME, ENV_POD_NAMESPACE, PODINFO_ANNOTATIONS, PODINFO_DIR, PODINFO_LABELS,
    PODINFO_MEMORY_LIMIT, PODINFO_MEMORY_REQUEST, PODINFO_NAME, PODINFO_NAMESPACE, PODINFO_UID,
    PODINFO_VOLUME, PORT_NAME, SOCKET_DIR, SOCKET_PATH, SOCKET_VOLUME,
};
use serde_json::{Value, json};

use crate::decide::Plan;
use crate::policy::Mode;
use kube_metrics_contract::kubevirt::COMPUTE_CONTAINER;

/// The collector binary in the image (the image holds both binaries under /usr/local/bin, like the
/// webhook's own Deployment). An absolute path: the image's entry point is the webhook's, and the
/// exec probe must not depend on `PATH`.
pub const COLLECTOR_BINARY: &str = "/usr/local/bin/kube-metrics-collector";

/// Seconds between liveness probes: each one forks a short process in the VM's PID namespace, so
/// rarely; the collector only needs restarting when it is wedged.
const PROBE_PERIOD_SECONDS: u32 = 30;

/// The collector container for `plan`.
pub fn container(plan: &Plan) -> Value {
    let mut env = vec![
        field_env(ENV_POD_NAME, "metadata.name"),
        field_env(ENV_POD_NAMESPACE, "metadata.namespace"),
    ];
    env.push(field_env(ENV_NODE_NAME, "spec.nodeName"));
    if let Some(level) = &plan.log_level {
        // The collector's `--log-level` env twin, set from the log-level annotation.
        env.push(json!({"name": ENV_LOG_LEVEL, "value": level}));
    }
    if let Some(release) = plan.kubevirt_release {
        env.push(json!({"name": ENV_KUBEVIRT_RELEASE, "value": release.to_string()}));
    }
    if let Some(profile) = plan.metrics_profile {
        // The collector's `--metrics-profile` env twin: the annotation's, else the webhook's.
        env.push(json!({"name": ENV_METRICS_PROFILE, "value": profile.as_str()}));
    }
    let mut security = json!({
        "runAsUser": plan.run_as.uid,
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": true,
        "seccompProfile": {"type": "RuntimeDefault"},
    });
    if let Some(gid) = plan.run_as.gid {
        security["runAsGroup"] = json!(gid);
    }
    if plan.run_as.non_root() {
        security["runAsNonRoot"] = json!(true);
    }
    let mut container = json!({
        "name": CONTAINER_NAME,
        "image": plan.image,
        "imagePullPolicy": "IfNotPresent",
        "command": [COLLECTOR_BINARY],
        "args": [
            "--listen", format!("0.0.0.0:{}", plan.port),
            "--socket", SOCKET_PATH,
            "--podinfo", PODINFO_DIR,
        ],
        "env": env,
        "ports": [{"name": PORT_NAME, "containerPort": plan.port, "protocol": "TCP"}],
        "resources": {
            "requests": {"cpu": plan.cpu.request.as_str(), "memory": plan.memory.request.as_str()},
            "limits": {"cpu": plan.cpu.limit.as_str(), "memory": plan.memory.limit.as_str()},
        },
        "volumeMounts": [
            {"name": PODINFO_VOLUME, "mountPath": PODINFO_DIR, "readOnly": true},
            {"name": SOCKET_VOLUME, "mountPath": SOCKET_DIR},
        ],
        // docs/kubevirt.md §3.7: an HTTP or TCP probe (even to 127.0.0.1) can land in the guest. This
        // one asks the collector over its Unix socket. No startup probe: on a native sidecar it
        // would hold back `compute`, and so the VM, until the collector answers.
        "livenessProbe": {
            "exec": {"command": [COLLECTOR_BINARY, "probe", "--socket", SOCKET_PATH]},
            "initialDelaySeconds": 10,
            "periodSeconds": PROBE_PERIOD_SECONDS,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        "securityContext": security,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    });
    if plan.mode == Mode::Native {
        container["restartPolicy"] = json!("Always");
    }
    container
}

/// The downward-API volume the collector reads its identity from, and the socket's `emptyDir`.
pub fn volumes() -> [Value; 2] {
    let memory = |path: &str, resource: &str| json!({"path": path, "resourceFieldRef": {"containerName": COMPUTE_CONTAINER, "resource": resource, "divisor": "1"}});
    let podinfo = json!({
        "name": PODINFO_VOLUME,
        "downwardAPI": {"items": [
            {"path": PODINFO_LABELS, "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": PODINFO_ANNOTATIONS, "fieldRef": {"fieldPath": "metadata.annotations"}},
            memory(PODINFO_MEMORY_REQUEST, "requests.memory"),
            memory(PODINFO_MEMORY_LIMIT, "limits.memory"),
            // The relay attributes the pod's socket by these, as the kubelet wrote them.
            {"path": PODINFO_UID, "fieldRef": {"fieldPath": "metadata.uid"}},
            {"path": PODINFO_NAMESPACE, "fieldRef": {"fieldPath": "metadata.namespace"}},
            {"path": PODINFO_NAME, "fieldRef": {"fieldPath": "metadata.name"}},
        ]},
    });
    [podinfo, json!({"name": SOCKET_VOLUME, "emptyDir": {}})]
}

fn field_env(name: &str, field_path: &str) -> Value {
    json!({"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": field_path}}})
}
