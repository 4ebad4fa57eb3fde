//! Network exposure as the manifests declare it (docs/network.md): the NetworkPolicies of every
//! install variant select the relay's and the webhook's pods and admit exactly their ports, from
//! the monitoring namespace or (the webhook's HTTPS port) from anywhere; the VM-namespace templates
//! narrow only the collector's port; the documented selector patch works; and on OpenShift the
//! relay's SCC validates against the real CRD schema and grants what the relay's pod needs, to it
//! alone. Needs `kubectl` (with kustomize), `openssl` and `kubernetes-validate` (scripts/setup).

use anyhow::{Context, Result, bail, ensure};
use e2e::crd;
use e2e::manifests::{self, NAMESPACE, of_kind};
use e2e::network_policy::{self as np, Port};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// As in manifests.rs: the oldest and newest releases k8s-openapi 0.29 covers.
/// The collector's default port (docs/design.md), which the VM-namespace templates name by number.
const COLLECTOR_PORT: u16 = 48080;
/// The VM-namespace templates, relative to `manifests/`.
const TEMPLATES: &[&str] = &["namespace-policy/isolated", "namespace-policy/not-isolated"];
const RELAY: &str = "kube-metrics-collector-relay";
const WEBHOOK: &str = "kube-metrics-webhook";

/// The namespace a variant lets Prometheus in from; `None`: the variant has no NetworkPolicies.
fn monitoring_namespace(variant: &str) -> Option<&'static str> {
    match variant {
        "base" | "overlays/minimal" | "overlays/certgen-minimal" => None,
        "overlays/openshift" => Some("openshift-user-workload-monitoring"),
        _ => Some("monitoring"),
    }
}

/// The `from` of a rule that admits one namespace, chosen by its automatic name label.
fn only_from(namespace: &str) -> Value {
    json!([{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}])
}

fn named<'a>(docs: &'a [Value], kind: &str, name: &str) -> Result<&'a Value> {
    of_kind(docs, kind)
        .into_iter()
        .find(|d| d["metadata"]["name"] == name)
        .with_context(|| format!("no {kind} {name}"))
}

fn rules(policy: &Value) -> &[Value] {
    policy["spec"]["ingress"]
        .as_array()
        .map_or(&[], Vec::as_slice)
}

fn templates() -> Result<Vec<(&'static str, Vec<Value>)>> {
    let root = e2e::workspace().join("manifests");
    TEMPLATES
        .iter()
        .map(|t| Ok((*t, manifests::kustomize(&root.join(t)).context(*t)?)))
        .collect()
}

#[test]
fn relay_and_webhook_ports_are_admitted_from_the_right_sources_in_every_variant() -> Result<()> {
    for manifests::Rendered { variant, docs } in manifests::rendered()? {
        let policies = of_kind(docs, "NetworkPolicy");
        match monitoring_namespace(variant) {
            None => ensure!(policies.is_empty(), "{variant}: unexpected NetworkPolicies"),
            Some(namespace) => {
                // The node collector's component brings its own (node_collector_manifests.rs).
                let want = if *variant == "overlays/node-collector" {
                    3
                } else {
                    2
                };
                ensure!(
                    policies.len() == want,
                    "{variant}: {} policies",
                    policies.len()
                );
                check_install_policies(docs, namespace).with_context(|| *variant)?;
            }
        }
    }
    Ok(())
}

/// The relay's policy admits its one port from `monitoring`; the webhook's admits `admin` from
/// there and `https` from anywhere; nothing else is selected, named or restricted.
fn check_install_policies(docs: &[Value], monitoring: &str) -> Result<()> {
    let relay = &named(docs, "DaemonSet", RELAY)?["spec"]["template"];
    let webhook = &named(docs, "Deployment", WEBHOOK)?["spec"]["template"];
    let relay_ports = np::declared_ports(&relay["spec"]);
    let webhook_ports = np::declared_ports(&webhook["spec"]);
    let port = |name: &str, number| Port {
        name: name.into(),
        number,
        protocol: "TCP".into(),
    };
    ensure!(relay_ports == [port("relay-metrics", 48081)].into());
    ensure!(webhook_ports == [port("admin", 8080), port("https", 8443)].into());

    for (name, pods, others, ports) in [
        (RELAY, relay, webhook, &relay_ports),
        (WEBHOOK, webhook, relay, &webhook_ports),
    ] {
        let policy = named(docs, "NetworkPolicy", name)?;
        check_policy_shape(policy, pods, others, ports, monitoring).with_context(|| name)?;
    }

    let relay_rules = rules(named(docs, "NetworkPolicy", RELAY)?);
    ensure!(relay_rules.len() == 1);
    ensure!(np::admitted(&relay_rules[0], &relay_ports) == relay_ports);

    let webhook_rules = rules(named(docs, "NetworkPolicy", WEBHOOK)?);
    let [metrics, api_server] = webhook_rules else {
        bail!("webhook policy: {} rules", webhook_rules.len());
    };
    ensure!(np::admitted(metrics, &webhook_ports) == [port("admin", 8080)].into());
    ensure!(
        np::from_anywhere(api_server),
        "https must be open to the API server"
    );
    ensure!(np::admitted(api_server, &webhook_ports) == [port("https", 8443)].into());
    // The API server's path: Service port 443 -> targetPort -> a container port the rule admits.
    let service = named(docs, "Service", WEBHOOK)?;
    let target = service["spec"]["ports"][0]["targetPort"]
        .as_str()
        .context("targetPort")?;
    let reached: Vec<&Port> = webhook_ports.iter().filter(|p| p.name == target).collect();
    ensure!(reached.len() == 1 && np::rule_admits(api_server, reached[0]));
    Ok(())
}

/// One policy of the install: in our namespace, Ingress only, selecting `pods` but not `others`,
/// naming only ports the pods declare, with the rule from `monitoring` first.
fn check_policy_shape(
    policy: &Value,
    pods: &Value,
    others: &Value,
    ports: &BTreeSet<Port>,
    monitoring: &str,
) -> Result<()> {
    let name = policy["metadata"]["name"].as_str().unwrap_or("?");
    ensure!(
        policy["metadata"]["namespace"] == NAMESPACE,
        "{name}: namespace"
    );
    ensure!(
        policy["spec"]["policyTypes"] == json!(["Ingress"]),
        "{name}: policyTypes"
    );
    ensure!(
        policy["spec"].get("egress").is_none(),
        "{name}: egress rules"
    );
    let selector = &policy["spec"]["podSelector"];
    ensure!(
        np::selects(selector, &pods["metadata"]["labels"]),
        "{name}: misses its pods"
    );
    ensure!(
        !np::selects(selector, &others["metadata"]["labels"]),
        "{name}: selects others"
    );
    // Every port a rule names is one the pods declare: a misspelt name would admit nothing.
    for rule_port in rules(policy)
        .iter()
        .flat_map(|r| r["ports"].as_array().into_iter().flatten())
    {
        ensure!(
            ports.iter().any(|p| np::port_matches(rule_port, p)),
            "{name}: {rule_port} names no declared port"
        );
    }
    // The metrics rule comes first, so that one documented patch reaches every policy.
    let first = rules(policy).first().context("no rules")?;
    ensure!(
        first["from"] == only_from(monitoring),
        "{name}: {}",
        first["from"]
    );
    Ok(())
}

#[test]
fn namespace_templates_narrow_only_the_collector_port() -> Result<()> {
    let design = std::fs::read_to_string(e2e::workspace().join("docs/design.md"))?;
    ensure!(design.contains(&format!("default `{COLLECTOR_PORT}`")));
    let launcher = |scrape: &str| {
        json!({"kubevirt.io": "virt-launcher", "kube-metrics-collector.io/scrape": scrape,
               "vm.kubevirt.io/name": "vm-a"})
    };
    for (template, docs) in templates()? {
        let names: BTreeSet<&str> = docs
            .iter()
            .filter_map(|d| d["metadata"]["name"].as_str())
            .collect();
        let mut want = BTreeSet::from(["kube-metrics-collector-from-monitoring"]);
        if template.ends_with("not-isolated") {
            want.insert("kube-metrics-collector-all-other-ports");
        }
        ensure!(names == want, "{template}: {names:?}");
        for policy in &docs {
            let name = &policy["metadata"]["name"];
            ensure!(policy["kind"] == "NetworkPolicy", "{template}: {name}");
            // `kubectl apply -n` places them: a namespace here would send them elsewhere.
            ensure!(
                policy["metadata"].get("namespace").is_none(),
                "{name}: namespace"
            );
            ensure!(
                policy["spec"]["policyTypes"] == json!(["Ingress"]),
                "{name}"
            );
            let selector = &policy["spec"]["podSelector"];
            // On `relay` pods the port belongs to the guest (docs/kubevirt.md §4).
            ensure!(
                np::selects(selector, &launcher("direct")),
                "{name}: misses direct pods"
            );
            ensure!(
                !np::selects(selector, &launcher("relay")),
                "{name}: selects relay pods"
            );
            ensure!(
                !np::selects(selector, &json!({"app": "x"})),
                "{name}: selects other pods"
            );
        }
        check_template_ports(template, &docs)?;
    }
    Ok(())
}

/// The collector's port is admitted only from `monitoring`; `not-isolated` gives back every other
/// TCP port, all UDP and all SCTP from anywhere; `isolated` admits nothing else at all.
fn check_template_ports(template: &str, docs: &[Value]) -> Result<()> {
    let all_rules: Vec<&Value> = docs.iter().flat_map(rules).collect();
    let from_monitoring = |port: &Port| {
        all_rules
            .iter()
            .any(|r| r["from"] == only_from("monitoring") && np::rule_admits(r, port))
    };
    let from_anywhere = |port: &Port| {
        all_rules
            .iter()
            .any(|r| np::from_anywhere(r) && np::rule_admits(r, port))
    };
    let opens_the_rest = template.ends_with("not-isolated");
    for number in 1..=u16::MAX {
        let port = Port::tcp(number);
        let ours = number == COLLECTOR_PORT;
        ensure!(
            from_monitoring(&port) == ours,
            "{template}: TCP {number} from monitoring"
        );
        ensure!(
            from_anywhere(&port) == (opens_the_rest && !ours),
            "{template}: TCP {number} from anywhere"
        );
    }
    for protocol in ["UDP", "SCTP"] {
        for number in [1, COLLECTOR_PORT, u16::MAX] {
            let port = Port {
                protocol: protocol.into(),
                ..Port::tcp(number)
            };
            ensure!(
                from_anywhere(&port) == opens_the_rest,
                "{template}: {protocol} {number}"
            );
            ensure!(!from_monitoring(&port) || opens_the_rest);
        }
    }
    Ok(())
}

#[test]
fn network_policies_pass_strict_validation() -> Result<()> {
    let templates = templates()?;
    let mut policies: Vec<&Value> = templates.iter().flat_map(|(_, docs)| docs).collect();
    let mut want = 1 + 2; // isolated, not-isolated
    for manifests::Rendered { variant, docs } in manifests::rendered()? {
        policies.extend(of_kind(docs, "NetworkPolicy"));
        want += monitoring_namespace(variant).map_or(0, |_| 2);
        want += usize::from(*variant == "overlays/node-collector");
    }
    ensure!(
        policies.len() == want,
        "{} policies, not {want}",
        policies.len()
    );
    let named: Vec<(String, &Value)> = policies
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("policy-{i}"), *p))
        .collect();
    manifests::kubernetes_validate(&named)?;
    let bad = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "x"}, "spec": {"podSelectr": {}, "ingress": [{"ports": [{"port": 1}]}]}});
    ensure!(
        manifests::kubernetes_validate(&[("bad".to_owned(), &bad)]).is_err(),
        "validator accepted a bad policy"
    );
    Ok(())
}

/// The fenced YAML block of docs/network.md that replaces the namespace selector.
fn documented_patch() -> Result<String> {
    let doc = std::fs::read_to_string(e2e::workspace().join("docs/network.md"))?;
    doc.split("```yaml\n")
        .skip(1)
        .filter_map(|block| block.split_once("```").map(|(yaml, _)| yaml))
        .find(|yaml| yaml.contains("/spec/ingress/0/from/0/namespaceSelector"))
        .map(str::to_owned)
        .context("docs/network.md shows no selector patch")
}

#[test]
fn documented_selector_patch_changes_every_policy() -> Result<()> {
    let patch = documented_patch()?;
    // The component's own comment shows the same patch.
    let component = std::fs::read_to_string(
        e2e::workspace().join("manifests/components/network-policies/kustomization.yaml"),
    )?;
    let commented: String = component
        .lines()
        .filter_map(|l| l.strip_prefix("#   "))
        .map(|l| format!("{l}\n"))
        .collect();
    ensure!(
        commented.contains(&patch),
        "the component's comment differs from the doc"
    );

    // kustomize refuses an absolute path to a base: the overlay sits next to a copy of the tree.
    let tree = manifests::tree_with_certs()?;
    let mine = tree.path().join("mine");
    std::fs::create_dir(&mine)?;
    std::fs::write(
        mine.join("kustomization.yaml"),
        format!("resources:\n  - ../manifests\n{patch}"),
    )?;
    let docs = manifests::kustomize(&mine)?;
    for name in [RELAY, WEBHOOK] {
        let policy = named(&docs, "NetworkPolicy", name)?;
        ensure!(
            rules(policy)[0]["from"] == only_from("my-monitoring"),
            "{name} unchanged"
        );
    }
    let webhook = named(&docs, "NetworkPolicy", WEBHOOK)?;
    ensure!(
        np::from_anywhere(&rules(webhook)[1]),
        "the https rule was touched"
    );
    Ok(())
}

#[test]
fn relay_scc_validates_against_the_openshift_crd() -> Result<()> {
    let crd_yaml = std::fs::read_to_string(e2e::crd::fixtures().join("scc.yaml"))?;
    let crd = manifests::parse_documents(&crd_yaml)?
        .into_iter()
        .next()
        .context("empty CRD file")?;
    ensure!(crd["spec"]["scope"] == "Cluster");
    let schema = crd::schema::schema(&crd, "v1")?;
    let openshift = manifests::rendered()?
        .iter()
        .find(|r| r.variant == "overlays/openshift")
        .context("no openshift variant")?;
    let sccs = of_kind(&openshift.docs, "SecurityContextConstraints");
    let [scc] = sccs.as_slice() else {
        bail!("{} SCCs", sccs.len());
    };
    let found = crd::schema::violations(schema, scc);
    ensure!(found.is_empty(), "{found:?}");
    ensure!(scc["priority"] == 0, "priority: {}", scc["priority"]);
    ensure!(
        scc["metadata"].get("namespace").is_none(),
        "a cluster-scoped SCC has no namespace"
    );

    // The schema really decides: without priority, or with PodSecurityPolicy's host path list
    // (which SCC does not have), the same object is refused.
    let mut without = (*scc).clone();
    without
        .as_object_mut()
        .context("object")?
        .remove("priority");
    ensure!(crd::schema::violations(schema, &without) == [".priority: Required value"]);
    let mut with_paths = (*scc).clone();
    with_paths["allowedHostPaths"] =
        json!([{"pathPrefix": "/var/lib/kubelet/pods", "readOnly": true}]);
    ensure!(crd::schema::violations(schema, &with_paths) == [".allowedHostPaths: unknown field"]);
    Ok(())
}

#[test]
fn relay_scc_grants_what_the_relay_needs_to_the_relay_alone() -> Result<()> {
    let docs = &manifests::rendered()?
        .iter()
        .find(|r| r.variant == "overlays/openshift")
        .context("no openshift variant")?
        .docs;
    let scc = named(docs, "SecurityContextConstraints", RELAY)?;
    let want = json!({
        "allowHostDirVolumePlugin": true, "allowHostIPC": false, "allowHostNetwork": false,
        "allowHostPID": false, "allowHostPorts": false, "allowPrivilegeEscalation": false,
        "allowPrivilegedContainer": false, "allowedCapabilities": [], "defaultAddCapabilities": [],
        "requiredDropCapabilities": ["ALL"], "readOnlyRootFilesystem": true,
        "runAsUser": {"type": "MustRunAs", "uid": 65533}, "seccompProfiles": ["runtime/default"],
        "users": [], "groups": [],
    });
    for (field, value) in want.as_object().context("object")? {
        ensure!(scc[field] == *value, "{field}: {}", scc[field]);
    }
    // The relay's pod fits it: its volume types are allowed, it runs as UID 65533 without extras.
    let pod = &named(docs, "DaemonSet", RELAY)?["spec"]["template"]["spec"];
    let allowed: Vec<&str> = scc["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for volume in pod["volumes"].as_array().into_iter().flatten() {
        let kind = volume
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.as_str())
            .find(|k| *k != "name");
        ensure!(
            kind.is_some_and(|k| allowed.contains(&k)),
            "volume {volume}"
        );
    }
    ensure!(pod["securityContext"]["runAsUser"] == scc["runAsUser"]["uid"]);
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        ensure!(pod.get(key).is_none_or(|v| *v == false), "{key}");
    }
    for container in pod["containers"].as_array().into_iter().flatten() {
        let context = &container["securityContext"];
        ensure!(
            context["readOnlyRootFilesystem"] == true
                && context["allowPrivilegeEscalation"] == false
        );
        ensure!(context["capabilities"]["drop"] == json!(["ALL"]));
    }
    // Only the relay's ServiceAccount may use it.
    let role = named(docs, "ClusterRole", "kube-metrics-collector-relay-scc")?;
    ensure!(
        role["rules"]
            == json!([{"apiGroups": ["security.openshift.io"],
        "resources": ["securitycontextconstraints"], "resourceNames": [RELAY], "verbs": ["use"]}])
    );
    let binding = named(docs, "RoleBinding", "kube-metrics-collector-relay-scc")?;
    ensure!(binding["metadata"]["namespace"] == NAMESPACE);
    ensure!(binding["roleRef"]["name"] == role["metadata"]["name"]);
    ensure!(
        binding["subjects"]
            == json!([{"kind": "ServiceAccount",
        "name": pod["serviceAccountName"], "namespace": NAMESPACE}])
    );
    Ok(())
}

#[test]
fn host_paths_are_mounted_read_only_in_every_variant() -> Result<()> {
    for manifests::Rendered { variant, docs } in manifests::rendered()? {
        let mut mounts = 0;
        for doc in docs {
            let pod = &doc["spec"]["template"]["spec"];
            let host_volumes: BTreeSet<&str> = pod["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|v| v.get("hostPath").is_some())
                .filter_map(|v| v["name"].as_str())
                .collect();
            for list in ["containers", "initContainers"] {
                for container in pod[list].as_array().into_iter().flatten() {
                    for mount in container["volumeMounts"].as_array().into_iter().flatten() {
                        if host_volumes.contains(mount["name"].as_str().unwrap_or("")) {
                            mounts += 1;
                            ensure!(mount["readOnly"] == true, "{variant}: {mount} is writable");
                        }
                    }
                }
            }
        }
        // The relay's two: the kubelet's pod directory and its pod log directory, whose names
        // attest each pod's identity (docs/threat-model.md); nothing else. The opt-in node
        // collector mounts the same two.
        let want = if *variant == "overlays/node-collector" {
            4
        } else {
            2
        };
        ensure!(mounts == want, "{variant}: {mounts} hostPath mounts");
    }
    Ok(())
}
