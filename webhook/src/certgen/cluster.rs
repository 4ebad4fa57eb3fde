//! certgen against the API server: create the serving Secret unless a valid one exists, then put
//! its CA into `caBundle` of every webhook of the MutatingWebhookConfiguration. Idempotent, so the
//! Job can run on every install and upgrade; the decisions are pure functions (`decide.rs`).
//!
//! It touches only what is ours: a Secret it created (labelled [`MANAGED_BY`]`=`[`MANAGER`], of
//! type `kubernetes.io/tls`) and a webhook configuration whose every webhook calls our Service.
//! Anything else of the same name is refused with an error, never overwritten or adopted: a
//! pre-existing Secret's CA would otherwise be published as the one the API server trusts.
//! Its rights are fenced besides by a ValidatingAdmissionPolicy
//! (`manifests/components/certgen/certgen.yaml`), which holds even if this code is wrong.
use anyhow::Context as _;
use k8s_openapi::api::{admissionregistration::v1::MutatingWebhookConfiguration, core::v1::Secret};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use std::time::Duration;

use decide::keep_metadata;
pub use decide::{SecretPlan, ca_bundle_patch, foreign_config, plan_secret, secret};

use super::generate;

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

mod decide;
