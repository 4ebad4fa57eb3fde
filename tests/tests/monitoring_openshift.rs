//! The OpenShift variant's monitoring on user-workload monitoring (docs/openshift.md): its
//! PrometheusRule and its console dashboard are the default ones rewritten to read relayed series
//! from `exported_namespace`/`exported_pod` (`kube_metrics_contract::user_workload`), held to that
//! rewrite here (`UPDATE_GOLDEN=1` regenerates them). Needs `kubectl` (with kustomize) and `promtool`.

use anyhow::{Context as _, Result, ensure};
use e2e::manifests::{self, Rendered};
use e2e::user_workload::{self, CONSOLE_DASHBOARD, DEFAULT_RULE, OPENSHIFT_RULE};

fn read(path: &str) -> Result<String> {
    std::fs::read_to_string(e2e::workspace().join(path)).with_context(|| path.to_owned())
}

/// `path` holds `want`; with `UPDATE_GOLDEN=1` it is written first.
fn golden(path: &str, want: &str) -> Result<()> {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(e2e::workspace().join(path), want)?;
    }
    ensure!(
        read(path)? == want,
        "{path} is not the rewrite of its source; run UPDATE_GOLDEN=1 cargo test -p e2e --test monitoring_openshift"
    );
    Ok(())
}

#[test]
fn openshift_rule_is_the_default_one_rewritten() -> Result<()> {
    golden(
        OPENSHIFT_RULE,
        &user_workload::openshift_rule(&read(DEFAULT_RULE)?)?,
    )
}

#[test]
fn console_dashboard_queries_are_rewritten() -> Result<()> {
    golden(
        CONSOLE_DASHBOARD,
        &user_workload::console_dashboard(&read(CONSOLE_DASHBOARD)?)?,
    )
}

fn openshift() -> Result<&'static [serde_json::Value]> {
    Ok(&manifests::rendered()?
        .iter()
        .find(|r| r.variant == "overlays/openshift")
        .context("no openshift variant")?
        .docs)
}

/// Every rule the OpenShift variant installs reads the collector's families both ways, and only
/// that variant's do: the rewrite of each expression changes nothing more.
#[test]
fn only_the_openshift_variant_reads_exported_labels() -> Result<()> {
    for Rendered { variant, docs } in manifests::rendered()? {
        if manifests::of_kind(docs, "PrometheusRule").is_empty() {
            continue;
        }
        let (_, rules) = manifests::prometheus_rules(docs)?;
        let openshift = *variant == "overlays/openshift";
        let mut reading = 0;
        for (name, expr) in &rules {
            if openshift {
                ensure!(
                    user_workload::rewrite(expr)? == *expr,
                    "{name} is not rewritten"
                );
                reading += usize::from(expr.contains("exported_pod"));
            } else {
                ensure!(
                    !expr.contains("exported_"),
                    "{variant}: {name} reads exported_*"
                );
            }
        }
        // Every rule and alert of a VM's or a collector's; not the relay's and webhook's own.
        ensure!(
            !openshift || reading >= 17,
            "{variant}: {reading} rules read relayed series"
        );
    }
    let (spec, _) = manifests::prometheus_rules(openshift()?)?;
    let rule = manifests::of_kind(openshift()?, "PrometheusRule")[0];
    // Thanos Ruler evaluates a rule without this label, Prometheus alone one with it; only Thanos
    // Ruler sees KubeVirt's and cAdvisor's series, which platform monitoring scrapes.
    ensure!(
        rule["metadata"]["labels"]["openshift.io/prometheus-rule-evaluation-scope"].is_null(),
        "{}",
        rule["metadata"]
    );
    // Every group of the default rule, rewritten; none more, none left out.
    let (default, _) = manifests::prometheus_rules(manifests::default_install()?)?;
    let groups = |spec: &serde_json::Value| spec["groups"].as_array().map_or(0, Vec::len);
    ensure!(groups(&spec) == groups(&default) && groups(&spec) >= 2);
    Ok(())
}

/// `promtool test rules` of `tests` over `spec`: whether it passed, and promtool's output.
fn promtool_test(spec: &serde_json::Value, tests: &str) -> Result<(bool, String)> {
    let tested = e2e::prometheus::promtool_test_rules(spec, tests)?;
    Ok((tested.passed, tested.output))
}

/// The OpenShift rules' tests: its own cases (a relayed VM, a directly scraped one, and a tenant's
/// pod that writes another namespace's `namespace` and `pod` on its series), then every case of the
/// default install's tests with each pod's series reshaped as user-workload monitoring stores them,
/// generated below `GENERATED` (`UPDATE_GOLDEN=1` regenerates them).
const OPENSHIFT_TESTS: &str = "manifests/components/openshift-monitoring/rules.test.yaml";
const GENERATED: &str = "  # Generated below: every case of ../monitoring/rules.test.yaml, reshaped (tests/tests/monitoring_openshift.rs).\n";

#[test]
fn default_rule_tests_are_carried_over_reshaped() -> Result<()> {
    let text = read("manifests/components/monitoring/rules.test.yaml")?;
    let mut tests: serde_json::Value = serde_norway::from_str(&text)?;
    let relayed = user_workload::series::reshape(&mut tests)?;
    ensure!(relayed >= 100, "only {relayed} series relayed");
    let cases = serde_norway::to_string(&tests["tests"])?;
    let indented: String = cases.lines().map(|l| format!("  {l}\n")).collect();
    let current = read(OPENSHIFT_TESTS)?;
    let own = current.split(GENERATED).next().unwrap_or_default();
    golden(OPENSHIFT_TESTS, &format!("{own}{GENERATED}{indented}"))
}

/// The whole file passes with the OpenShift rules and fails with the default ones: forged
/// namespaces stay in the tenant's namespace, and every default case holds on reshaped series.
#[test]
fn openshift_rule_tests_pass_and_fail_without_the_rewrite() -> Result<()> {
    let tests = read(OPENSHIFT_TESTS)?;
    ensure!(
        tests.contains(GENERATED),
        "{OPENSHIFT_TESTS} has no generated cases"
    );
    let (spec, _) = manifests::prometheus_rules(openshift()?)?;
    let (passed, output) = promtool_test(&spec, &tests)?;
    ensure!(passed, "{output}");
    let (default_spec, _) = manifests::prometheus_rules(manifests::default_install()?)?;
    let (passed, output) = promtool_test(&default_spec, &tests)?;
    ensure!(!passed && output.contains("FAILED"), "{output}");
    Ok(())
}

/// In a VM namespace on OpenShift (docs/openshift.md, "Directly scraped VMs"): the install's
/// `direct` PodMonitor without its namespaceSelector, valid against the real CRD, and the
/// collector's port admitted from user-workload monitoring's namespace; the NetworkPolicies
/// otherwise those of the template it extends, valid for Kubernetes.
#[test]
fn vm_namespace_templates_bring_a_direct_pod_monitor_on_openshift() -> Result<()> {
    let named = |docs: &'static [serde_json::Value], kind: &str, name: &str| {
        manifests::of_kind(docs, kind)
            .into_iter()
            .find(|d| d["metadata"]["name"] == name)
            .cloned()
            .with_context(|| format!("no {kind} {name}"))
    };
    let mut want = named(
        manifests::default_install()?,
        "PodMonitor",
        "kube-metrics-collector-direct",
    )?["spec"]
        .clone();
    want.as_object_mut()
        .and_then(|spec| spec.remove("namespaceSelector"))
        .context("the install's direct PodMonitor has no namespaceSelector")?;
    let root = e2e::workspace().join("manifests/namespace-policy");
    for (template, base, policies) in [
        ("openshift-isolated", "isolated", 1),
        ("openshift-not-isolated", "not-isolated", 2),
    ] {
        let docs = manifests::kustomize(&root.join(template)).context(template)?;
        let monitors = manifests::of_kind(&docs, "PodMonitor");
        let [monitor] = monitors.as_slice() else {
            anyhow::bail!("{template}: {} PodMonitors", monitors.len());
        };
        ensure!(monitor["spec"] == want, "{template}: {}", monitor["spec"]);
        // `kubectl apply -n` places it.
        ensure!(monitor["metadata"]["namespace"].is_null());
        ensure!(e2e::crd::validate(&docs)? == 1, "{template}");
        let mut core: Vec<(String, &serde_json::Value)> = Vec::new();
        let expected = manifests::kustomize(&root.join(base))?;
        let found = manifests::of_kind(&docs, "NetworkPolicy");
        ensure!(
            found.len() == policies,
            "{template}: {} policies",
            found.len()
        );
        for policy in found {
            let name = policy["metadata"]["name"].as_str().unwrap_or_default();
            let mut wanted = expected
                .iter()
                .find(|d| d["metadata"]["name"] == name)
                .cloned()
                .with_context(|| format!("{template}: {name} not in {base}"))?;
            if name == "kube-metrics-collector-from-monitoring" {
                wanted["spec"]["ingress"][0]["from"][0]["namespaceSelector"] = serde_json::json!(
                    {"matchLabels": {"kubernetes.io/metadata.name": "openshift-user-workload-monitoring"}}
                );
            }
            ensure!(*policy == wanted, "{template}: {policy}");
            core.push((format!("{template}-{name}"), policy));
        }
        manifests::kubernetes_validate(&core)?;
    }
    Ok(())
}
