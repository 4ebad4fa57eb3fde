//! The manifests of a release as `scripts/release` renders them, held against release 0.1.0's
//! (`tests/fixtures/release-0.1.0/`) for an upgrade, and against the README's uninstall and
//! injection off switch. `kubectl kustomize` renders, `kubectl patch --local` applies the README's
//! patch; no API server runs here, so what one refuses on update is the table in
//! `e2e::release::immutable_fields`.

use anyhow::{Context as _, Result, ensure};
use e2e::manifests::{self, NAMESPACE, kind, of_kind};
use e2e::release::{self, REPOSITORY, VARIANTS};
use kube_metrics_contract::{build::VERSION, pod};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Stands for the archived image's digest, which the manifests only copy.
const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// The release every later one is held against.
const FIRST: &str = "0.1.0";
/// 0.1.0's certgen Job, named before releases named theirs: the README's upgrade deletes it.
const FIRST_CERTGEN_JOB: &str = "Job.batch kube-metrics-collector/kube-metrics-webhook-certgen";

fn rendered() -> Result<Vec<(&'static str, &'static str, Vec<Value>)>> {
    VARIANTS
        .iter()
        .map(|(variant, stem)| Ok((*variant, *stem, release::render(variant, VERSION, DIGEST)?)))
        .collect()
}

fn readme() -> Result<String> {
    Ok(std::fs::read_to_string(e2e::workspace().join("README.md"))?)
}

#[test]
fn the_relay_the_webhook_and_the_sidecar_it_injects_name_one_digest() -> Result<()> {
    let pinned = format!("{REPOSITORY}@{DIGEST}");
    for (variant, _, docs) in rendered()? {
        let images = manifests::container_images(&docs);
        ensure!(
            images == BTreeSet::from([pinned.clone()]),
            "{variant}: {images:?}"
        );
        // Named one by one, so that a container the collection above missed cannot hide.
        let relay = of_kind(&docs, "DaemonSet")
            .into_iter()
            .find(|d| d["metadata"]["name"] == "kube-metrics-collector-relay")
            .context("no relay")?;
        let webhook = of_kind(&docs, "Deployment");
        let webhook =
            &webhook.first().context("no webhook")?["spec"]["template"]["spec"]["containers"][0];
        let sidecar = webhook["env"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["name"] == "KMW_IMAGE")
            .context("no KMW_IMAGE")?;
        let relay_image = &relay["spec"]["template"]["spec"]["containers"][0]["image"];
        ensure!(relay_image == &sidecar["value"] && relay_image == &webhook["image"]);
        ensure!(relay_image == &Value::from(pinned.as_str()), "{variant}");
        for job in of_kind(&docs, "Job") {
            ensure!(
                job["metadata"]["name"] == format!("kube-metrics-webhook-certgen-{VERSION}"),
                "{variant}: {}",
                job["metadata"]["name"]
            );
        }
    }
    Ok(())
}

#[test]
fn scripts_release_ships_exactly_these_variants() -> Result<()> {
    let script = std::fs::read_to_string(e2e::workspace().join("scripts/release"))?;
    let list = script
        .split("VARIANTS=(")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .context("no VARIANTS=( in scripts/release")?;
    let shipped: BTreeSet<&str> = list.split_whitespace().collect();
    let held: BTreeSet<&str> = VARIANTS.iter().map(|(variant, _)| *variant).collect();
    ensure!(
        shipped == held,
        "scripts/release: {shipped:?}, here: {held:?}"
    );
    Ok(())
}

#[test]
fn upgrading_from_0_1_0_changes_no_immutable_field() -> Result<()> {
    let mut held = 0;
    for (variant, stem, new) in rendered()? {
        let Ok(old) = release::fixture(FIRST, stem) else {
            // A variant 0.1.0 did not have: nothing to upgrade from.
            ensure!(
                stem == "certgen-minimal",
                "no {FIRST} fixture for {variant}"
            );
            continue;
        };
        held += 1;
        let changes = release::immutable_changes(&old, &new);
        ensure!(changes.is_empty(), "{variant}: {changes:#?}");
        // 0.1.0's certgen Job is the only object left behind, and the README deletes it.
        let left = release::left_behind(&old, &new);
        let want: BTreeSet<String> = if of_kind(&old, "Job").is_empty() {
            BTreeSet::new()
        } else {
            BTreeSet::from([FIRST_CERTGEN_JOB.to_owned()])
        };
        ensure!(left == want, "{variant}: left behind {left:#?}");
        // Launcher pods that 0.1.0 injected keep their metrics: the relay reads the same host
        // paths, and every PodMonitor selects and scrapes the pods as before.
        for (kind_name, pointer) in [
            ("DaemonSet", "/spec/template/spec/volumes"),
            ("PodMonitor", "/spec/selector"),
            ("PodMonitor", "/spec/podMetricsEndpoints"),
        ] {
            for before in of_kind(&old, kind_name) {
                let id = release::identity(before);
                let after = new
                    .iter()
                    .find(|d| release::identity(d) == id)
                    .with_context(|| format!("{variant}: {id} is gone"))?;
                ensure!(
                    before.pointer(pointer) == after.pointer(pointer),
                    "{variant}: {id} {pointer} changed"
                );
            }
        }
    }
    ensure!(held == VARIANTS.len() - 1, "held {held} variants");
    ensure!(
        readme()?.contains("kubectl -n kube-metrics-collector delete job kube-metrics-webhook-certgen --ignore-not-found"),
        "the README's upgrade does not delete 0.1.0's certgen Job"
    );
    Ok(())
}

/// The webhook configurations the README's uninstall deletes before anything else.
fn deleted_first(readme: &str) -> BTreeSet<String> {
    readme
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("kubectl delete mutatingwebhookconfiguration ")
        })
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn uninstalling_as_the_readme_says_leaves_nothing_that_fails_pod_creation() -> Result<()> {
    let first = deleted_first(&readme()?);
    ensure!(
        !first.is_empty(),
        "the README's uninstall deletes no webhook configuration first"
    );
    let mut all = rendered()?;
    for (_, stem) in VARIANTS {
        if let Ok(docs) = release::fixture(FIRST, stem) {
            all.push(("0.1.0", stem, docs));
        }
    }
    for (variant, stem, docs) in all {
        let hazards = release::uninstall_hazards(&docs, &first);
        ensure!(hazards.is_empty(), "{variant} {stem}: {hazards:#?}");
        // What certgen and cert-manager make while running (the Secrets, the caBundle) goes with
        // the file's objects: the caBundle lives in the configuration deleted first, the Secrets
        // in a namespace the file deletes.
        let namespaces: BTreeSet<&str> = of_kind(&docs, "Namespace")
            .iter()
            .filter_map(|n| n["metadata"]["name"].as_str())
            .collect();
        let made_in = ["Job", "Certificate", "Deployment", "Service"];
        for doc in docs.iter().filter(|d| made_in.contains(&kind(d))) {
            let ns = doc["metadata"]["namespace"].as_str().unwrap_or("");
            ensure!(
                namespaces.contains(ns),
                "{variant} {stem}: {} in {ns}",
                release::identity(doc)
            );
        }
        for job in of_kind(&docs, "Job") {
            let args = &job["spec"]["template"]["spec"]["containers"][0]["args"];
            let args: Vec<&str> = args
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let config = args
                .windows(2)
                .find(|w| w[0] == "--webhook-config")
                .map(|w| w[1])
                .context("certgen without --webhook-config")?;
            ensure!(
                first.contains(config),
                "{variant}: certgen patches {config}"
            );
        }
    }
    Ok(())
}

/// Nothing of a first install warns: the namespace's PodSecurity `warn` level is the one it
/// enforces, and the webhook's Secret volume is optional, so its pods start (not ready) before the
/// Secret exists instead of piling up FailedMount events.
#[test]
fn a_first_install_prints_no_warning() -> Result<()> {
    for (variant, _, docs) in rendered()? {
        for deployment in of_kind(&docs, "Deployment") {
            let volumes = &deployment["spec"]["template"]["spec"]["volumes"];
            for volume in volumes.as_array().into_iter().flatten() {
                if let Some(secret) = volume.get("secret") {
                    ensure!(secret["optional"] == true, "{variant}: {volume}");
                }
            }
        }
        for namespace in of_kind(&docs, "Namespace") {
            let labels = &namespace["metadata"]["labels"];
            let level = |mode: &str| labels[format!("pod-security.kubernetes.io/{mode}")].clone();
            // A `warn` stricter than `enforce` warns on every apply about pods that are admitted.
            ensure!(
                level("warn") == level("enforce") && level("enforce") != Value::Null,
                "{variant}: {labels}"
            );
            ensure!(namespace["metadata"]["name"] == NAMESPACE);
        }
    }
    Ok(())
}

#[test]
fn the_readmes_off_switch_stops_injection_in_every_namespace() -> Result<()> {
    const COMMAND: &str =
        "kubectl patch mutatingwebhookconfiguration kube-metrics-collector --type=json -p '";
    let readme = readme()?;
    let patch = readme
        .lines()
        .find_map(|l| l.trim().strip_prefix(COMMAND))
        .and_then(|rest| rest.split('\'').next())
        .context("no off switch in the README")?;
    let dir = tempfile::tempdir()?;
    for (variant, _, docs) in rendered()? {
        let config = of_kind(&docs, "MutatingWebhookConfiguration");
        let file = dir.path().join("config.json");
        std::fs::write(
            &file,
            serde_json::to_vec(config.first().context("no configuration")?)?,
        )?;
        let output = e2e::process::output(
            Command::new("kubectl")
                .args([
                    "patch",
                    "--local",
                    "-o",
                    "json",
                    "--type=json",
                    "-p",
                    patch,
                    "-f",
                ])
                .arg(&file),
        )?;
        let patched: Value = serde_json::from_slice(&output.stdout)?;
        for hook in patched["webhooks"].as_array().into_iter().flatten() {
            let wanted = &hook["namespaceSelector"]["matchLabels"][pod::INJECT];
            ensure!(
                wanted.is_string() && wanted != pod::INJECT_ENABLED,
                "{variant}: {} still selects {wanted}",
                hook["name"]
            );
        }
    }
    Ok(())
}

#[test]
fn scripts_release_refuses_a_version_the_binaries_would_not_report() -> Result<()> {
    // It checks before building anything, so this costs no build.
    let output = Command::new(e2e::workspace().join("scripts/release"))
        .arg("9.9.9")
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(
        !output.status.success()
            && stderr.contains(&format!("9.9.9 is not the workspace version {VERSION}")),
        "{output:?}"
    );
    // The workspace's own version has its CHANGELOG section, so CI's release can run.
    let changelog = std::fs::read_to_string(e2e::workspace().join("CHANGELOG.md"))?;
    ensure!(
        changelog.lines().any(|l| l == format!("## {VERSION}")),
        "CHANGELOG.md has no '## {VERSION}'"
    );
    Ok(())
}

/// 0.1.0's alerts as clusters run them: every variant's PrometheusRule passes the copy of 0.1.0's
/// own promtool tests beside it, and each alert is there firing and silent (two cases at least).
#[test]
fn the_0_1_0_alerts_pass_their_own_unit_tests() -> Result<()> {
    let mut variants = 0;
    // promtool takes seconds a run: each distinct rule file and tests once (0.1.0 shipped one, and
    // the copies of its tests differ in their header only, which ends at the first lone `#`).
    let mut runs = BTreeMap::new();
    for (_, stem) in VARIANTS {
        let Ok(docs) = release::fixture(FIRST, stem) else {
            continue;
        };
        if of_kind(&docs, "PrometheusRule").is_empty() {
            continue;
        }
        let path = release::fixture_dir(FIRST, stem).join("rules.test.yaml");
        let tests = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
        let (spec, _) = manifests::prometheus_rules(&docs)?;
        let alerts: Vec<&str> = e2e::alerting::alerts(&spec)
            .filter_map(|r| r["alert"].as_str())
            .collect();
        ensure!(alerts.len() == 14, "{stem}: {} alerts", alerts.len());
        for alert in &alerts {
            let cases = e2e::alerting::test_cases(&tests, alert);
            ensure!(cases >= 2, "{stem}: {alert} has {cases} test cases");
        }
        let body = tests
            .split_once("\n#\n")
            .map_or("", |(_, body)| body)
            .to_owned();
        runs.entry((serde_norway::to_string(&spec)?, body))
            .or_insert((spec, tests));
        variants += 1;
    }
    ensure!(variants == 5, "{variants} variants with alerts");
    ensure!(
        runs.len() == 1,
        "{} distinct rule files or tests",
        runs.len()
    );
    for (spec, tests) in runs.values() {
        let tested = e2e::prometheus::promtool_test_rules(spec, tests)?;
        ensure!(tested.passed, "{}", tested.output);
    }
    Ok(())
}
