//! The manifests a cluster admin applies: every kustomize variant renders, its core kinds pass
//! `kubernetes-validate --strict`, custom resources have their required fields, the webhook
//! configuration keeps its safety invariants, the rules pass `promtool check`/`test`, and every
//! metric the rules and the dashboard use is one the collector or the webhook documents.
//! Needs `kubectl` (with kustomize), `promtool` and `kubernetes-validate` (scripts/setup).

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Kubernetes releases the core kinds are validated against: native sidecars are on by default
/// from 1.29 on; 1.33 is the oldest that k8s-openapi 0.29 covers, 1.37 the newest.
const KUBERNETES_VERSIONS: &[&str] = &["1.33.0", "1.37.0"];
const NAMESPACE: &str = "kube-metrics-collector";
/// The webhook's metrics, from its flags' contract (the webhook crate owns them).
const WEBHOOK_METRICS: &[&str] = &[
    "kube_metrics_webhook_requests_total",
    "kube_metrics_webhook_skips_total",
    "kube_metrics_webhook_request_duration_seconds_bucket",
    "kube_metrics_webhook_request_duration_seconds_sum",
    "kube_metrics_webhook_request_duration_seconds_count",
    "kube_metrics_webhook_certificate_expiry_timestamp_seconds",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout)
}

fn parse_documents(yaml: &str) -> Result<Vec<Value>> {
    // kustomize separates documents with a bare `---` line.
    let mut docs = Vec::new();
    for text in format!("\n{yaml}").split("\n---\n") {
        let value: Value = serde_norway::from_str(text).context("not YAML")?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// A tree of the manifests with bring-your-own certificate files in place (the repository ships
/// none), so that every variant can be rendered.
fn manifests_with_certs() -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    run(Command::new("cp")
        .arg("-r")
        .arg(repo().join("manifests"))
        .arg(dir.path()))?;
    let certs = dir.path().join("manifests/overlays/bring-your-own/certs");
    let subject = format!("/CN=kube-metrics-webhook.{NAMESPACE}.svc");
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", &subject])
        .args(["-keyout", "tls.key", "-out", "tls.crt"])
        .current_dir(&certs))?;
    std::fs::copy(certs.join("tls.crt"), certs.join("ca.crt"))?;
    Ok(dir)
}

/// (variant, rendered objects) for the default install and every base and overlay.
fn render_all() -> Result<Vec<(String, Vec<Value>)>> {
    let tree = manifests_with_certs()?;
    let variants = [
        ".",
        "base",
        "overlays/certgen",
        "overlays/bring-your-own",
        "overlays/openshift",
        "overlays/minimal",
    ];
    let mut rendered = Vec::new();
    for variant in variants {
        let dir = tree.path().join("manifests").join(variant);
        let yaml = run(Command::new("kubectl").arg("kustomize").arg(&dir))?;
        let docs = parse_documents(&yaml).with_context(|| variant.to_owned())?;
        ensure!(docs.len() >= 10, "{variant}: only {} objects", docs.len());
        rendered.push((variant.to_owned(), docs));
    }
    Ok(rendered)
}

fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or("")
}

fn of_kind<'a>(docs: &'a [Value], wanted: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| kind(d) == wanted).collect()
}

fn is_core(doc: &Value) -> bool {
    let api = doc["apiVersion"].as_str().unwrap_or("");
    let group = api.rsplit_once('/').map_or("", |(group, _)| group);
    [
        "",
        "apps",
        "batch",
        "policy",
        "rbac.authorization.k8s.io",
        "admissionregistration.k8s.io",
    ]
    .contains(&group)
}

fn kubernetes_validate(docs: &[&Value]) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut files = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let path = dir.path().join(format!("{i}.json"));
        std::fs::write(&path, serde_json::to_vec(doc)?)?;
        files.push(path);
    }
    for version in KUBERNETES_VERSIONS {
        run(Command::new("kubernetes-validate")
            .args(["--strict", "--quiet", "-k", version])
            .args(&files))?;
    }
    Ok(())
}

#[test]
fn core_kinds_pass_strict_validation_in_every_variant() -> Result<()> {
    for (variant, docs) in render_all()? {
        let core: Vec<&Value> = docs.iter().filter(|d| is_core(d)).collect();
        ensure!(core.len() >= 10, "{variant}: {} core objects", core.len());
        kubernetes_validate(&core).with_context(|| variant.clone())?;
    }
    // The validator really rejects: a Deployment with a misspelt field must fail.
    let bad: Value = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "x"}, "spec": {"replicas": 1, "selectr": {}, "template": {}}});
    ensure!(
        kubernetes_validate(&[&bad]).is_err(),
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
    for (variant, docs) in render_all()? {
        for doc in docs.iter().filter(|d| !is_core(d)) {
            check_custom(doc).with_context(|| variant.clone())?;
        }
        let monitors = of_kind(&docs, "PodMonitor");
        ensure!(
            variant == "base" || variant == "overlays/minimal" || monitors.len() == 3,
            "{variant}: {} PodMonitors",
            monitors.len()
        );
    }
    Ok(())
}

#[test]
fn webhook_configuration_is_safe_in_every_variant() -> Result<()> {
    for (variant, docs) in render_all()? {
        let configs = of_kind(&docs, "MutatingWebhookConfiguration");
        ensure!(
            configs.len() == 1,
            "{variant}: {} webhook configs",
            configs.len()
        );
        let hooks = configs[0]["webhooks"].as_array().context("no webhooks")?;
        ensure!(hooks.len() == 1, "{variant}: {} webhooks", hooks.len());
        let hook = &hooks[0];
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
            serde_json::json!({"kube-metrics-collector.io/inject": "enabled"})
        ));
        ensure!(is(
            "/objectSelector/matchLabels",
            serde_json::json!({"kubevirt.io": "virt-launcher"})
        ));
        let excluded = &hook["namespaceSelector"]["matchExpressions"][0];
        ensure!(
            excluded["key"] == "kubernetes.io/metadata.name" && excluded["operator"] == "NotIn"
        );
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
        // Some variant-specific source of the caBundle must be there.
        let annotations = &configs[0]["metadata"]["annotations"];
        let ca_source = match variant.as_str() {
            "." | "overlays/minimal" => {
                annotations["cert-manager.io/inject-ca-from"]
                    == format!("{NAMESPACE}/kube-metrics-webhook-tls")
            }
            "overlays/openshift" => {
                annotations["service.beta.openshift.io/inject-cabundle"] == "true"
            }
            "overlays/bring-your-own" => hook["clientConfig"]["caBundle"].is_string(),
            "overlays/certgen" => !of_kind(&docs, "Job").is_empty(),
            _ => true,
        };
        ensure!(ca_source, "{variant}: nothing sets caBundle");
    }
    Ok(())
}

#[test]
fn one_image_reference_reaches_every_container_and_the_sidecar() -> Result<()> {
    let mut images = BTreeSet::new();
    // `base` alone is not an install: the image reference is a component every variant adds.
    for (variant, docs) in render_all()?.into_iter().filter(|(v, _)| v != "base") {
        images.extend(container_images(&docs));
        let deployments = of_kind(&docs, "Deployment");
        ensure!(deployments.len() == 1, "{variant}: no webhook Deployment");
        ensure!(deployments[0]["spec"]["replicas"] == 2);
    }
    ensure!(
        images.len() == 1 && images.iter().all(|i| i.contains('/') && i.contains(':')),
        "images differ: {images:?}"
    );
    // An admin's own overlay overrides it once, and the sidecar image (KMW_IMAGE) follows.
    let tree = manifests_with_certs()?;
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
    let docs = parse_documents(&run(Command::new("kubectl").arg("kustomize").arg(&mine))?)?;
    let overridden = container_images(&docs);
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

/// The image of every container, and the sidecar image the webhook injects (KMW_IMAGE).
fn container_images(docs: &[Value]) -> BTreeSet<String> {
    let mut images = BTreeSet::new();
    {
        for doc in docs {
            let spec = &doc["spec"]["template"]["spec"];
            for container in spec["containers"].as_array().into_iter().flatten() {
                images.insert(container["image"].as_str().unwrap_or("").to_owned());
                for env in container["env"].as_array().into_iter().flatten() {
                    if env["name"] == "KMW_IMAGE" {
                        images.insert(env["value"].as_str().unwrap_or("").to_owned());
                    }
                }
            }
        }
    }
    images
}

/// Metric names referenced by a PromQL expression: identifiers that are not functions,
/// keywords, label names in grouping clauses, label matchers, strings or durations.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "inf", "nan"];
    // Aggregations may put `by (...)` between their name and their argument.
    const AGGREGATIONS: &[&str] = &[
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "group",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
        "limitk",
        "limit_ratio",
    ];
    const GROUPING: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let skip_to = |from: usize, close: char| {
        chars[from..]
            .iter()
            .position(|&c| c == close)
            .map_or(chars.len(), |p| from + p + 1)
    };
    while let Some(&c) = chars.get(i) {
        match c {
            '"' | '\'' | '`' => i = skip_to(i + 1, c),
            '{' => i = skip_to(i + 1, '}'),
            '[' => i = skip_to(i + 1, ']'),
            '$' | '0'..='9' => {
                i += 1;
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
                {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut next = i;
                while chars.get(next).is_some_and(|c| c.is_whitespace()) {
                    next += 1;
                }
                let call = chars.get(next) == Some(&'(');
                if GROUPING.contains(&word.as_str()) {
                    if call {
                        i = skip_to(next + 1, ')');
                    }
                } else if !call
                    && !AGGREGATIONS.contains(&word.as_str())
                    && !KEYWORDS.contains(&word.to_lowercase().as_str())
                {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

#[test]
fn metric_names_are_extracted_from_promql() {
    let expr = r#"sum by (namespace, pod) (rate(a_total{kind=~"x|y"}[5m])) / on (pod) group_left (domain) b:c:sum
        or label_replace(c == 0, "process", "d|e", "", "") > 14 * 86400 and time() - 1e3 > $__x"#;
    let want: BTreeSet<String> = ["a_total", "b:c:sum", "c"].map(String::from).into();
    assert_eq!(metric_names(expr), want);
}

/// Every metric name docs/metrics.md lists, plus the webhook's.
fn documented_metrics() -> Result<BTreeSet<String>> {
    let doc = std::fs::read_to_string(repo().join("docs/metrics.md"))?;
    let mut names: BTreeSet<String> = doc
        .split('`')
        .filter(|w| w.starts_with("kubevirt_") || w.starts_with("kube_metrics_collector_"))
        .filter(|w| {
            w.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .map(String::from)
        .collect();
    ensure!(
        names.len() >= 15,
        "only {} metrics found in docs/metrics.md",
        names.len()
    );
    names.extend(WEBHOOK_METRICS.iter().map(|s| s.to_string()));
    Ok(names)
}

fn rendered_default() -> Result<Vec<Value>> {
    let yaml = run(Command::new("kubectl")
        .arg("kustomize")
        .arg(repo().join("manifests")))?;
    parse_documents(&yaml)
}

/// (alert or record name, expression) of every rule, and the recorded names.
fn rules(docs: &[Value]) -> Result<(Value, Vec<(String, String)>)> {
    let rule = of_kind(docs, "PrometheusRule");
    let spec = rule.first().context("no PrometheusRule")?["spec"].clone();
    let mut out = Vec::new();
    for group in spec["groups"].as_array().into_iter().flatten() {
        for rule in group["rules"].as_array().into_iter().flatten() {
            let name = rule["record"]
                .as_str()
                .or(rule["alert"].as_str())
                .unwrap_or("");
            out.push((
                name.to_owned(),
                rule["expr"].as_str().unwrap_or("").to_owned(),
            ));
        }
    }
    Ok((spec, out))
}

fn dashboard_queries(docs: &[Value]) -> Result<Vec<String>> {
    let maps = of_kind(docs, "ConfigMap");
    let map = maps
        .iter()
        .find(|m| m["metadata"]["labels"]["grafana_dashboard"] == "1")
        .context("no ConfigMap labelled grafana_dashboard: \"1\"")?;
    let json = map["data"]
        .as_object()
        .and_then(|d| d.values().next())
        .context("empty")?;
    let dashboard: Value = serde_json::from_str(json.as_str().unwrap_or(""))?;
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            queries.push(target["expr"].as_str().unwrap_or("").to_owned());
        }
    }
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        // label_values(metric{...}, label): the second argument is a label, not a metric.
        if let Some(query) = var["query"]["query"].as_str() {
            let metric = query.trim_start_matches("label_values(");
            queries.push(
                metric
                    .rsplit_once(',')
                    .map_or(metric, |(m, _)| m)
                    .to_owned(),
            );
        }
    }
    Ok(queries)
}

#[test]
fn rules_and_dashboard_use_only_documented_metrics() -> Result<()> {
    let docs = rendered_default()?;
    let (_, rules) = rules(&docs)?;
    let recorded: BTreeSet<&str> = rules
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| n.contains(':'))
        .collect();
    let known = documented_metrics()?;
    let queries = dashboard_queries(&docs)?;
    ensure!(
        queries.len() >= 10,
        "dashboard has {} queries",
        queries.len()
    );
    let mut used = BTreeSet::new();
    for expr in rules.iter().map(|(_, e)| e).chain(&queries) {
        for name in metric_names(expr) {
            ensure!(
                known.contains(&name) || recorded.contains(name.as_str()),
                "{name} (in `{expr}`) is neither documented nor recorded"
            );
            used.insert(name);
        }
    }
    for needed in [
        "kubevirt_vm:infra_memory_overhead_headroom_bytes:sum",
        "kubevirt_vm_process:memory_resident_bytes:sum",
        "kubevirt_vm_process:cpu_seconds:rate5m",
        "kubevirt_vm:infra_memory_resident_bytes:sum",
        "kubevirt_vm:infra_cpu_seconds:rate5m",
        "kubevirt_pod_infra_memory_overhead_estimate_bytes",
        "kube_metrics_webhook_certificate_expiry_timestamp_seconds",
    ] {
        ensure!(used.contains(needed), "nothing uses {needed}");
    }
    Ok(())
}

#[test]
fn rules_pass_promtool_check_and_unit_tests() -> Result<()> {
    let (spec, rules) = rules(&rendered_default()?)?;
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("rules.yaml"),
        serde_norway::to_string(&spec)?,
    )?;
    let tests = repo().join("manifests/components/monitoring/rules.test.yaml");
    let test_text = std::fs::read_to_string(&tests)?;
    std::fs::write(dir.path().join("rules.test.yaml"), &test_text)?;
    let checked = run(Command::new("promtool")
        .args(["check", "rules", "rules.yaml"])
        .current_dir(dir.path()))?;
    ensure!(
        checked.contains(&format!("SUCCESS: {} rules found", rules.len())),
        "{checked}"
    );
    let tested = run(Command::new("promtool")
        .args(["test", "rules", "rules.test.yaml"])
        .current_dir(dir.path()))?;
    ensure!(tested.contains("SUCCESS"), "{tested}");
    // Every alert is tested firing (with its labels) and not firing (`exp_alerts: []`).
    let runbooks = std::fs::read_to_string(repo().join("docs/runbooks.md"))?;
    let alerts = spec["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten());
    let mut count = 0;
    for alert in alerts.filter(|r| r["alert"].is_string()) {
        let name = alert["alert"].as_str().unwrap_or("");
        let cases = test_text.matches(&format!("alertname: {name}\n")).count();
        ensure!(cases >= 2, "{name}: {cases} test cases");
        let url = alert["annotations"]["runbook_url"].as_str().unwrap_or("");
        ensure!(
            url == format!("docs/runbooks.md#{}", name.to_lowercase()),
            "{name}: runbook_url {url}"
        );
        ensure!(
            runbooks.contains(&format!("\n## {name}\n")),
            "{name}: no runbook section"
        );
        count += 1;
    }
    ensure!(count == 5, "{count} alerts");
    Ok(())
}

#[test]
fn build_image_tags_the_image_the_manifests_reference() -> Result<()> {
    let script = std::fs::read_to_string(repo().join("scripts/build-image"))?;
    let component =
        std::fs::read_to_string(repo().join("manifests/components/image/kustomization.yaml"))?;
    let name = component
        .split("newName: ")
        .nth(1)
        .and_then(|s| s.lines().next())
        .context("newName")?;
    let tag = component
        .split("newTag: ")
        .nth(1)
        .and_then(|s| s.lines().next())
        .context("newTag")?;
    let image = format!("{name}:{}", tag.trim_matches('"'));
    ensure!(
        script.contains(&format!("IMAGE:-{image}}}")),
        "scripts/build-image does not default to {image}"
    );
    Ok(())
}

/// Every collector metric the rules and dashboard use that a collector prints without a
/// KubeVirt pod around it (no QEMU, no downward API files) is in its real `-M` output.
#[test]
fn real_collector_output_has_the_metrics_the_rules_use() -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    run(Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "kube-metrics-collector",
            "--bin",
            "kube-metrics-collector",
        ])
        .current_dir(repo()))?;
    let binary = repo().join("target/debug/kube-metrics-collector");
    let output = run(Command::new(binary).arg("-M"))?;
    let docs = rendered_default()?;
    let (_, rules) = rules(&docs)?;
    let exprs: Vec<String> = rules
        .into_iter()
        .map(|(_, e)| e)
        .chain(dashboard_queries(&docs)?)
        .collect();
    // Present only with QEMU, the downward API or KubeVirt v1.9 annotations.
    let conditional = [
        "kubevirt_pod_infra_qemu_thread_cpu_seconds_total",
        "kubevirt_pod_infra_memory_overhead_estimate_bytes",
        "kubevirt_pod_infra_compute_memory_bytes",
    ];
    let mut checked = 0;
    for name in exprs.iter().flat_map(|e| metric_names(e)) {
        if name.contains(':')
            || !name.starts_with("kube")
            || name.starts_with("kube_metrics_webhook_")
        {
            continue;
        }
        if conditional.contains(&name.as_str()) {
            continue;
        }
        let printed = |suffix: char| output.contains(&format!("\n{name}{suffix}"));
        ensure!(printed('{') || printed(' '), "`-M` printed no {name}");
        checked += 1;
    }
    ensure!(checked >= 4, "only {checked} metrics checked");
    Ok(())
}

/// The image pipeline end to end: static binaries, buildah, one `podman run ... -M`.
/// A cold release build takes about 7.5 minutes on 2 cores, so this is opt-in:
/// `cargo test -p e2e --test manifests -- --ignored`.
#[test]
#[ignore = "builds release binaries and an image: ~7.5 min cold on 2 cores"]
fn image_builds_and_prints_metrics() -> Result<()> {
    let output = run(&mut Command::new(repo().join("scripts/build-image")))?;
    ensure!(output.contains("build-image: ok"), "{output}");
    Ok(())
}
