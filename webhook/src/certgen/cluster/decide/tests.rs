//! Pure decisions only; `webhook/tests/certgen_cluster.rs` runs `apply` against a fake API server
//! on loopback (no cluster exists where these tests run).
use super::*;
use crate::certgen::{dns_names, generate};
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhook, WebhookClientConfig};
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

fn names() -> Vec<String> {
    dns_names("kmw", "ns-0")
}

fn mk_names() -> Names {
    Names {
        namespace: "ns-0".into(),
        secret: "kmw-tls".into(),
        webhook_config: "kmw".into(),
        service: "kmw".into(),
    }
}

fn data_of(bundle: &Bundle) -> BTreeMap<String, ByteString> {
    secret(&mk_names(), bundle).data.unwrap()
}

/// The Secret certgen would write, with `data`.
fn secret_with(data: BTreeMap<String, ByteString>) -> Secret {
    let mut s = secret(&mk_names(), &generate(&names(), DAY).unwrap());
    s.data = Some(data);
    s
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
    let plan = plan_secret(Some(&secret(&mk_names(), &bundle)), &names(), now());
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
    let foreign = generate(&dns_names("other", "ns-0"), 365 * DAY).unwrap();
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
        (
            "CA expires in 10 days",
            data_of(&ca_valid_for(10)),
            "ca.crt expires soon",
        ),
        (
            "CA expired",
            data_of(&ca_valid_for(-1)),
            "ca.crt expires soon or has expired",
        ),
    ];
    for (case, data, why_part) in cases {
        match plan_secret(Some(&secret_with(data)), &names(), now()) {
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

/// A leaf valid for a year, signed by a CA valid for `valid` days more (negative: expired), whose
/// validity began 30 days ago.
fn ca_valid_for(valid: i64) -> Bundle {
    let now = time::OffsetDateTime::now_utc();
    let days = time::Duration::days;
    crate::certgen::issue(
        &names(),
        now - days(30)..now + days(valid),
        now - days(1)..now + days(365),
    )
    .unwrap()
}

#[test]
fn refuses_a_secret_it_did_not_create() {
    let valid = secret(&mk_names(), &generate(&names(), 365 * DAY).unwrap());
    let mut unlabelled = valid.clone();
    unlabelled.metadata.labels = None;
    let mut someone_elses = valid.clone();
    someone_elses
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert(MANAGED_BY.into(), "Helm".into());
    let mut token = valid.clone();
    token.type_ = Some("kubernetes.io/service-account-token".into());
    let mut opaque = valid;
    opaque.type_ = None;
    let cases = [
        (unlabelled, "it has no label app.kubernetes.io/managed-by"),
        (someone_elses, "it is managed by \"Helm\""),
        (
            token,
            "its type is kubernetes.io/service-account-token, not kubernetes.io/tls",
        ),
        (opaque, "its type is Opaque, not kubernetes.io/tls"),
    ];
    for (secret, want) in cases {
        assert_eq!(
            plan_secret(Some(&secret), &names(), now()),
            SecretPlan::Refuse { why: want.into() }
        );
    }
}

#[test]
fn an_update_keeps_what_others_added_to_our_secret() {
    let mut old = secret(&mk_names(), &generate(&names(), DAY).unwrap()).metadata;
    old.labels
        .as_mut()
        .unwrap()
        .insert("team".into(), "a".into());
    old.annotations = Some(BTreeMap::from([("note".into(), "kept".into())]));
    old.resource_version = Some("7".into());
    let mut wanted = secret(&mk_names(), &generate(&names(), DAY).unwrap()).metadata;
    keep_metadata(&mut wanted, old);
    assert_eq!(
        wanted.labels.unwrap(),
        BTreeMap::from([
            (MANAGED_BY.to_owned(), MANAGER.to_owned()),
            ("team".to_owned(), "a".to_owned())
        ])
    );
    assert_eq!(wanted.annotations.unwrap()["note"], "kept");
    assert_eq!(wanted.resource_version.as_deref(), Some("7"));
}

#[test]
fn patches_only_a_configuration_whose_webhooks_call_our_service() {
    use k8s_openapi::api::admissionregistration::v1::ServiceReference;
    let ours = || {
        let mut config = mk_config(&[None, None]);
        config.metadata.labels = Some(BTreeMap::from([(
            CONFIG_LABEL.0.to_owned(),
            CONFIG_LABEL.1.to_owned(),
        )]));
        for webhook in config.webhooks.iter_mut().flatten() {
            webhook.client_config.service = Some(ServiceReference {
                namespace: "ns-0".into(),
                name: "kmw".into(),
                ..Default::default()
            });
        }
        config
    };
    type Edit = fn(&mut MutatingWebhookConfiguration);
    let cases: [(&str, Edit, Option<&str>); 6] = [
        ("ours", |_| {}, None),
        (
            "unlabelled",
            |c| c.metadata.labels = None,
            Some("it has no label app.kubernetes.io/name=kube-metrics-webhook"),
        ),
        (
            "no webhooks",
            |c| c.webhooks = Some(vec![]),
            Some("it has no webhooks"),
        ),
        (
            "another product's Service",
            |c| {
                let hook = &mut c.webhooks.as_mut().unwrap()[1];
                hook.client_config.service.as_mut().unwrap().name = "other".into();
            },
            Some("webhook hook-1.kube-metrics-collector.io calls Service ns-0/other"),
        ),
        (
            "our Service in another namespace",
            |c| {
                let hook = &mut c.webhooks.as_mut().unwrap()[0];
                hook.client_config.service.as_mut().unwrap().namespace = "ns-1".into();
            },
            Some("webhook hook-0.kube-metrics-collector.io calls Service ns-1/kmw"),
        ),
        (
            "a URL",
            |c| {
                let hook = &mut c.webhooks.as_mut().unwrap()[0];
                hook.client_config.service = None;
                hook.client_config.url = Some("https://elsewhere.example/".into());
            },
            Some("webhook hook-0.kube-metrics-collector.io calls a URL"),
        ),
    ];
    for (case, edit, want) in cases {
        let mut config = ours();
        edit(&mut config);
        assert_eq!(
            foreign_config(&config, &mk_names()).as_deref(),
            want,
            "{case}"
        );
    }
}
