//! `certgen` cluster mode when things go wrong, against the fake Kubernetes API server on
//! 127.0.0.1 (`certgen_scenario/`), which stands in for a real API server because none can run here
//! (no cluster, no kube-apiserver on this machine): a missing or empty webhook configuration,
//! 403 and 500 answers, and the binary's exit status as the certgen Job would see it.
mod certgen_scenario;

use certgen_scenario::*;
use http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn missing_or_empty_configuration_is_a_clear_error() {
    let api = start();
    let error = format!("{:#}", apply(&api).await.unwrap_err());
    assert!(
        error.starts_with("failed to get MutatingWebhookConfiguration kmw: "),
        "{error}"
    );
    assert!(
        error.ends_with(
            "the API server answered 404 NotFound: \
             mutatingwebhookconfigurations.admissionregistration.k8s.io \"kmw\" not found"
        ),
        "{error}"
    );
    // The Secret is made first on purpose: the webhook Deployment mounts it whatever the
    // configuration's state, and a re-run (the Job retries) reuses it.
    assert_eq!(
        api.calls(),
        calls(&[
            (&Method::GET, SECRET),
            (&Method::POST, SECRETS),
            (&Method::GET, CONFIG)
        ])
    );

    let mut empty = webhook_config([None, None]);
    empty["webhooks"] = json!([]);
    api.seed(CONFIGS, empty);
    let error = format!("{:#}", apply(&api).await.unwrap_err());
    assert_eq!(error, "MutatingWebhookConfiguration kmw has no webhooks");
}

#[tokio::test]
async fn api_errors_fail_with_what_was_being_done() {
    let cases = [
        (
            (Method::GET, SECRET, StatusCode::FORBIDDEN, None),
            "failed to get Secret ns-0/kmw-tls: the API server answered 403 Forbidden: ",
            1,
        ),
        (
            (
                Method::POST,
                SECRETS,
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
            ),
            "failed to write Secret ns-0/kmw-tls: the API server answered 500 InternalError: ",
            2,
        ),
        (
            // A proxy in the way answers text, not a Status; kube names that reason.
            (
                Method::GET,
                CONFIG,
                StatusCode::INTERNAL_SERVER_ERROR,
                Some("upstream connect error"),
            ),
            "failed to get MutatingWebhookConfiguration kmw: the API server answered 500 Failed to parse error data: ",
            3,
        ),
        (
            (Method::PATCH, CONFIG, StatusCode::FORBIDDEN, None),
            "failed to patch caBundle of kmw: the API server answered 403 Forbidden: ",
            4,
        ),
    ];
    for ((method, path, code, text), want, requests) in cases {
        let api = start();
        api.seed(CONFIGS, webhook_config([None, None]));
        api.answer(method.clone(), path, injected(code, text));
        let error = format!("{:#}", apply(&api).await.unwrap_err());
        let case = format!("{method} {path} -> {code}");
        assert_eq!(
            error,
            format!("{want}{}", text.unwrap_or(INJECTED)),
            "{case}"
        );
        assert_eq!(
            api.calls().len(),
            requests,
            "{case}: no retry of a final error"
        );
    }
}

/// The binary, as the Job runs it, with a kubeconfig naming the fake: a missing configuration
/// exits non-zero with the reason on stderr; once it exists, a re-run succeeds.
#[tokio::test]
async fn binary_exits_non_zero_until_the_configuration_exists() {
    let api = start();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.write_kubeconfig(dir.path(), None).unwrap();
    let run = || {
        let kubeconfig = kubeconfig.clone();
        // Waiting on a process blocks: off the test's async runtime.
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_kube-metrics-webhook"))
                .args(["certgen", "--service", SERVICE, "--namespace", NS])
                .args(["--secret", "kmw-tls", "--webhook-config", "kmw"])
                .env_remove("KUBERNETES_SERVICE_HOST")
                .env("KUBECONFIG", kubeconfig)
                .output()
                .unwrap()
        })
    };

    let failed = run().await.unwrap();
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "kube-metrics-webhook: failed to get MutatingWebhookConfiguration kmw: \
             the API server answered 404 NotFound: \
             mutatingwebhookconfigurations.admissionregistration.k8s.io \"kmw\" not found\n"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    api.seed(CONFIGS, webhook_config([None, None]));
    let done = run().await.unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let bundle = assert_usable_secret(&api);
    assert_eq!(
        split_bundles(&api).1,
        [Some(b64(&bundle.ca_pem)), Some(b64(&bundle.ca_pem))]
    );
    let posts = api.calls().iter().filter(|c| c.starts_with("POST")).count();
    assert_eq!(posts, 1, "the second run reused the Secret");
}
