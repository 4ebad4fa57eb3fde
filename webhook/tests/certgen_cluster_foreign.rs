//! `certgen` cluster mode touches only what is its own, against the fake Kubernetes API server on
//! 127.0.0.1 (`certgen_scenario/`; it stands in for kube-apiserver, which cannot run here): a Secret of its name that it did
//! not create (unlabelled, someone else's, a service-account token) or a webhook configuration of
//! its name that calls another Service is refused with a clear error and left as it was; its own
//! Secret whose CA expired is renewed, keeping what others added to it; and whatever it writes is
//! a `kubernetes.io/tls` Secret.
mod certgen_scenario;

use certgen_scenario::*;
use http::Method;
use k8s_openapi::ByteString;
use kube_metrics_fake_api::FakeApi;
use kube_metrics_webhook::certgen::{self, Bundle, cluster};
use serde_json::{Value, json};

/// A valid pair for our names, in a Secret certgen would have written.
fn our_secret() -> (Bundle, k8s_openapi::api::core::v1::Secret) {
    let bundle = certgen::generate(&dns(), VALIDITY).unwrap();
    let secret = cluster::secret(&names(), &bundle);
    (bundle, secret)
}

/// Every Secret certgen sent is of type kubernetes.io/tls and carries its label.
fn assert_writes_only_tls_secrets(api: &FakeApi) {
    for request in api
        .requests()
        .iter()
        .filter(|r| matches!(r.method, Method::POST | Method::PUT))
    {
        let body = request.json().expect("a JSON body");
        assert_eq!(body["type"], "kubernetes.io/tls", "{body}");
        assert_eq!(
            body["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            cluster::MANAGER,
            "{body}"
        );
    }
}

#[tokio::test]
async fn foreign_secrets_are_refused_and_left_alone() {
    let (_, valid) = our_secret();
    let mut unlabelled = valid.clone();
    unlabelled.metadata.labels = None;
    let mut helm = valid.clone();
    helm.metadata.labels = Some(
        [("app.kubernetes.io/managed-by".to_owned(), "Helm".to_owned())]
            .into_iter()
            .collect(),
    );
    let mut token = valid.clone();
    token.type_ = Some("kubernetes.io/service-account-token".into());
    token.data = Some(
        [("token".to_owned(), ByteString(b"eyJ".to_vec()))]
            .into_iter()
            .collect(),
    );
    let cases = [
        (unlabelled, "it has no label app.kubernetes.io/managed-by"),
        (helm, "it is managed by \"Helm\""),
        (
            token,
            "its type is kubernetes.io/service-account-token, not kubernetes.io/tls",
        ),
    ];
    for (secret, why) in cases {
        let api = start();
        seed_secret(&api, &secret);
        api.seed(CONFIGS, webhook_config([None, None]));
        let before = api.objects(SECRETS);
        let config_before = api.objects(CONFIGS);

        let error = format!("{:#}", apply(&api).await.unwrap_err());

        assert_eq!(
            error,
            format!(
                "refusing to touch Secret ns-0/kmw-tls: {why}; certgen changes only the Secret it created (labelled app.kubernetes.io/managed-by=kube-metrics-webhook-certgen, type kubernetes.io/tls): delete it if it is a leftover, or pass another --secret"
            )
        );
        assert_eq!(api.calls(), calls(&[(&Method::GET, SECRET)]), "{why}");
        assert_eq!(
            api.objects(SECRETS),
            before,
            "{why}: the Secret was changed"
        );
        assert_eq!(
            api.objects(CONFIGS),
            config_before,
            "{why}: its CA was published"
        );
    }
}

#[tokio::test]
async fn a_foreign_webhook_configuration_is_refused_and_left_alone() {
    let other_service = |mut config: Value| {
        config["webhooks"][1]["clientConfig"]["service"]["name"] = json!("other-product");
        config
    };
    let url = |mut config: Value| {
        config["webhooks"][0]["clientConfig"] = json!({"url": "https://elsewhere.example/mutate"});
        config
    };
    let unlabelled = |mut config: Value| {
        config["metadata"]["labels"] = json!({"app.kubernetes.io/name": "other-product"});
        config
    };
    type Edit = fn(Value) -> Value;
    let cases: [(Edit, &str); 3] = [
        (
            other_service,
            "webhook second.kube-metrics-collector.io calls Service ns-0/other-product",
        ),
        (url, "webhook inject.kube-metrics-collector.io calls a URL"),
        (
            unlabelled,
            "it has no label app.kubernetes.io/name=kube-metrics-webhook",
        ),
    ];
    for (edit, why) in cases {
        let api = start();
        api.seed(CONFIGS, edit(webhook_config([None, None])));
        let before = api.objects(CONFIGS);

        let error = format!("{:#}", apply(&api).await.unwrap_err());

        assert_eq!(
            error,
            format!(
                "refusing to patch MutatingWebhookConfiguration kmw: {why}; certgen sets the caBundle only of a configuration labelled app.kubernetes.io/name=kube-metrics-webhook whose every webhook calls Service ns-0/kmw: pass the right --webhook-config"
            )
        );
        assert!(
            !api.calls().iter().any(|c| c.starts_with("PATCH")),
            "{why}: {:?}",
            api.calls()
        );
        assert_eq!(api.objects(CONFIGS), before, "{why}");
        assert_writes_only_tls_secrets(&api);
    }
}

/// Our Secret whose CA expired (the leaf still valid for a year) is renewed in place, and the
/// caBundle follows; labels and annotations others added to it stay.
#[tokio::test]
async fn an_expired_ca_is_renewed() {
    let api = start();
    let old = expired_ca_bundle();
    let mut secret = cluster::secret(&names(), &old);
    secret
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("team".into(), "platform".into());
    secret.metadata.annotations = Some(
        [("note".to_owned(), "kept".to_owned())]
            .into_iter()
            .collect(),
    );
    seed_secret(&api, &secret);
    let old_b64 = b64(&old.ca_pem);
    api.seed(
        CONFIGS,
        webhook_config([old_b64.as_str(), old_b64.as_str()]),
    );

    apply(&api).await.unwrap();

    assert_eq!(
        api.calls(),
        calls(&[
            (&Method::GET, SECRET),
            (&Method::PUT, SECRET),
            (&Method::GET, CONFIG),
            (&Method::PATCH, CONFIG),
        ])
    );
    let new = assert_usable_secret(&api);
    assert_ne!(new.ca_pem, old.ca_pem);
    assert_eq!(
        split_bundles(&api).1,
        [Some(b64(&new.ca_pem)), Some(b64(&new.ca_pem))]
    );
    let stored = stored_secret(&api).unwrap();
    assert_eq!(stored.metadata.labels.unwrap()["team"], "platform");
    assert_eq!(stored.metadata.annotations.unwrap()["note"], "kept");
    assert_writes_only_tls_secrets(&api);
}

/// Whatever certgen creates is a kubernetes.io/tls Secret with its label.
#[tokio::test]
async fn it_creates_only_tls_secrets() {
    let api = start();
    api.seed(CONFIGS, webhook_config([None, None]));
    apply(&api).await.unwrap();
    assert_writes_only_tls_secrets(&api);
    assert_usable_secret(&api);
}

/// A year's leaf under a CA that expired yesterday.
fn expired_ca_bundle() -> Bundle {
    let now = time::OffsetDateTime::now_utc();
    let day = time::Duration::days(1);
    certgen::issue(
        &dns(),
        now - day * 400..now - day,
        now - day..now + day * 365,
    )
    .unwrap()
}
