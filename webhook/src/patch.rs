//! AdmissionReview bytes -> AdmissionReview answer with an RFC 6902 patch. No I/O.
//!
//! Two steps, so the server can look the pod's VMI up in between: [`parse`] reads the review once and
//! runs the checks that need only the pod; [`Parsed::vmi_ref`] says which VMI to look up (none when
//! the pod is already decided); [`answer`] decides with what the lookup found and builds the answer.
//! [`review`] is both steps without a lookup: the pod-only decision.
//!
//! The review is read as raw JSON, not as kube-core's typed `AdmissionReview`: a review with a
//! request uid always gets an answer (allowed; the webhook never denies a pod), even when another
//! field is missing or of the wrong type. Only a body without a request or uid is a [`ReviewError`],
//! and one over the [`complexity::LIMIT`], checked on the bytes before anything is built.
pub mod complexity;
pub mod ops;
pub mod shape;
pub mod sidecar;

use k8s_openapi::api::core::v1::Pod;
use kube_core::admission::AdmissionResponse;
use serde::Deserialize as _;
use serde_json::Value;

use crate::decide::{self, Candidate, Decision, SkipReason};
use crate::policy::Policy;
use crate::vmi::{Lookup, PathDecision, Source, VmiRef};

/// The AdmissionReview versions we answer in; the answer's apiVersion must match the request's.
const V1: &str = "admission.k8s.io/v1";
const V1BETA1: &str = "admission.k8s.io/v1beta1";
/// Longest internal error we repeat, in characters (the API server truncates warnings anyway).
const MAX_ERROR_LEN: usize = 160;

/// What became of one pod; the server logs it and counts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Injected,
    Skipped(SkipReason),
    /// An internal error: the pod is allowed unpatched, with a warning.
    Error(String),
}

/// One review, read: the request's identity, the pod, and how far the pod-only checks got.
#[derive(Debug)]
pub struct Parsed {
    pub uid: String,
    api_version: &'static str,
    pub namespace: Option<String>,
    pub generate_name: Option<String>,
    /// The VMI name, when the pod names one.
    pub vm: Option<String>,
    pub dry_run: bool,
    /// The request's object, raw: the patch is built on it.
    object: Value,
    stage: Stage,
}

/// How far the pod-only checks got.
#[derive(Debug)]
enum Stage {
    /// An internal error: admitted without the sidecar, with a warning. `strip`: the object is a
    /// Pod at CREATE that did not read as one, whose keys of ours (if any) are still removed.
    Error { error: String, strip: bool },
    /// Decided from the pod alone.
    Skip(SkipReason),
    /// Longer than any launcher pod: skipped as `unparseable` before its typed read.
    Oversized(shape::Oversized),
    /// The VM decides; `vmi` is what to look up (none when the pod does not name its VMI fully).
    Candidate {
        candidate: Candidate,
        vmi: Option<VmiRef>,
    },
    /// A container named like ours is there: nothing is injected, and the marks are derived again
    /// from the VMI and that container's `port` (`decide::reinvoked`).
    Reinvoked {
        port: Option<u16>,
        vmi: Option<VmiRef>,
    },
}

/// The answer to one review, plus what the server needs for its log line and metrics.
#[derive(Debug)]
pub struct Reviewed {
    /// The serialized `AdmissionReview` to send back (HTTP 200).
    pub response: Vec<u8>,
    pub outcome: Outcome,
    pub uid: String,
    pub namespace: Option<String>,
    pub generate_name: Option<String>,
    /// The VMI name, when the pod names one.
    pub vm: Option<String>,
    pub dry_run: bool,
    /// The warnings sent to the client (ignored per-pod overrides, internal errors).
    pub warnings: Vec<String>,
    /// The annotation of each per-pod override that was ignored: counted and logged.
    pub ignored: Vec<&'static str>,
    /// The number of patch operations; 0 means no patch.
    pub patch_len: usize,
    /// Who judged the VM, when the pod got that far (every injection, and skips for the VM's type).
    pub source: Option<Source>,
    /// How the injected sidecar is scraped, and why.
    pub scrape: Option<PathDecision>,
    /// The list that made the pod too long to read, when that was the reason for the skip.
    pub oversized: Option<shape::Oversized>,
}

/// A request body that is not an AdmissionReview we can answer (HTTP 400).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("body is not an AdmissionReview")]
    Malformed(#[source] serde_json::Error),
    /// Refused before parsing: what it would cost to parse is not bounded by its size alone.
    #[error("body is too complex to parse")]
    TooComplex(#[source] complexity::TooComplex),
    #[error("AdmissionReview has no request")]
    MissingRequest,
    /// Without the uid no answer can be matched to the request.
    #[error("AdmissionReview request has no uid")]
    MissingUid,
}

/// Answers one AdmissionReview from the pod alone, as if its VMI could not be found: [`parse`], then
/// [`answer`] with [`Lookup::NotFound`].
pub fn review(body: &[u8], policy: &Policy) -> Result<Reviewed, ReviewError> {
    parse(body).map(|parsed| answer(&parsed, policy, &Lookup::NotFound))
}

/// Reads one AdmissionReview and runs the checks that need only the pod.
pub fn parse(body: &[u8]) -> Result<Parsed, ReviewError> {
    complexity::check(body, complexity::LIMIT).map_err(ReviewError::TooComplex)?;
    let mut review: Value = serde_json::from_slice(body).map_err(ReviewError::Malformed)?;
    let api_version = match review.get("apiVersion").and_then(Value::as_str) {
        Some(V1BETA1) => V1BETA1,
        _ => V1,
    };
    let request = review
        .get_mut("request")
        .filter(|r| r.is_object())
        .ok_or(ReviewError::MissingRequest)?;
    let string = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let uid = string(request.get("uid"))
        .filter(|u| !u.is_empty())
        .ok_or(ReviewError::MissingUid)?;
    // Taken, not cloned: the pod is the bulk of the review.
    let object = request
        .get_mut("object")
        .map(Value::take)
        .unwrap_or_default();
    let metadata = object.get("metadata");
    let namespace = string(request.get("namespace"))
        .or_else(|| string(metadata.and_then(|m| m.get("namespace"))));
    let vmi = || VmiRef::from_pod(&object, namespace.as_deref().unwrap_or_default());
    let stage = match pod_of(request, &object) {
        Err((error, strip)) => Stage::Error {
            error: truncated(error),
            strip,
        },
        Ok(Err(oversized)) => Stage::Oversized(oversized),
        Ok(Ok(pod)) => {
            let port = pod.spec.as_ref().and_then(decide::injected_port).flatten();
            match decide::precheck(pod) {
                Err(SkipReason::AlreadyInjected) => Stage::Reinvoked { port, vmi: vmi() },
                Err(reason) => Stage::Skip(reason),
                Ok(candidate) => Stage::Candidate {
                    vmi: vmi(),
                    candidate,
                },
            }
        }
    };
    Ok(Parsed {
        uid,
        api_version,
        generate_name: string(metadata.and_then(|m| m.get("generateName"))),
        vm: vm_name(metadata),
        dry_run: request
            .get("dryRun")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        namespace,
        object,
        stage,
    })
}

/// Decides with what the VMI lookup found ([`Lookup::NotFound`] when there was none to make or
/// lookups are off) and builds the answer.
pub fn answer(parsed: &Parsed, policy: &Policy, lookup: &Lookup) -> Reviewed {
    let object = &parsed.object;
    let skip = |reason: SkipReason| {
        (
            Outcome::Skipped(reason),
            ops::skip_operations(object, reason),
        )
    };
    let (mut source, mut scrape, mut warnings) = (None, None, Vec::new());
    let mut ignored = Vec::new();
    let mut oversized = None;
    let (outcome, ops) = match &parsed.stage {
        Stage::Error { error, strip } => {
            warnings.push(format!(
                "kube-metrics-webhook: {error}; pod admitted without the metrics sidecar"
            ));
            let ops = if *strip {
                ops::mark_operations(object, ops::Marks::default())
            } else {
                Vec::new()
            };
            (Outcome::Error(error.clone()), ops)
        }
        Stage::Skip(reason) => skip(*reason),
        Stage::Oversized(too_long) => {
            oversized = Some(*too_long);
            skip(SkipReason::Unparseable)
        }
        Stage::Reinvoked { port, .. } => {
            let (judged, path) = decide::reinvoked(*port, policy, lookup);
            (source, scrape) = (Some(judged), Some(path));
            let marks = ops::Marks::injected(judged, path);
            (
                Outcome::Skipped(SkipReason::AlreadyInjected),
                ops::mark_operations(object, marks),
            )
        }
        Stage::Candidate { candidate, .. } => {
            let (decision, verdict) = decide::decide(candidate, policy, lookup);
            source = Some(verdict.source);
            match ops::operations(object, &decision) {
                Ok(ops) => match decision {
                    Decision::Inject(plan) => {
                        scrape = Some(plan.scrape);
                        warnings = plan.warnings;
                        ignored = plan.ignored;
                        (Outcome::Injected, ops)
                    }
                    Decision::Skip(reason) | Decision::Unsafe { reason, .. } => {
                        (Outcome::Skipped(reason), ops)
                    }
                },
                // The typed pod read fine but the JSON has a member of an unexpected type.
                Err(_) => {
                    source = None;
                    skip(SkipReason::Unparseable)
                }
            }
        }
    };
    let patch_len = ops.len();
    Reviewed {
        response: respond(&parsed.uid, parsed.api_version, ops, &warnings),
        outcome,
        uid: parsed.uid.clone(),
        namespace: parsed.namespace.clone(),
        generate_name: parsed.generate_name.clone(),
        vm: parsed.vm.clone(),
        dry_run: parsed.dry_run,
        warnings,
        ignored,
        patch_len,
        source,
        scrape,
        oversized,
    }
}

// === impl Parsed ===

impl Parsed {
    /// The VMI to look up before [`answer`]: `None` when the pod is decided without it.
    pub fn vmi_ref(&self) -> Option<&VmiRef> {
        match &self.stage {
            Stage::Candidate { vmi, .. } | Stage::Reinvoked { vmi, .. } => vmi.as_ref(),
            Stage::Error { .. } | Stage::Skip(_) | Stage::Oversized(_) => None,
        }
    }
}

/// The request's object as a typed pod (or the list that makes it too long to read as one), or why
/// it is not one we can answer for, and whether it is a Pod at CREATE all the same (only its typed
/// read failed).
fn pod_of(
    request: &Value,
    object: &Value,
) -> Result<Result<Pod, shape::Oversized>, (String, bool)> {
    let not_ours = |error: String| (error, false);
    let operation = request.get("operation").and_then(Value::as_str);
    if operation != Some("CREATE") {
        return Err(not_ours(format!("operation {operation:?} is not CREATE")));
    }
    let kind = request.pointer("/kind/kind").and_then(Value::as_str);
    if kind.is_some_and(|k| k != "Pod")
        || object
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k != "Pod")
    {
        return Err(not_ours("the object is not a Pod".to_owned()));
    }
    if !object.is_object() {
        return Err(not_ours("the request has no object".to_owned()));
    }
    if let Err(oversized) = shape::check(object) {
        return Ok(Err(oversized));
    }
    // Typed, for reading only; the patch is built on `object` itself.
    Pod::deserialize(object)
        .map(Ok)
        .map_err(|e| (format!("the object is not a readable Pod: {e}"), true))
}

/// The serialized answer: always allowed, with the patch when there are operations.
fn respond(
    uid: &str,
    api_version: &str,
    ops: Vec<json_patch::PatchOperation>,
    warnings: &[String],
) -> Vec<u8> {
    // kube-core builds a response only from its typed request (`From`) or as `invalid`; we read the
    // request raw, so start from `invalid` and set every field it sets.
    let mut response = AdmissionResponse::invalid("");
    response.uid = uid.to_owned();
    response.allowed = true;
    response.result = Default::default();
    response.types.api_version = api_version.to_owned();
    response.warnings = (!warnings.is_empty()).then(|| warnings.to_vec());
    if !ops.is_empty() {
        response = match response.clone().with_patch(json_patch::Patch(ops)) {
            Ok(patched) => patched,
            // Serializing JSON values cannot fail; if it ever did, admit unpatched.
            Err(_) => response,
        };
    }
    // Same reasoning: a struct of strings and bytes always serializes.
    serde_json::to_vec(&response.into_review()).unwrap_or_default()
}

/// At most [`MAX_ERROR_LEN`] bytes of an error: serde quotes the offending value, which may be a
/// megabyte annotation, and the error goes into a warning and a log line.
fn truncated(mut error: String) -> String {
    if let Some((cut, _)) = error.char_indices().nth(MAX_ERROR_LEN) {
        error.truncate(cut);
        error.push_str("...");
    }
    error
}

/// The VMI's name: the `kubevirt.io/domain` annotation, else the VMI owner reference.
fn vm_name(metadata: Option<&Value>) -> Option<String> {
    let metadata = metadata?;
    let domain = metadata
        .pointer("/annotations/kubevirt.io~1domain")
        .and_then(Value::as_str);
    let owner = || {
        let owners = metadata.get("ownerReferences")?.as_array()?;
        let vmi = owners
            .iter()
            .find(|o| o.get("kind").and_then(Value::as_str) == Some("VirtualMachineInstance"))?;
        vmi.get("name")?.as_str()
    };
    domain.or_else(owner).map(str::to_owned)
}

#[cfg(test)]
mod tests;
