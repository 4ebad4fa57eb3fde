//! Pure decisions only; `webhook/tests/certgen_cluster.rs` runs `apply` against a fake API server
//! on loopback (no cluster exists where these tests run).
use super::*;
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhook, WebhookClientConfig};

const DAY: Duration = Duration::from_secs(86_400);

fn names() -> Vec<String> {
    super::super::dns_names("kmw", "ns-0")
}

fn mk_names() -> Names {
    Names {
        namespace: "ns-0".into(),
        secret: "kmw-tls".into(),
        webhook_config: "kmw".into(),
    }
}

fn data_of(bundle: &Bundle) -> BTreeMap<String, ByteString> {
    secret(&mk_names(), bundle).data.unwrap()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[test]
fn creates_when_absent() {
    assert_eq!(plan_secret(None, &names(), now()), SecretPlan::Create);
}

#[test]
fn reuses_a_valid_secret() {
    let bundle = generate(&names(), 365 * DAY).unwrap();
    let plan = plan_secret(Some(&data_of(&bundle)), &names(), now());
    assert_eq!(
        plan,
        SecretPlan::Reuse {
            ca_pem: bundle.ca_pem
        }
    );
}

#[test]
fn replaces_unusable_secrets() {
    let good = generate(&names(), 365 * DAY).unwrap();
    let other = generate(&names(), 365 * DAY).unwrap();
    let foreign = generate(&super::super::dns_names("other", "ns-0"), 365 * DAY).unwrap();
    let short = generate(&names(), 10 * DAY).unwrap();

    let mut empty = data_of(&good);
    empty.clear();
    let mut wrong_key = data_of(&good);
    wrong_key.insert(TLS_KEY.into(), ByteString(other.key_pem.into_bytes()));
    let mut wrong_ca = data_of(&good);
    wrong_ca.insert(CA_CRT.into(), ByteString(other.ca_pem.into_bytes()));

    let cases = [
        ("empty", empty, "unusable"),
        ("key of another pair", wrong_key, "unusable"),
        ("ca.crt of another pair", wrong_ca, "did not issue"),
        ("another service", data_of(&foreign), "DNS name"),
        ("expires in 10 days", data_of(&short), "expires soon"),
    ];
    for (case, data, why_part) in cases {
        match plan_secret(Some(&data), &names(), now()) {
            SecretPlan::Replace { why } => assert!(why.contains(why_part), "{case}: {why}"),
            plan => panic!("{case}: {plan:?}"),
        }
    }
}

fn mk_config(bundles: &[Option<&str>]) -> MutatingWebhookConfiguration {
    let webhooks = bundles
        .iter()
        .enumerate()
        .map(|(i, ca)| MutatingWebhook {
            name: format!("hook-{i}.kube-metrics-collector.io"),
            client_config: WebhookClientConfig {
                ca_bundle: ca.map(|ca| ByteString(ca.as_bytes().to_vec())),
                ..Default::default()
            },
            ..Default::default()
        })
        .collect();
    MutatingWebhookConfiguration {
        webhooks: Some(webhooks),
        ..Default::default()
    }
}

#[test]
fn patches_only_the_stale_bundles_each_guarded_by_its_name() {
    let config = mk_config(&[None, Some("CA"), Some("old")]);
    let patch = ca_bundle_patch(&config, "CA").unwrap();
    assert_eq!(
        serde_json::to_value(&patch).unwrap(),
        serde_json::json!([
            {"op": "test", "path": "/webhooks/0/name", "value": "hook-0.kube-metrics-collector.io"},
            {"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": "Q0E="},
            {"op": "test", "path": "/webhooks/2/name", "value": "hook-2.kube-metrics-collector.io"},
            {"op": "add", "path": "/webhooks/2/clientConfig/caBundle", "value": "Q0E="},
        ])
    );
}

#[test]
fn patch_leaves_every_other_field_alone() {
    let mut config = mk_config(&[Some("old"), None]);
    for webhook in config.webhooks.iter_mut().flatten() {
        webhook.client_config.url = Some("https://kmw.ns-0.svc/mutate".into());
        webhook.failure_policy = Some("Ignore".into());
    }
    let patch = ca_bundle_patch(&config, "CA").unwrap();
    let mut doc = serde_json::to_value(&config).unwrap();
    json_patch::patch(&mut doc, &patch).unwrap();
    let patched: MutatingWebhookConfiguration = serde_json::from_value(doc).unwrap();
    let mut want = mk_config(&[Some("CA"), Some("CA")]);
    for webhook in want.webhooks.iter_mut().flatten() {
        webhook.client_config.url = Some("https://kmw.ns-0.svc/mutate".into());
        webhook.failure_policy = Some("Ignore".into());
    }
    assert_eq!(patched, want);
}

#[test]
fn patch_fails_whole_when_the_list_was_reordered() {
    let patch = ca_bundle_patch(&mk_config(&[None, None]), "CA").unwrap();
    let mut reordered = mk_config(&[None, None]);
    reordered.webhooks.as_mut().unwrap().reverse();
    let mut doc = serde_json::to_value(&reordered).unwrap();
    let before = doc.clone();
    assert!(json_patch::patch(&mut doc, &patch).is_err());
    assert_eq!(doc, before, "a failed JSON Patch changes nothing");
}

#[test]
fn writes_nothing_when_every_bundle_is_current() {
    assert!(ca_bundle_patch(&mk_config(&[Some("CA"), Some("CA")]), "CA").is_none());
}

#[test]
fn secret_is_a_tls_secret_with_the_three_keys() {
    let bundle = generate(&names(), DAY).unwrap();
    let secret = secret(&mk_names(), &bundle);
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    assert_eq!(secret.metadata.namespace.as_deref(), Some("ns-0"));
    let keys: Vec<_> = secret.data.unwrap().into_keys().collect();
    assert_eq!(keys, [CA_CRT, TLS_CRT, TLS_KEY]);
}
