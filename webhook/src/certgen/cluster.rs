//! certgen against the API server: create the serving Secret unless a valid one exists, then put
//! its CA into `caBundle` of every webhook of the MutatingWebhookConfiguration. Idempotent, so the
//! Job can run on every install and upgrade; the decisions are pure functions, tested below.
//!
//! It touches only what is ours: a Secret it created (labelled [`MANAGED_BY`]`=`[`MANAGER`], of
//! type `kubernetes.io/tls`) and a webhook configuration whose every webhook calls our Service.
//! Anything else of the same name is refused with an error, never overwritten or adopted: a
//! pre-existing Secret's CA would otherwise be published as the one the API server trusts.
//! Its rights are fenced besides by a ValidatingAdmissionPolicy
//! (`manifests/components/certgen/certgen.yaml`), which holds even if this code is wrong.
use anyhow::Context as _;
use json_patch::{AddOperation, PatchOperation, TestOperation, jsonptr::PointerBuf};
use k8s_openapi::{
    ByteString,
    api::{admissionregistration::v1::MutatingWebhookConfiguration, core::v1::Secret},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use std::{collections::BTreeMap, time::Duration};

use super::{Bundle, CA_CRT, TLS_CRT, TLS_KEY, generate};
use crate::tls;

/// A Secret whose certificate expires sooner than this is replaced, not reused.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);

/// What the API server answers when a JSON Patch `test` op fails (apiserver handlers/patch.go).
const STALE_PATCH: u16 = 422;

/// Field manager for server-side bookkeeping (`managedFields`), and the value of the label that
/// marks the Secret as certgen's.
pub const MANAGER: &str = "kube-metrics-webhook-certgen";

/// The label certgen sets on the Secret it creates, and checks before it changes one.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// The only Secret type certgen writes.
pub const TLS_TYPE: &str = "kubernetes.io/tls";

/// The label the shipped webhook configuration carries (manifests/base).
pub const CONFIG_LABEL: (&str, &str) = ("app.kubernetes.io/name", "kube-metrics-webhook");

/// The objects certgen touches, and the Service its webhooks must call.
#[derive(Clone, Debug)]
pub struct Names {
    pub namespace: String,
    pub secret: String,
    pub webhook_config: String,
    pub service: String,
}

/// An object of the right name that is not ours: certgen stops rather than change it.
#[derive(Debug, thiserror::Error)]
pub enum ForeignError {
    #[error(
        "refusing to touch Secret {namespace}/{name}: {why}; certgen changes only the Secret it created (labelled {MANAGED_BY}={MANAGER}, type {TLS_TYPE}): delete it if it is a leftover, or pass another --secret"
    )]
    Secret {
        namespace: String,
        name: String,
        why: String,
    },
    #[error(
        "refusing to patch MutatingWebhookConfiguration {name}: {why}; certgen sets the caBundle only of a configuration labelled {}={} whose every webhook calls Service {namespace}/{service}: pass the right --webhook-config",
        CONFIG_LABEL.0,
        CONFIG_LABEL.1
    )]
    Config {
        name: String,
        namespace: String,
        service: String,
        why: String,
    },
}

/// A failed API call. kube's own `Display` of an API error embeds the `Debug` dump of the
/// `Status` and then repeats it as the source; a Job log needs the code, reason and message once.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the API server answered {code} {reason}: {message}")]
    Status {
        code: u16,
        reason: String,
        message: String,
    },
    /// Not an answer: unreachable, TLS, credentials, an unparsable body.
    #[error(transparent)]
    Client(kube::Error),
}

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

// === impl ApiError ===

impl From<kube::Error> for ApiError {
    fn from(error: kube::Error) -> Self {
        match error {
            kube::Error::Api(status) => ApiError::Status {
                code: status.code,
                reason: status.reason,
                message: status.message,
            },
            other => ApiError::Client(other),
        }
    }
}

/// Ensures the Secret, then the caBundle. Safe to run again, and concurrently with itself.
pub async fn apply(
    client: Client,
    names: &Names,
    dns: &[String],
    validity: Duration,
) -> anyhow::Result<()> {
    let ca_pem = ensure_secret(client.clone(), names, dns, validity).await?;
    let configs: Api<MutatingWebhookConfiguration> = Api::all(client);
    // Two attempts: the `test` ops fail (422) if the webhooks changed between our get and patch.
    for _ in 0..2 {
        let config = configs
            .get(&names.webhook_config)
            .await
            .map_err(ApiError::from)
            .with_context(|| {
                format!(
                    "failed to get MutatingWebhookConfiguration {}",
                    names.webhook_config
                )
            })?;
        if config.webhooks.as_deref().unwrap_or_default().is_empty() {
            anyhow::bail!(
                "MutatingWebhookConfiguration {} has no webhooks",
                names.webhook_config
            );
        }
        if let Some(why) = foreign_config(&config, names) {
            return Err(ForeignError::Config {
                name: names.webhook_config.clone(),
                namespace: names.namespace.clone(),
                service: names.service.clone(),
                why,
            }
            .into());
        }
        let Some(patch) = ca_bundle_patch(&config, &ca_pem) else {
            tracing::info!(config = %names.webhook_config, "caBundle already up to date");
            return Ok(());
        };
        let params = PatchParams {
            field_manager: Some(MANAGER.to_owned()),
            ..Default::default()
        };
        match configs
            .patch(&names.webhook_config, &params, &Patch::Json::<()>(patch))
            .await
        {
            Ok(_) => {
                tracing::info!(config = %names.webhook_config, "Patched caBundle");
                return Ok(());
            }
            Err(kube::Error::Api(status)) if status.code == STALE_PATCH => {
                tracing::info!(config = %names.webhook_config, "Webhooks changed concurrently; reading them again");
            }
            Err(error) => {
                return Err(ApiError::from(error)).with_context(|| {
                    format!("failed to patch caBundle of {}", names.webhook_config)
                });
            }
        }
    }
    anyhow::bail!(
        "MutatingWebhookConfiguration {} kept changing concurrently",
        names.webhook_config
    )
}

/// Returns the CA PEM of the Secret in place after this call.
async fn ensure_secret(
    client: Client,
    names: &Names,
    dns: &[String],
    validity: Duration,
) -> anyhow::Result<String> {
    let secrets: Api<Secret> = Api::namespaced(client, &names.namespace);
    // Two attempts: a concurrent certgen may create the Secret between our get and create.
    for _ in 0..2 {
        let existing = secrets
            .get_opt(&names.secret)
            .await
            .map_err(ApiError::from)
            .with_context(|| {
                format!("failed to get Secret {}/{}", names.namespace, names.secret)
            })?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let plan = plan_secret(existing.as_ref(), dns, now);
        let bundle = match &plan {
            SecretPlan::Reuse { ca_pem } => {
                tracing::info!(secret = %names.secret, "Reusing valid Secret");
                return Ok(ca_pem.clone());
            }
            SecretPlan::Refuse { why } => {
                return Err(ForeignError::Secret {
                    namespace: names.namespace.clone(),
                    name: names.secret.clone(),
                    why: why.clone(),
                }
                .into());
            }
            SecretPlan::Create | SecretPlan::Replace { .. } => generate(dns, validity)?,
        };
        let mut wanted = secret(names, &bundle);
        let params = PostParams {
            field_manager: Some(MANAGER.to_owned()),
            ..Default::default()
        };
        let written = match (&plan, existing) {
            (SecretPlan::Replace { why }, Some(old)) => {
                tracing::warn!(secret = %names.secret, why, "Replacing unusable Secret");
                // Optimistic concurrency: fails with 409 if someone changed it meanwhile. Labels,
                // annotations and owners others added to our Secret stay.
                keep_metadata(&mut wanted.metadata, old.metadata);
                secrets.replace(&names.secret, &params, &wanted).await
            }
            _ => secrets.create(&params, &wanted).await,
        };
        match written {
            Ok(_) => {
                tracing::info!(secret = %names.secret, "Wrote Secret");
                return Ok(bundle.ca_pem);
            }
            Err(kube::Error::Api(status)) if status.is_already_exists() || status.is_conflict() => {
                tracing::info!(secret = %names.secret, "Secret changed concurrently; reading it again");
            }
            Err(error) => {
                return Err(ApiError::from(error)).with_context(|| {
                    format!(
                        "failed to write Secret {}/{}",
                        names.namespace, names.secret
                    )
                });
            }
        }
    }
    anyhow::bail!(
        "Secret {}/{} kept changing concurrently",
        names.namespace,
        names.secret
    )
}

/// Our Secret's metadata as an update must send it: the old object's labels, annotations and
/// owners with our label set, and its resourceVersion, so that the update is conditional.
fn keep_metadata(wanted: &mut ObjectMeta, old: ObjectMeta) {
    let mut labels = old.labels.unwrap_or_default();
    labels.insert(MANAGED_BY.to_owned(), MANAGER.to_owned());
    wanted.labels = Some(labels);
    wanted.annotations = old.annotations;
    wanted.owner_references = old.owner_references;
    wanted.resource_version = old.resource_version;
}

#[cfg(test)]
mod tests;
