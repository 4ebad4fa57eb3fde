//! The opt-in node collector as `overlays/node-collector` renders it: a hostPID DaemonSet with
//! least privilege (user and group 107, no capability, no privilege escalation, read-only root and
//! host mounts, no hostNetwork, no API token), listening on its port with the flags its code
//! reads; a PodMonitor that honours its labels; a NetworkPolicy that admits its port from the
//! monitoring namespace only. The variant's core kinds are validated strictly and its custom
//! resources against their CRDs by manifests.rs, which lists it in `VARIANTS`.

use anyhow::{Context as _, Result, ensure};
use e2e::manifests::{self, NAMESPACE, of_kind};
use e2e::network_policy::{self as np, Port};
use serde_json::{Value, json};

const VARIANT: &str = "overlays/node-collector";
const NAME: &str = "kube-metrics-collector-node";

fn docs() -> Result<&'static [Value]> {
    manifests::rendered()?
        .iter()
        .find(|r| r.variant == VARIANT)
        .map(|r| r.docs.as_slice())
        .context("node-collector variant not rendered")
}

fn named<'a>(docs: &'a [Value], kind: &str) -> Result<&'a Value> {
    of_kind(docs, kind)
        .into_iter()
        .find(|d| d["metadata"]["name"] == NAME)
        .with_context(|| format!("no {kind} {NAME}"))
}

#[test]
fn daemonset_has_host_pids_and_nothing_else() -> Result<()> {
    let ds = named(docs()?, "DaemonSet")?;
    ensure!(ds["metadata"]["namespace"] == NAMESPACE);
    let spec = &ds["spec"]["template"]["spec"];
    ensure!(spec["hostPID"] == true, "hostPID");
    for field in ["hostNetwork", "hostIPC"] {
        ensure!(spec[field].is_null() || spec[field] == false, "{field}");
    }
    ensure!(spec["automountServiceAccountToken"] == false, "API token");
    let pod = &spec["securityContext"];
    ensure!(
        pod["runAsUser"] == 107 && pod["runAsGroup"] == 107 && pod["runAsNonRoot"] == true,
        "runs as the launcher's user: {pod}"
    );
    let [container] = spec["containers"]
        .as_array()
        .context("containers")?
        .as_slice()
    else {
        anyhow::bail!("one container");
    };
    let sc = &container["securityContext"];
    ensure!(sc["allowPrivilegeEscalation"] == false, "{sc}");
    ensure!(sc["readOnlyRootFilesystem"] == true, "{sc}");
    ensure!(sc["capabilities"] == json!({"drop": ["ALL"]}), "{sc}");
    ensure!(
        sc["privileged"].is_null() || sc["privileged"] == false,
        "{sc}"
    );
    let mounts = container["volumeMounts"].as_array().context("mounts")?;
    ensure!(mounts.len() == 2, "{mounts:?}");
    // No propagation: the tmpfs volumes the kubelet mounts later stay hidden from it.
    for mount in mounts {
        ensure!(
            mount["readOnly"] == true && mount["mountPropagation"] == "None",
            "{mount}"
        );
    }
    let paths: Vec<&str> = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["hostPath"]["path"].as_str())
        .collect();
    ensure!(
        paths == ["/var/lib/kubelet/pods", "/var/log/pods"],
        "{paths:?}"
    );

    let args: Vec<&str> = container["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    ensure!(
        args == [
            "--proc-root",
            "/proc",
            "node",
            "--listen",
            "0.0.0.0:48082",
            "--kubelet-pods-dir",
            "/var/lib/kubelet/pods",
            "--pod-logs-dir",
            "/var/log/pods"
        ],
        "{args:?}"
    );
    let ports = np::declared_ports(spec);
    ensure!(
        ports
            == [Port {
                name: "node-metrics".into(),
                number: 48082,
                protocol: "TCP".into()
            }]
            .into(),
        "{ports:?}"
    );
    Ok(())
}

#[test]
fn pod_monitor_and_network_policy_select_it_alone() -> Result<()> {
    let docs = docs()?;
    let template = &named(docs, "DaemonSet")?["spec"]["template"];
    let relay = of_kind(docs, "DaemonSet")
        .into_iter()
        .find(|d| d["metadata"]["name"] == "kube-metrics-collector-relay")
        .context("relay")?;
    let monitor = named(docs, "PodMonitor")?;
    let endpoint = &monitor["spec"]["podMetricsEndpoints"][0];
    ensure!(endpoint["port"] == "node-metrics" && endpoint["honorLabels"] == true);
    let selector = &monitor["spec"]["selector"];
    ensure!(np::selects(selector, &template["metadata"]["labels"]));
    ensure!(!np::selects(
        selector,
        &relay["spec"]["template"]["metadata"]["labels"]
    ));

    let policy = named(docs, "NetworkPolicy")?;
    ensure!(policy["spec"]["policyTypes"] == json!(["Ingress"]));
    ensure!(np::selects(
        &policy["spec"]["podSelector"],
        &template["metadata"]["labels"]
    ));
    let rules = policy["spec"]["ingress"].as_array().context("ingress")?;
    let [rule] = rules.as_slice() else {
        anyhow::bail!("{} rules", rules.len());
    };
    ensure!(
        rule["from"]
            == json!([{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}])
    );
    let ports = np::declared_ports(&template["spec"]);
    ensure!(np::admitted(rule, &ports) == ports);
    Ok(())
}

#[test]
fn default_install_has_no_node_collector() -> Result<()> {
    for manifests::Rendered { variant, docs } in manifests::rendered()? {
        let has = of_kind(docs, "DaemonSet")
            .iter()
            .any(|d| d["metadata"]["name"] == NAME);
        ensure!(
            has == (*variant == VARIANT),
            "{variant}: node collector {has}"
        );
    }
    Ok(())
}

/// With the component, and only with it, the webhook is told to annotate VM-type skips as covered.
#[test]
fn the_webhook_knows_the_node_collector_is_there_only_with_the_component() -> Result<()> {
    for manifests::Rendered { variant, docs } in manifests::rendered()? {
        let webhook = of_kind(docs, "Deployment")
            .into_iter()
            .find(|d| d["metadata"]["name"] == "kube-metrics-webhook");
        let Some(webhook) = webhook else { continue };
        let env = &webhook["spec"]["template"]["spec"]["containers"][0]["env"];
        let on = env
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["name"] == "KMW_NODE_COLLECTOR" && e["value"] == "true");
        ensure!(
            on == (*variant == VARIANT),
            "{variant}: KMW_NODE_COLLECTOR {on}"
        );
    }
    Ok(())
}
