//! The manifests a cluster admin applies: every kustomize variant renders, its core kinds pass
//! `kubernetes-validate --strict`, custom resources have their required fields, the webhook
//! configuration keeps its safety invariants, one image reference reaches every container, and the
//! relay DaemonSet and the PodMonitors use the names of `kube-metrics-contract`.
//! (The monitoring rules and dashboard are checked in `monitoring.rs`.)
//! Needs `kubectl` (with kustomize), `openssl` and `kubernetes-validate` (scripts/setup).
//! Every variant is rendered once, by the first test that asks ([`manifests::rendered`]).

use anyhow::{Context, Result, bail, ensure};
use e2e::manifests::{self, NAMESPACE, kind, of_kind};
use kube_metrics_contract::{limits, pod, relay, sidecar};
use serde_json::Value;
use std::collections::BTreeSet;

#[test]
fn core_kinds_pass_strict_validation_in_every_variant() -> Result<()> {
    let mut core = Vec::new();
    for manifests::Rendered { variant, docs } in manifests::rendered()? {
        let before = core.len();
        // `overlays/minimal-3.json`: the file name says where a failing object comes from.
        let prefix = variant.replace('/', "-");
        let variant_core = docs.iter().filter(|d| manifests::is_core(d));
        core.extend(
            variant_core
                .enumerate()
                .map(|(i, d)| (format!("{prefix}-{i}"), d)),
        );
        let count = core.len() - before;
        ensure!(count >= 10, "{variant}: {count} core objects");
    }
    manifests::kubernetes_validate(&core)?;
    // The validator really rejects: a Deployment with a misspelt field must fail.
    let bad: Value = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "x"}, "spec": {"replicas": 1, "selectr": {}, "template": {}}});
    ensure!(
        manifests::kubernetes_validate(&[("bad".to_owned(), &bad)]).is_err(),
        "validator accepted a bad Deployment"
    );
    Ok(())
}

/// The fields each custom resource must have to be accepted and to do anything.
fn check_custom(doc: &Value) -> Result<()> {
    let name = doc["metadata"]["name"].as_str().unwrap_or("?");
    let has = |pointer: &str| doc.pointer(pointer).is_some_and(|v| !v.is_null());
    let required: &[&str] = match kind(doc) {
        "PodMonitor" => &["/spec/selector", "/spec/podMetricsEndpoints/0/port"],
        "PrometheusRule" => &["/spec/groups/0/name", "/spec/groups/0/rules/0/expr"],
        "Certificate" => &["/spec/secretName", "/spec/issuerRef/name"],
        "Issuer" => &["/spec"],
        "SecurityContextConstraints" => &["/runAsUser/type", "/seLinuxContext/type"],
        other => bail!("unexpected custom kind {other} ({name})"),
    };
    for pointer in required {
        ensure!(has(pointer), "{} {name}: no {pointer}", kind(doc));
    }
    ensure!(
        doc["metadata"]["namespace"].as_str() == Some(NAMESPACE)
            || kind(doc) == "SecurityContextConstraints",
        "{name} is not in {NAMESPACE}"
    );
    if kind(doc) == "Issuer" {
        let spec = &doc["spec"];
        ensure!(spec.get("selfSigned").is_some() || spec["ca"]["secretName"].is_string());
    }
    if kind(doc) == "PodMonitor" {
        for endpoint in doc["spec"]["podMetricsEndpoints"]
            .as_array()
            .into_iter()
            .flatten()
        {
            ensure!(endpoint["port"].is_string(), "{name}: ports must be named");
        }
    }
    Ok(())
}

#[test]
fn custom_resources_have_their_required_fields() -> Result<()> {
    for manifests::Rendered { variant, docs } in manifests::rendered()? {
        for doc in docs.iter().filter(|d| !manifests::is_core(d)) {
            check_custom(doc).with_context(|| *variant)?;
        }
        let monitors = of_kind(docs, "PodMonitor");
        // The node collector's component brings a fourth.
        let want = if *variant == "overlays/node-collector" {
            4
        } else {
            3
        };
        ensure!(
            manifests::WITHOUT_MONITORING.contains(variant) || monitors.len() == want,
            "{variant}: {} PodMonitors",
            monitors.len()
        );
    }
    Ok(())
}

#[test]
fn webhook_configuration_is_safe_in_every_variant() -> Result<()> {
    for manifests::Rendered { variant, docs } in manifests::rendered()? {
        check_webhook_configuration(variant, docs).with_context(|| *variant)?;
    }
    Ok(())
}

/// The one webhook fails open, only sees new launcher pods in opted-in namespaces, never system
/// ones, and something gives it its CA bundle.
fn check_webhook_configuration(variant: &str, docs: &[Value]) -> Result<()> {
    let configs = of_kind(docs, "MutatingWebhookConfiguration");
    let [config] = configs.as_slice() else {
        bail!("{variant}: {} webhook configs", configs.len());
    };
    let hooks = config["webhooks"].as_array().context("no webhooks")?;
    let [hook] = hooks.as_slice() else {
        bail!("{variant}: {} webhooks", hooks.len());
    };
    let is = |pointer: &str, want: Value| hook.pointer(pointer) == Some(&want);
    ensure!(
        is("/failurePolicy", "Ignore".into()),
        "{variant}: failurePolicy"
    );
    ensure!(is("/sideEffects", "None".into()), "{variant}: sideEffects");
    ensure!(
        is("/reinvocationPolicy", "Never".into()),
        "{variant}: reinvocation"
    );
    ensure!(is("/timeoutSeconds", 5.into()), "{variant}: timeout");
    ensure!(is("/admissionReviewVersions", serde_json::json!(["v1"])));
    ensure!(is("/clientConfig/service/namespace", NAMESPACE.into()));
    ensure!(is("/clientConfig/service/path", "/mutate".into()));
    let rules = serde_json::json!([{"operations": ["CREATE"], "apiGroups": [""],
        "apiVersions": ["v1"], "resources": ["pods"], "scope": "Namespaced"}]);
    ensure!(
        is("/rules", rules),
        "{variant}: rules must be CREATE pods only"
    );
    ensure!(is(
        "/namespaceSelector/matchLabels",
        serde_json::json!({(pod::INJECT): pod::INJECT_ENABLED})
    ));
    ensure!(is(
        "/objectSelector/matchLabels",
        serde_json::json!({"kubevirt.io": "virt-launcher"})
    ));
    check_system_namespaces_excluded(variant, hook)?;
    // Some variant-specific source of the caBundle must be there.
    let annotations = &config["metadata"]["annotations"];
    let ca_source = match variant {
        "." | "overlays/minimal" => {
            annotations["cert-manager.io/inject-ca-from"]
                == format!("{NAMESPACE}/kube-metrics-webhook-tls")
        }
        "overlays/openshift" => annotations["service.beta.openshift.io/inject-cabundle"] == "true",
        "overlays/bring-your-own" => hook["clientConfig"]["caBundle"].is_string(),
        "overlays/certgen" | "overlays/certgen-minimal" => !of_kind(docs, "Job").is_empty(),
        _ => true,
    };
    ensure!(ca_source, "{variant}: nothing sets caBundle");
    Ok(())
}

/// The namespace selector's `NotIn` list names our own namespace and every system one.
fn check_system_namespaces_excluded(variant: &str, hook: &Value) -> Result<()> {
    let excluded = &hook["namespaceSelector"]["matchExpressions"][0];
    ensure!(excluded["key"] == "kubernetes.io/metadata.name" && excluded["operator"] == "NotIn");
    let values: Vec<&str> = excluded["values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut must = vec![
        NAMESPACE,
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "kubevirt",
    ];
    if variant.contains("openshift") {
        must.push("openshift-cnv");
    }
    for ns in must {
        ensure!(values.contains(&ns), "{variant}: {ns} is not excluded");
    }
    Ok(())
}

/// OpenShift supports platform monitoring only for its own namespaces and Red Hat certified
/// components, and no monitoring objects in `openshift-*` or `kube-*` (docs/openshift.md): the
/// overlay's PodMonitors and rules stay in the install's namespace, for user-workload monitoring,
/// and that is the only monitoring namespace let in.
#[test]
fn openshift_monitors_stay_on_user_workload_monitoring() -> Result<()> {
    let rendered = manifests::rendered()?;
    let openshift = rendered
        .iter()
        .find(|r| r.variant == "overlays/openshift")
        .context("no openshift variant")?;
    let docs = &openshift.docs;
    let mut monitors = 0;
    for wanted in ["PodMonitor", "ServiceMonitor", "PrometheusRule"] {
        for doc in of_kind(docs, wanted) {
            monitors += 1;
            let namespace = doc["metadata"]["namespace"].as_str().unwrap_or("");
            ensure!(
                namespace == NAMESPACE,
                "{wanted} {} in namespace {namespace:?}",
                doc["metadata"]["name"]
            );
        }
    }
    ensure!(monitors >= 3, "{monitors} monitoring objects");
    for namespace in of_kind(docs, "Namespace") {
        let labels = &namespace["metadata"]["labels"];
        ensure!(
            labels["openshift.io/cluster-monitoring"].is_null(),
            "namespace {} is labelled for platform monitoring",
            namespace["metadata"]["name"]
        );
    }
    let policies = of_kind(docs, "NetworkPolicy");
    ensure!(!policies.is_empty(), "no NetworkPolicy");
    for policy in policies {
        let from = &policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"];
        ensure!(
            from["kubernetes.io/metadata.name"] == "openshift-user-workload-monitoring",
            "{} admits {from}",
            policy["metadata"]["name"]
        );
    }
    Ok(())
}

#[test]
fn relay_and_pod_monitors_use_the_contract_names() -> Result<()> {
    for manifests::Rendered { variant, docs } in manifests::rendered()? {
        check_contract_names(docs).with_context(|| *variant)?;
    }
    Ok(())
}

/// The relay listens on its port under its port name and sees the kubelet's pods directory at
/// the path it walks by default; the direct PodMonitor selects the webhook's scrape label and the
/// sidecar's port name, the relay's one the relay's port name.
fn check_contract_names(docs: &[Value]) -> Result<()> {
    // Besides the relay, only the opt-in node collector (tests/tests/node_collector_manifests.rs).
    let daemonsets: Vec<&Value> = of_kind(docs, "DaemonSet")
        .into_iter()
        .filter(|d| d["metadata"]["name"] != "kube-metrics-collector-node")
        .collect();
    let [relay_ds] = daemonsets.as_slice() else {
        bail!("{} DaemonSets", daemonsets.len());
    };
    let template = &relay_ds["spec"]["template"];
    let container = &template["spec"]["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| *a == name)
            .and_then(|i| args.get(i + 1).copied())
    };
    let listen = format!("0.0.0.0:{}", relay::PORT);
    ensure!(
        flag("--listen") == Some(listen.as_str()),
        "relay args {args:?}"
    );
    ensure!(
        flag("--kubelet-root").is_none_or(|root| root == relay::KUBELET_ROOT),
        "relay args {args:?}"
    );
    for (name, want) in [
        ("--socket-volume", sidecar::SOCKET_VOLUME),
        ("--socket-name", sidecar::SOCKET_NAME),
    ] {
        ensure!(flag(name).is_none_or(|v| v == want), "relay args {args:?}");
    }
    ensure!(
        container["ports"]
            == serde_json::json!([{"name": relay::PORT_NAME, "containerPort": relay::PORT, "protocol": "TCP"}]),
        "relay ports {}",
        container["ports"]
    );
    let pods_dir = format!("{}/{}", relay::KUBELET_ROOT, relay::PODS_DIR);
    let mount = &container["volumeMounts"][0];
    let volume = &template["spec"]["volumes"][0];
    ensure!(
        mount["mountPath"] == pods_dir.as_str()
            && mount["name"] == volume["name"]
            && volume["hostPath"]["path"] == pods_dir.as_str(),
        "relay mounts {mount} from {volume}"
    );

    let template_labels = &template["metadata"]["labels"];
    let (mut direct, mut relayed) = (0, 0);
    for monitor in of_kind(docs, "PodMonitor") {
        let selector = &monitor["spec"]["selector"]["matchLabels"];
        let ports: Vec<&str> = monitor["spec"]["podMetricsEndpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["port"].as_str())
            .collect();
        let name = monitor["metadata"]["name"].as_str().unwrap_or("?");
        let selects_relay = selector
            .as_object()
            .is_some_and(|m| !m.is_empty() && m.iter().all(|(k, v)| &template_labels[k] == v));
        if selector.get(pod::SCRAPE).is_some() {
            ensure!(
                selector[pod::SCRAPE] == pod::SCRAPE_DIRECT,
                "{name}: {selector}"
            );
            ensure!(ports == [sidecar::PORT_NAME], "{name}: ports {ports:?}");
            direct += 1;
        } else if selects_relay {
            ensure!(ports == [relay::PORT_NAME], "{name}: ports {ports:?}");
            relayed += 1;
        }
    }
    let monitors = of_kind(docs, "PodMonitor").len();
    ensure!(
        monitors == 0 || (direct, relayed) == (1, 1),
        "{direct} direct and {relayed} relay PodMonitors"
    );
    Ok(())
}

#[test]
fn pod_monitors_carry_the_contracts_limits() -> Result<()> {
    for manifests::Rendered { variant, docs } in manifests::rendered()? {
        for monitor in of_kind(docs, "PodMonitor") {
            check_limits(monitor).with_context(|| *variant)?;
        }
    }
    Ok(())
}

/// A PodMonitor's limits are the contract's: a node's worth of collectors for the relay and the
/// node collector, which merge them, one pod's for the direct path and the webhook; the same
/// label limits everywhere, which the relay never exceeds.
fn check_limits(monitor: &Value) -> Result<()> {
    let name = monitor["metadata"]["name"].as_str().unwrap_or("?");
    let (samples, body) = match name {
        "kube-metrics-collector-relay" | "kube-metrics-collector-node" => {
            (limits::NODE_SAMPLE_LIMIT, limits::NODE_BODY_SIZE_LIMIT)
        }
        "kube-metrics-collector-direct" | "kube-metrics-webhook" => {
            (limits::POD_SAMPLE_LIMIT, limits::POD_BODY_SIZE_LIMIT)
        }
        other => bail!("no limits known for PodMonitor {other}"),
    };
    let spec = &monitor["spec"];
    let want = serde_json::json!({
        "sampleLimit": samples,
        "labelLimit": limits::LABEL_LIMIT,
        "labelNameLengthLimit": limits::LABEL_NAME_LENGTH_LIMIT,
        "labelValueLengthLimit": limits::LABEL_VALUE_LENGTH_LIMIT,
        "bodySizeLimit": format!("{body}B"),
    });
    for (field, value) in want.as_object().into_iter().flatten() {
        ensure!(
            spec[field] == *value,
            "{name}: {field} is {}, not {value}",
            spec[field]
        );
    }
    Ok(())
}

#[test]
fn one_image_reference_reaches_every_container_and_the_sidecar() -> Result<()> {
    let mut images = BTreeSet::new();
    // `base` alone is not an install: the image reference is a component every variant adds.
    let installs = manifests::rendered()?
        .iter()
        .filter(|r| r.variant != "base");
    for manifests::Rendered { variant, docs } in installs {
        images.extend(manifests::container_images(docs));
        let deployments = of_kind(docs, "Deployment");
        ensure!(deployments.len() == 1, "{variant}: no webhook Deployment");
        ensure!(deployments[0]["spec"]["replicas"] == 2);
    }
    ensure!(
        images.len() == 1 && images.iter().all(|i| i.contains('/') && i.contains(':')),
        "images differ: {images:?}"
    );
    // An admin's own overlay overrides it once, and the sidecar image (KMW_IMAGE) follows.
    let tree = manifests::tree_with_certs()?;
    let mine = tree.path().join("mine");
    std::fs::create_dir(&mine)?;
    let overlay = format!(
        "resources: [../manifests/overlays/certgen]\nimages:\n- name: {}\n  newName: registry.example/kmc\n  newTag: \"9\"\n",
        images
            .first()
            .and_then(|i| i.split_once(':'))
            .map_or("", |(name, _)| name)
    );
    std::fs::write(mine.join("kustomization.yaml"), overlay)?;
    let docs = manifests::kustomize(&mine)?;
    let overridden = manifests::container_images(&docs);
    let want: BTreeSet<String> = ["registry.example/kmc:9".to_owned()].into();
    ensure!(overridden == want, "override reached {overridden:?}");
    // webhook, KMW_IMAGE, relay, certgen Job
    ensure!(
        docs.iter()
            .filter(|d| d["spec"]["template"]["spec"]["containers"].is_array())
            .count()
            == 3
    );
    Ok(())
}

#[test]
fn build_image_tags_the_image_the_manifests_reference() -> Result<()> {
    let script = std::fs::read_to_string(e2e::workspace().join("scripts/build-image"))?;
    let component = std::fs::read_to_string(
        e2e::workspace().join("manifests/components/image/kustomization.yaml"),
    )?;
    let field = |key: &str| {
        component
            .split(&format!("{key}: "))
            .nth(1)
            .and_then(|s| s.lines().next())
            .with_context(|| key.to_owned())
    };
    let image = format!(
        "{}:{}",
        field("newName")?,
        field("newTag")?.trim_matches('"')
    );
    ensure!(
        script.contains(&format!("IMAGE:-{image}}}")),
        "scripts/build-image does not default to {image}"
    );
    Ok(())
}

/// Every ServiceAccount of every variant gets exactly these grants, and no subject but a
/// ServiceAccount gets any: `who | where | verbs group/resource [names]`, or `who | nothing`.
/// A new rule, verb, binding or account fails here until this table says so.
const RBAC_EVERY_VARIANT: &[&str] = &[
    "kube-metrics-collector/kube-metrics-collector-relay | nothing",
    "kube-metrics-collector/kube-metrics-webhook | cluster | get,list,watch kubevirt.io/virtualmachineinstances",
];

/// What a variant grants beyond [`RBAC_EVERY_VARIANT`].
const RBAC_VARIANT: &[(&str, &[&str])] = &[
    (
        "overlays/certgen",
        &[
            "kube-metrics-collector/kube-metrics-webhook-certgen | cluster | get,patch admissionregistration.k8s.io/mutatingwebhookconfigurations [kube-metrics-collector]",
            "kube-metrics-collector/kube-metrics-webhook-certgen | namespace kube-metrics-collector | create core/secrets",
            "kube-metrics-collector/kube-metrics-webhook-certgen | namespace kube-metrics-collector | get,update core/secrets [kube-metrics-webhook-tls]",
        ],
    ),
    (
        "overlays/certgen-minimal",
        &[
            "kube-metrics-collector/kube-metrics-webhook-certgen | cluster | get,patch admissionregistration.k8s.io/mutatingwebhookconfigurations [kube-metrics-collector]",
            "kube-metrics-collector/kube-metrics-webhook-certgen | namespace kube-metrics-collector | create core/secrets",
            "kube-metrics-collector/kube-metrics-webhook-certgen | namespace kube-metrics-collector | get,update core/secrets [kube-metrics-webhook-tls]",
        ],
    ),
    (
        "overlays/openshift",
        &[
            "kube-metrics-collector/kube-metrics-collector-relay | namespace kube-metrics-collector | use security.openshift.io/securitycontextconstraints [kube-metrics-collector-relay]",
        ],
    ),
    (
        "overlays/node-collector",
        &["kube-metrics-collector/kube-metrics-collector-node | nothing"],
    ),
];

#[test]
fn rbac_grants_every_service_account_exactly_the_table() -> Result<()> {
    for manifests::Rendered { variant, docs } in manifests::rendered()? {
        let extra = RBAC_VARIANT
            .iter()
            .find(|(v, _)| v == variant)
            .map_or(&[][..], |(_, lines)| *lines);
        let mut want: BTreeSet<String> = RBAC_EVERY_VARIANT
            .iter()
            .chain(extra)
            .map(|l| (*l).to_owned())
            .collect();
        // Granting `use` of an SCC to the relay replaces its "nothing".
        if want.iter().any(|l| l.contains("-relay | namespace")) {
            want.remove("kube-metrics-collector/kube-metrics-collector-relay | nothing");
        }
        let got = rbac_grants(docs).with_context(|| *variant)?;
        ensure!(
            got == want,
            "{variant}: RBAC differs from the table\n  granted, not in the table: {:#?}\n  in the table, not granted: {:#?}",
            got.difference(&want).collect::<Vec<_>>(),
            want.difference(&got).collect::<Vec<_>>()
        );
    }
    Ok(())
}

/// One line per ServiceAccount and rule its bindings give it, one per account with none.
fn rbac_grants(docs: &[Value]) -> Result<BTreeSet<String>> {
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|x| x.as_str().unwrap_or("").to_owned())
            .collect()
    };
    let role = |kind: &str, namespace: &str, name: &str| {
        docs.iter().find(|d| {
            manifests::kind(d) == kind
                && d["metadata"]["name"] == name
                && (kind == "ClusterRole" || d["metadata"]["namespace"] == namespace)
        })
    };
    let mut grants = BTreeSet::new();
    let mut granted = BTreeSet::new();
    for binding in docs
        .iter()
        .filter(|d| matches!(manifests::kind(d), "RoleBinding" | "ClusterRoleBinding"))
    {
        let namespace = text(&binding["metadata"]["namespace"]);
        let scope = match manifests::kind(binding) {
            "RoleBinding" => format!("namespace {namespace}"),
            _ => "cluster".to_owned(),
        };
        let reference = &binding["roleRef"];
        let role_kind = text(&reference["kind"]);
        let role = role(&role_kind, &namespace, &text(&reference["name"]))
            .with_context(|| format!("{binding}: no such role"))?;
        ensure!(
            role.get("aggregationRule").is_none(),
            "{role}: an aggregated role grants what others add"
        );
        for subject in binding["subjects"].as_array().into_iter().flatten() {
            ensure!(
                subject["kind"] == "ServiceAccount",
                "{binding}: a subject that is not a ServiceAccount"
            );
            let who = format!("{}/{}", text(&subject["namespace"]), text(&subject["name"]));
            granted.insert(who.clone());
            for rule in role["rules"].as_array().into_iter().flatten() {
                ensure!(
                    rule.get("nonResourceURLs").is_none(),
                    "{role}: non-resource URLs"
                );
                let verbs = list(&rule["verbs"]).join(",");
                let names = list(&rule["resourceNames"]);
                let names = if names.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", names.join(","))
                };
                for group in list(&rule["apiGroups"]) {
                    let group = if group.is_empty() { "core" } else { &group };
                    for resource in list(&rule["resources"]) {
                        grants.insert(format!(
                            "{who} | {scope} | {verbs} {group}/{resource}{names}"
                        ));
                    }
                }
            }
        }
    }
    for account in of_kind(docs, "ServiceAccount") {
        let who = format!(
            "{}/{}",
            text(&account["metadata"]["namespace"]),
            text(&account["metadata"]["name"])
        );
        if !granted.contains(&who) {
            grants.insert(format!("{who} | nothing"));
        }
    }
    Ok(grants)
}

/// The webhook's TLS key is mounted 0440, group fsGroup (65532, or OpenShift's own), which the
/// webhook's user is in and no node agent is; the webhook and certgen run as a user of their own
/// (65532, or OpenShift's), never the node collector's 107, so their tokens are 0600 and theirs;
/// certgen's rights come with their fence wherever certgen runs.
#[test]
fn secrets_are_mounted_0440_and_certgen_is_fenced() -> Result<()> {
    for manifests::Rendered { variant, docs } in manifests::rendered()? {
        let deployments = of_kind(docs, "Deployment");
        let Some(webhook) = deployments.first() else {
            continue;
        };
        let pod = &webhook["spec"]["template"]["spec"];
        for volume in pod["volumes"].as_array().into_iter().flatten() {
            if volume.get("secret").is_some() {
                ensure!(
                    volume["secret"]["defaultMode"] == 0o440,
                    "{variant}: Secret volume {} mode {}",
                    volume["name"],
                    volume["secret"]["defaultMode"]
                );
            }
        }
        let context = &pod["securityContext"];
        for key in ["fsGroup", "runAsUser", "runAsGroup"] {
            ensure!(
                if *variant == "overlays/openshift" {
                    context[key].is_null()
                } else {
                    context[key] == 65532
                },
                "{variant}: {key} {}",
                context[key]
            );
        }
        for job in of_kind(docs, "Job") {
            let context = &job["spec"]["template"]["spec"]["securityContext"];
            ensure!(
                context["runAsUser"] == 65532 && context["runAsGroup"] == 65532,
                "{variant}: certgen runs as {context}"
            );
        }
        let jobs = of_kind(docs, "Job");
        let policies: BTreeSet<&str> = of_kind(docs, "ValidatingAdmissionPolicyBinding")
            .iter()
            .filter_map(|b| b["spec"]["policyName"].as_str())
            .collect();
        let want: BTreeSet<&str> = if jobs.is_empty() {
            BTreeSet::new()
        } else {
            [
                "kube-metrics-webhook-certgen-secret",
                "kube-metrics-webhook-certgen-webhook-config",
            ]
            .into()
        };
        ensure!(policies == want, "{variant}: policy bindings {policies:?}");
        for policy in of_kind(docs, "ValidatingAdmissionPolicy") {
            ensure!(
                policy["metadata"].get("namespace").is_none()
                    && policy["spec"]["failurePolicy"] == "Fail",
                "{variant}: {policy}"
            );
        }
    }
    Ok(())
}
