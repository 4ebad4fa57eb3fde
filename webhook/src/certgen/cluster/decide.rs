//! certgen's decisions over plain objects: what to do with the Secret, whether the webhook
//! configuration is ours, the caBundle patch, and the Secret it creates. No I/O; tested in
//! `tests.rs` beside it.
use json_patch::{AddOperation, PatchOperation, TestOperation, jsonptr::PointerBuf};
use k8s_openapi::{
    ByteString,
    api::{admissionregistration::v1::MutatingWebhookConfiguration, core::v1::Secret},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use std::collections::BTreeMap;

use super::{CONFIG_LABEL, MANAGED_BY, MANAGER, Names, RENEW_BEFORE, TLS_TYPE};
use crate::certgen::{Bundle, CA_CRT, TLS_CRT, TLS_KEY};
use crate::tls;

/// What to do with the Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretPlan {
    /// It holds a valid pair for our names: keep it, publish its CA.
    Reuse {
        ca_pem: String,
    },
    Create,
    /// It is ours but unusable or expiring; why, for the log.
    Replace {
        why: String,
    },
    /// It is not ours: leave it alone and fail.
    Refuse {
        why: String,
    },
}

/// Decides from the Secret (if it exists) whether to create, reuse, replace or refuse it.
/// `now`: Unix seconds.
pub fn plan_secret(secret: Option<&Secret>, names: &[String], now: i64) -> SecretPlan {
    let Some(secret) = secret else {
        return SecretPlan::Create;
    };
    let labels = secret.metadata.labels.as_ref();
    let managed_by = labels.and_then(|l| l.get(MANAGED_BY)).map(String::as_str);
    if managed_by != Some(MANAGER) {
        let why = match managed_by {
            Some(other) => format!("it is managed by {other:?}"),
            None => format!("it has no label {MANAGED_BY}"),
        };
        return SecretPlan::Refuse { why };
    }
    let type_ = secret.type_.as_deref().unwrap_or("Opaque");
    if type_ != TLS_TYPE {
        return SecretPlan::Refuse {
            why: format!("its type is {type_}, not {TLS_TYPE}"),
        };
    }
    let empty = BTreeMap::new();
    let data = secret.data.as_ref().unwrap_or(&empty);
    let get = |key: &str| data.get(key).map(|v| v.0.as_slice()).unwrap_or_default();
    let replace = |why: &str| SecretPlan::Replace {
        why: why.to_owned(),
    };
    let (cert, key, ca) = (get(TLS_CRT), get(TLS_KEY), get(CA_CRT));
    let Ok(pair) = tls::parse_pair(cert, key) else {
        return replace("tls.crt/tls.key unusable");
    };
    let Ok(leaf) = tls::inspect_pem(cert) else {
        return replace("tls.crt unparsable");
    };
    if !tls::issued_by(cert, ca) {
        return replace("ca.crt did not issue tls.crt");
    }
    if !names.iter().all(|name| leaf.dns_names.contains(name)) {
        return replace("certificate lacks a service DNS name");
    }
    let renew_before = i64::try_from(RENEW_BEFORE.as_secs()).unwrap_or(i64::MAX);
    if pair.not_after.saturating_sub(now) < renew_before {
        return replace("certificate expires soon");
    }
    // The API server verifies the webhook against the CA: an expired CA stops injection as
    // surely as an expired leaf, and silently (failurePolicy Ignore).
    match tls::inspect_pem(ca) {
        Ok(ca) if ca.not_after.saturating_sub(now) < renew_before => {
            return replace("ca.crt expires soon or has expired");
        }
        Ok(_) => {}
        Err(_) => return replace("ca.crt unparsable"),
    }
    match String::from_utf8(ca.to_vec()) {
        Ok(ca_pem) => SecretPlan::Reuse { ca_pem },
        Err(_) => replace("ca.crt is not text"),
    }
}

/// Why the webhook configuration is not ours to patch, if it is not: it must carry the shipped
/// label and have webhooks, and every webhook must call our Service (none a URL): a caBundle
/// tells the API server whom to trust for that webhook's calls.
pub fn foreign_config(config: &MutatingWebhookConfiguration, names: &Names) -> Option<String> {
    let labels = config.metadata.labels.as_ref();
    let (key, value) = CONFIG_LABEL;
    if labels.and_then(|l| l.get(key)).map(String::as_str) != Some(value) {
        return Some(format!("it has no label {key}={value}"));
    }
    let webhooks = config.webhooks.as_deref().unwrap_or_default();
    if webhooks.is_empty() {
        return Some("it has no webhooks".into());
    }
    for webhook in webhooks {
        let service = webhook.client_config.service.as_ref();
        let ours = service
            .is_some_and(|s| s.namespace == names.namespace && s.name == names.service)
            && webhook.client_config.url.is_none();
        if !ours {
            let target = match (service, &webhook.client_config.url) {
                (_, Some(_)) => "a URL".to_owned(),
                (Some(s), None) => format!("Service {}/{}", s.namespace, s.name),
                (None, None) => "nothing".to_owned(),
            };
            return Some(format!("webhook {} calls {target}", webhook.name));
        }
    }
    None
}

/// A JSON Patch (RFC 6902) setting `clientConfig.caBundle` of each webhook that lacks this CA,
/// or `None` when each already carries it, so a re-run writes nothing.
///
/// Not a merge patch: RFC 7386 replaces a list whole, so it would rewrite every other field of
/// every webhook. Not a strategic-merge patch either: merged by name, a webhook renamed meanwhile
/// would come back as a new, half-empty list entry, and its semantics are Kubernetes' own rather
/// than a standard's. Each `add` names one field by index, and a `test` of the webhook's name at
/// that index makes the API server reject the whole patch (422) if the list changed since our
/// GET, instead of writing to the wrong webhook.
pub fn ca_bundle_patch(
    config: &MutatingWebhookConfiguration,
    ca_pem: &str,
) -> Option<json_patch::Patch> {
    let stale = config
        .webhooks
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter(|(_, w)| {
            w.client_config
                .ca_bundle
                .as_ref()
                .is_none_or(|b| b.0 != ca_pem.as_bytes())
        });
    // `ByteString` serialises as base64, the wire form of `caBundle` (and cannot fail to).
    let bundle = serde_json::json!(ByteString(ca_pem.as_bytes().to_vec()));
    let mut ops = Vec::new();
    for (index, webhook) in stale {
        let index = index.to_string();
        ops.push(PatchOperation::Test(TestOperation {
            path: PointerBuf::from_tokens(["webhooks", index.as_str(), "name"]),
            value: serde_json::Value::String(webhook.name.clone()),
        }));
        ops.push(PatchOperation::Add(AddOperation {
            path: PointerBuf::from_tokens(["webhooks", index.as_str(), "clientConfig", "caBundle"]),
            value: bundle.clone(),
        }));
    }
    (!ops.is_empty()).then_some(json_patch::Patch(ops))
}

/// The Secret certgen creates from a bundle.
pub fn secret(names: &Names, bundle: &Bundle) -> Secret {
    let data = [
        (TLS_CRT, &bundle.cert_pem),
        (TLS_KEY, &bundle.key_pem),
        (CA_CRT, &bundle.ca_pem),
    ]
    .into_iter()
    .map(|(key, pem)| (key.to_owned(), ByteString(pem.as_bytes().to_vec())))
    .collect();
    Secret {
        metadata: ObjectMeta {
            name: Some(names.secret.clone()),
            namespace: Some(names.namespace.clone()),
            labels: Some(BTreeMap::from([(
                MANAGED_BY.to_owned(),
                MANAGER.to_owned(),
            )])),
            ..Default::default()
        },
        type_: Some(TLS_TYPE.to_owned()),
        data: Some(data),
        ..Default::default()
    }
}

/// Our Secret's metadata as an update must send it: the old object's labels, annotations and
/// owners with our label set, and its resourceVersion, so that the update is conditional.
pub(super) fn keep_metadata(wanted: &mut ObjectMeta, old: ObjectMeta) {
    let mut labels = old.labels.unwrap_or_default();
    labels.insert(MANAGED_BY.to_owned(), MANAGER.to_owned());
    wanted.labels = Some(labels);
    wanted.annotations = old.annotations;
    wanted.owner_references = old.owner_references;
    wanted.resource_version = old.resource_version;
}

#[cfg(test)]
mod tests;
