//! `certgen` cluster mode (`certgen::cluster::apply`) against a fake Kubernetes API server on
//! 127.0.0.1 (`certgen_scenario/`): creating, keeping and replacing the Secret, and the caBundle
//! patch. The fake stands in for a real API server because none can run here: this machine has
//! no cluster and no kube-apiserver. It keeps the objects in memory, answers with the real wire
//! shapes and status codes, records every request, and applies JSON Patches with the RFC 6902
//! semantics kube-apiserver uses; the request lists asserted below are what certgen sends.
//! Failures and the binary's exit status: `certgen_cluster_errors.rs`.
mod certgen_scenario;
mod common;

use certgen_scenario::*;
use http::{Method, StatusCode};
use kube_metrics_webhook::certgen::{self, Bundle, cluster};
use rustls_pki_types::{CertificateDer, pem::PemObject};
use serde_json::json;

#[tokio::test]
async fn empty_cluster_gets_a_secret_and_every_ca_bundle() {
    let api = start();
    api.seed(CONFIGS, webhook_config([None, None]));
    let (before, _) = split_bundles(&api);

    apply(&api).await.unwrap();

    assert_eq!(
        api.calls(),
        calls(&[
            (&Method::GET, SECRET),
            (&Method::POST, SECRETS),
            (&Method::GET, CONFIG),
            (&Method::PATCH, CONFIG)
        ])
    );
    let bundle = assert_usable_secret(&api);
    let (after, bundles) = split_bundles(&api);
    assert_eq!(after, before, "only caBundle may change");
    assert_eq!(
        bundles,
        [Some(b64(&bundle.ca_pem)), Some(b64(&bundle.ca_pem))]
    );
    assert_patches_touch_only_ca_bundles(&api);
    let labels = api.object(CONFIG).unwrap()["metadata"]["labels"].clone();
    assert_eq!(
        labels,
        json!({"app.kubernetes.io/name": "kube-metrics-webhook"})
    );

    // What the API server would see: the webhook serving the Secret's pair, verified against the
    // caBundle alone, under the name it dials.
    let mut dir = common::SecretDir::new();
    dir.publish_bundle(&bundle);
    let server = common::Server::start(&dir, common::test_limits())
        .await
        .unwrap();
    let mut conn = common::Conn::open(&common::tls_connector(&[&bundle]), server.addr())
        .await
        .unwrap();
    let served = CertificateDer::from_pem_slice(bundle.cert_pem.as_bytes()).unwrap();
    assert_eq!(conn.peer_leaf, served.to_vec());
    let (status, body) = conn.review_fixture().await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        common::answer_uid(&body).as_deref(),
        Some(common::FIXTURE_UID)
    );
    let stranger = common::bundle();
    let refused = common::tls_stream(&common::tls_connector(&[&stranger]), server.addr()).await;
    assert!(
        refused.is_err(),
        "a CA that did not sign the leaf must not verify it"
    );
    let _ = server.shutdown.send(true);
}

#[tokio::test]
async fn second_run_writes_nothing() {
    let api = start();
    api.seed(CONFIGS, webhook_config([None, None]));
    apply(&api).await.unwrap();
    let first = api.calls().len();
    let secret = api.objects(SECRETS);
    let config = api.objects(CONFIGS);

    apply(&api).await.unwrap();

    assert_eq!(
        api.calls()[first..],
        calls(&[(&Method::GET, SECRET), (&Method::GET, CONFIG)])
    );
    assert_eq!(api.objects(SECRETS), secret, "the Secret was rewritten");
    assert_eq!(
        api.objects(CONFIGS),
        config,
        "the configuration was rewritten"
    );
}

#[tokio::test]
async fn recreated_configuration_gets_the_existing_ca() {
    let api = start();
    let kept = certgen::generate(&dns(), VALIDITY).unwrap();
    seed_secret(&api, &cluster::secret(&names(), &kept));
    api.seed(CONFIGS, webhook_config([Some("b2xk"), None]));

    apply(&api).await.unwrap();

    assert_eq!(
        api.calls(),
        calls(&[
            (&Method::GET, SECRET),
            (&Method::GET, CONFIG),
            (&Method::PATCH, CONFIG)
        ])
    );
    assert_eq!(bundle_of(&stored_secret(&api).unwrap()), kept);
    assert_eq!(
        split_bundles(&api).1,
        [Some(b64(&kept.ca_pem)), Some(b64(&kept.ca_pem))]
    );
}

#[tokio::test]
async fn unusable_secret_is_replaced_and_the_ca_bundle_follows() {
    let good = certgen::generate(&dns(), VALIDITY).unwrap();
    let other = certgen::generate(&dns(), VALIDITY).unwrap();
    let expiring = certgen::generate(&dns(), 10 * DAY).unwrap();
    let wrong_names = certgen::generate(&certgen::dns_names("other", NS), VALIDITY).unwrap();
    let wrong_key = Bundle {
        key_pem: other.key_pem.clone(),
        ..good.clone()
    };
    for (case, old) in [
        ("expiring", expiring),
        ("wrong DNS names", wrong_names),
        ("key of another pair", wrong_key),
    ] {
        let api = start();
        seed_secret(&api, &cluster::secret(&names(), &old));
        let old_b64 = b64(&old.ca_pem);
        let old_b64 = old_b64.as_str();
        api.seed(CONFIGS, webhook_config([old_b64, old_b64]));
        let old_version = api.objects(SECRETS)[0]["metadata"].clone();

        apply(&api)
            .await
            .unwrap_or_else(|e| panic!("{case}: {e:#}"));

        let want = calls(&[
            (&Method::GET, SECRET),
            (&Method::PUT, SECRET),
            (&Method::GET, CONFIG),
            (&Method::PATCH, CONFIG),
        ]);
        assert_eq!(api.calls(), want, "{case}");
        let put = api.requests()[1].json().unwrap();
        assert_eq!(
            put["metadata"]["resourceVersion"], old_version["resourceVersion"],
            "{case}: conditional update"
        );
        let new = assert_usable_secret(&api);
        assert_ne!(new.ca_pem, old.ca_pem, "{case}");
        let stored = stored_secret(&api).unwrap();
        assert_eq!(
            stored.metadata.uid.as_deref(),
            old_version["uid"].as_str(),
            "{case}: replaced in place"
        );
        assert_eq!(
            split_bundles(&api).1,
            [Some(b64(&new.ca_pem)), Some(b64(&new.ca_pem))],
            "{case}"
        );
        assert_patches_touch_only_ca_bundles(&api);
    }
}

#[tokio::test]
async fn concurrent_changes_are_read_again_once() {
    let api = start();
    let old = certgen::generate(&dns(), 10 * DAY).unwrap();
    seed_secret(&api, &cluster::secret(&names(), &old));
    api.seed(CONFIGS, webhook_config([None, None]));
    // Someone else updated the Secret, and reordered the webhooks, between our GET and write.
    api.answer_once(Method::PUT, SECRET, injected(StatusCode::CONFLICT, None));
    api.answer_once(
        Method::PATCH,
        CONFIG,
        injected(StatusCode::UNPROCESSABLE_ENTITY, None),
    );

    apply(&api).await.unwrap();

    let (get, put, patch) = (
        (&Method::GET, SECRET),
        (&Method::PUT, SECRET),
        (&Method::PATCH, CONFIG),
    );
    let config = (&Method::GET, CONFIG);
    assert_eq!(
        api.calls(),
        calls(&[get, put, get, put, config, patch, config, patch])
    );
    let new = assert_usable_secret(&api);
    assert_eq!(
        split_bundles(&api).1,
        [Some(b64(&new.ca_pem)), Some(b64(&new.ca_pem))]
    );
}

#[tokio::test]
async fn transient_unavailability_is_retried() {
    let api = start();
    api.seed(CONFIGS, webhook_config([None, None]));
    // kube's default client retries 429/503/504 with backoff; 500 and 403 are final.
    api.answer_once(
        Method::GET,
        SECRET,
        injected(StatusCode::SERVICE_UNAVAILABLE, None),
    );
    apply(&api).await.unwrap();
    assert_eq!(
        api.calls()[..2],
        calls(&[(&Method::GET, SECRET), (&Method::GET, SECRET)])
    );
    assert_usable_secret(&api);
}
