//! What the certgen scenarios share: the fake Kubernetes API server they run against (it stands in
//! for kube-apiserver, because none can run here), the names, a webhook configuration shaped like
//! the shipped one, and the assertions every run must pass.
#![allow(dead_code)] // Not every scenario uses every helper.

use std::time::Duration;

use http::{Method, StatusCode};
use k8s_openapi::api::{admissionregistration::v1::MutatingWebhookConfiguration, core::v1::Secret};
use kube_metrics_fake_api::{Answer, FakeApi};
use kube_metrics_webhook::{
    certgen::{
        self, Bundle, CA_CRT, TLS_CRT, TLS_KEY,
        cluster::{self, Names, SecretPlan},
    },
    tls,
};
use serde_json::{Value, json};

pub const NS: &str = "ns-0";
pub const SERVICE: &str = "kmw";
pub const SECRET: &str = "/api/v1/namespaces/ns-0/secrets/kmw-tls";
pub const SECRETS: &str = "/api/v1/namespaces/ns-0/secrets";
pub const CONFIGS: &str = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";
pub const CONFIG: &str = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/kmw";
/// The message of a failure the test injects.
pub const INJECTED: &str = "injected by the test";
pub const DAY: Duration = Duration::from_secs(86_400);
pub const VALIDITY: Duration = Duration::from_secs(365 * 86_400);

/// The fake API server (standing in for kube-apiserver, which cannot run here), serving the
/// Secrets of [`NS`] and the webhook configurations, both empty, with the validation
/// kube-apiserver gives them that certgen could trip on.
pub fn start() -> FakeApi {
    let api = FakeApi::start().unwrap();
    api.set(SECRETS, Vec::new());
    api.set(CONFIGS, Vec::new());
    api.validate(SECRETS, |new, old| {
        if !is_valid_secret(new) {
            return Err("not a valid kubernetes.io/tls Secret".into());
        }
        match old {
            Some(old) if old.get("type") != new.get("type") => {
                Err("type: field is immutable".into())
            }
            _ => Ok(()),
        }
    });
    api.validate(CONFIGS, |new, _| {
        serde_json::from_value::<MutatingWebhookConfiguration>(new.clone())
            .map(drop)
            .map_err(|error| format!("not a MutatingWebhookConfiguration: {error}"))
    });
    api
}

/// A Secret as kube-apiserver accepts it: a `kubernetes.io/tls` one carries `tls.crt` and
/// `tls.key`.
fn is_valid_secret(value: &Value) -> bool {
    let Ok(secret) = serde_json::from_value::<Secret>(value.clone()) else {
        return false;
    };
    let data = secret.data.unwrap_or_default();
    let tls = data.contains_key(TLS_CRT) && data.contains_key(TLS_KEY);
    secret.type_.as_deref() != Some("kubernetes.io/tls") || tls
}

/// A failure answered to a request the test picks: a `Status`, or with `text`, that as plain text
/// (a proxy in the way).
pub fn injected(code: StatusCode, text: Option<&str>) -> Answer {
    match text {
        Some(text) => Answer::text(code, text.to_owned()),
        None => Answer::status(code, INJECTED),
    }
}

/// Stores `secret` as if it had been created earlier.
pub fn seed_secret(api: &FakeApi, secret: &Secret) {
    api.seed(SECRETS, serde_json::to_value(secret).unwrap());
}

/// The stored Secret, if any.
pub fn stored_secret(api: &FakeApi) -> Option<Secret> {
    let value = api.object(SECRET)?;
    Some(serde_json::from_value(value).unwrap())
}

pub fn names() -> Names {
    Names {
        namespace: NS.into(),
        secret: "kmw-tls".into(),
        webhook_config: "kmw".into(),
        service: SERVICE.into(),
    }
}

pub fn dns() -> Vec<String> {
    certgen::dns_names(SERVICE, NS)
}

pub fn calls(list: &[(&Method, &str)]) -> Vec<String> {
    list.iter().map(|(m, p)| format!("{m} {p}")).collect()
}

/// Two webhooks shaped like `manifests/base/mutatingwebhookconfiguration.yaml`; `ca` is the
/// caBundle each starts with (base64, as on the wire).
pub fn webhook_config(ca: [Option<&str>; 2]) -> Value {
    let hook = |name: &str, ca: Option<&str>| {
        let mut client_config =
            json!({"service": {"name": "kmw", "namespace": NS, "path": "/mutate", "port": 443}});
        if let Some(ca) = ca {
            client_config["caBundle"] = json!(ca);
        }
        json!({
            "name": name, "admissionReviewVersions": ["v1"], "clientConfig": client_config,
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["pods"], "scope": "Namespaced"}],
            "namespaceSelector": {"matchLabels": {(kube_metrics_contract::pod::INJECT): kube_metrics_contract::pod::INJECT_ENABLED}},
            "objectSelector": {"matchLabels": {"kubevirt.io": "virt-launcher"}},
            "matchPolicy": "Equivalent", "sideEffects": "None", "failurePolicy": "Ignore",
            "timeoutSeconds": 5, "reinvocationPolicy": "Never",
        })
    };
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "kmw", "labels": {"app.kubernetes.io/name": "kube-metrics-webhook"}},
        "webhooks": [hook("inject.kube-metrics-collector.io", ca[0]), hook("second.kube-metrics-collector.io", ca[1])],
    })
}

/// The stored configuration's webhooks with caBundle taken out, and the caBundles.
pub fn split_bundles(api: &FakeApi) -> (Value, Vec<Option<Value>>) {
    let mut webhooks = api.object(CONFIG).unwrap()["webhooks"].clone();
    let bundles = webhooks
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .map(|w| {
            w["clientConfig"]
                .as_object_mut()
                .unwrap()
                .remove("caBundle")
        })
        .collect();
    (webhooks, bundles)
}

pub fn b64(pem: &str) -> Value {
    serde_json::to_value(k8s_openapi::ByteString(pem.as_bytes().to_vec())).unwrap()
}

pub fn bundle_of(secret: &Secret) -> Bundle {
    let data = secret.data.as_ref().unwrap();
    let text = |key: &str| String::from_utf8(data[key].0.clone()).unwrap();
    Bundle {
        ca_pem: text(CA_CRT),
        cert_pem: text(TLS_CRT),
        key_pem: text(TLS_KEY),
    }
}

pub async fn apply(api: &FakeApi) -> anyhow::Result<()> {
    cluster::apply(api.client().unwrap(), &names(), &dns(), VALIDITY).await
}

/// Asserts the Secret holds a pair certgen would reuse, and returns it.
pub fn assert_usable_secret(api: &FakeApi) -> Bundle {
    let secret = stored_secret(api).expect("the Secret exists");
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let keys: Vec<_> = secret.data.clone().unwrap().into_keys().collect();
    assert_eq!(keys, [CA_CRT, TLS_CRT, TLS_KEY]);
    let bundle = bundle_of(&secret);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let plan = cluster::plan_secret(Some(&secret), &dns(), now);
    assert_eq!(
        plan,
        SecretPlan::Reuse {
            ca_pem: bundle.ca_pem.clone()
        }
    );
    assert_eq!(
        tls::inspect_pem(bundle.cert_pem.as_bytes())
            .unwrap()
            .dns_names,
        dns()
    );
    bundle
}

/// Asserts every PATCH was a JSON Patch of `test` name / `add` caBundle pairs and nothing else.
pub fn assert_patches_touch_only_ca_bundles(api: &FakeApi) {
    let requests = api.requests();
    let patches: Vec<_> = requests
        .iter()
        .filter(|r| r.method == Method::PATCH)
        .collect();
    assert!(!patches.is_empty());
    for patch in patches {
        assert_eq!(patch.content_type(), "application/json-patch+json");
        assert_eq!(patch.query, "&fieldManager=kube-metrics-webhook-certgen");
        let body = patch.json();
        let ops = body
            .as_ref()
            .and_then(Value::as_array)
            .expect("a JSON Patch array");
        for pair in ops.chunks(2) {
            let [test, add] = pair else {
                panic!("unpaired op: {ops:?}")
            };
            let index = test["path"].as_str().unwrap().split('/').nth(2).unwrap();
            assert_eq!(test["op"], "test", "{ops:?}");
            assert_eq!(test["path"], format!("/webhooks/{index}/name"));
            assert_eq!(add["op"], "add", "{ops:?}");
            assert_eq!(
                add["path"],
                format!("/webhooks/{index}/clientConfig/caBundle")
            );
        }
    }
}
