//! `POST /mutate`: read a small body then take a review slot, or take a reader's slot then read a
//! larger body (`slots`), under limits; `patch::parse` it, look the pod's VMI up (when `parse`
//! asks for one and lookups are on), `patch::answer`, then log and count the review.
use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use kube_metrics_runtime::Activity;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{slots::Slot, text};
use crate::{
    metrics::RequestResult,
    patch::{self, Outcome, Reviewed},
    state::{Limits, State},
    vmi::Lookup,
};

/// Why a request body was refused before review.
#[derive(Debug, PartialEq, Eq)]
enum Reject {
    ContentType,
    TooLarge,
    Timeout,
    Read,
    /// No review slot came free in time.
    Busy,
}

/// Answers one POST /mutate; never fails: every problem is a status code or an allowed answer.
pub(super) async fn mutate(req: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let activity = req.extensions().get::<Arc<Activity>>().cloned();
    // Waiting for a slot and reading the body are up to the client: its connection may be evicted
    // meanwhile (`slots`, and the runtime's cap).
    let idle = activity.as_ref().map(Activity::idle);
    let read = read_in_slot(req, state, activity.as_ref()).await;
    drop(idle);
    let (result, response) = match read {
        Err(Reject::Busy) => {
            tracing::warn!(
                slots = state.limits.reviews,
                "No review slot came free; answering 503"
            );
            (RequestResult::Busy, Reject::Busy.response())
        }
        Err(reject) => {
            tracing::info!(?reject, "Rejected admission request");
            (RequestResult::BadRequest, reject.response())
        }
        // The slot is held until the review is answered.
        Ok((_slot, body)) => match patch::parse(&body) {
            Err(error) => {
                let error = kube_metrics_runtime::log::error_chain(&error);
                tracing::info!(%error, "Rejected malformed AdmissionReview");
                (
                    RequestResult::BadRequest,
                    text(StatusCode::BAD_REQUEST, "malformed AdmissionReview\n"),
                )
            }
            Ok(parsed) => {
                let (lookup, lookup_result) = match (parsed.vmi_ref(), &state.vmi) {
                    (None, _) => (Lookup::NotFound, ""),
                    (Some(_), None) => (Lookup::NotFound, "off"),
                    (Some(vmi), Some(lookups)) => {
                        let lookup = lookups.lookup(vmi).await;
                        let result = lookup.as_str();
                        (lookup, result)
                    }
                };
                if !lookup_result.is_empty() {
                    state.metrics.vmi_lookup(lookup_result);
                }
                let reviewed = patch::answer(&parsed, &state.policy, &lookup);
                log_review(&reviewed, lookup_result, started.elapsed());
                if let Outcome::Skipped(reason) = reviewed.outcome {
                    state.metrics.skipped(reason);
                }
                if let Some(oversized) = reviewed.oversized {
                    state.metrics.oversized(oversized.part);
                }
                for annotation in &reviewed.ignored {
                    state.metrics.ignored(annotation);
                }
                (
                    RequestResult::of(&reviewed.outcome),
                    json(reviewed.response),
                )
            }
        },
    };
    state.metrics.observe(result, started.elapsed());
    response
}

/// How a request's head says its body must be read: a small body before the review takes a slot,
/// so a slow client never holds one; a larger one in a reader's slot. With the length to reserve.
#[derive(Debug, PartialEq, Eq)]
enum Declared {
    Small(usize),
    Large(usize),
}

impl Declared {
    /// Refuses a body that is not JSON or is declared past the cap before reading a byte of it;
    /// `collect` catches the rest. A body of no declared length is read as a large one.
    fn of(headers: &http::HeaderMap, limits: &Limits) -> Result<Self, Reject> {
        if !is_json(headers.get(header::CONTENT_TYPE)) {
            return Err(Reject::ContentType);
        }
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        match declared {
            Some(len) if len > limits.body_cap as u64 => Err(Reject::TooLarge),
            Some(len) if len <= limits.small_body as u64 => Ok(Self::Small(len as usize)),
            Some(len) => Ok(Self::Large(len as usize)),
            None => Ok(Self::Large(0)),
        }
    }
}

/// The body, in the review slot it is decided in (`slots`).
async fn read_in_slot(
    req: Request<Incoming>,
    state: &State,
    activity: Option<&Arc<Activity>>,
) -> Result<(Slot, Bytes), Reject> {
    let limits = &state.limits;
    match Declared::of(req.headers(), limits)? {
        Declared::Small(len) => {
            let body = read(req.into_body(), len, limits.small_body, limits.small_read).await?;
            let slot = state.reviews.deciding().await.ok_or(Reject::Busy)?;
            Ok((slot, body))
        }
        Declared::Large(len) => {
            let mut slot = state.reviews.reading(activity).await.ok_or(Reject::Busy)?;
            let body = read(req.into_body(), len, limits.body_cap, limits.request).await;
            slot.read();
            Ok((slot, body?))
        }
    }
}

/// Reads a body of `capacity` declared bytes, at most `cap`, within `deadline`.
async fn read(
    body: Incoming,
    capacity: usize,
    cap: usize,
    deadline: Duration,
) -> Result<Bytes, Reject> {
    tokio::time::timeout(deadline, collect(body, capacity, cap))
        .await
        .unwrap_or(Err(Reject::Timeout))
}

/// The body in one buffer of its declared size: hyper's own collection keeps the chunks and then
/// copies them, twice the body at its peak.
async fn collect(mut body: Incoming, capacity: usize, cap: usize) -> Result<Bytes, Reject> {
    let mut out = Vec::with_capacity(capacity);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| Reject::Read)?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > cap {
                return Err(Reject::TooLarge);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(out))
}

/// `application/json`, with any parameters (`; charset=utf-8`), in any case.
fn is_json(content_type: Option<&header::HeaderValue>) -> bool {
    content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// The structured line per review: what the user sees on the pod, the request identity, and how
/// the VM was judged. `lookup` is empty when no lookup was needed.
fn log_review(reviewed: &Reviewed, lookup: &str, elapsed: Duration) {
    let (outcome, reason) = match &reviewed.outcome {
        Outcome::Injected => ("injected", ""),
        Outcome::Skipped(reason) => ("skipped", reason.as_str()),
        Outcome::Error(error) => ("error", error.as_str()),
    };
    let (namespace, generate_name, vm) = (
        reviewed.namespace.as_deref().unwrap_or_default(),
        reviewed.generate_name.as_deref().unwrap_or_default(),
        reviewed.vm.as_deref().unwrap_or_default(),
    );
    let source = reviewed.source.map_or("", |s| s.as_str());
    let oversized = reviewed
        .oversized
        .map(|o| o.to_string())
        .unwrap_or_default();
    let oversized = oversized.as_str();
    let (scrape, scrape_reason) = reviewed
        .scrape
        .map_or(("", ""), |s| (s.path.as_str(), s.reason.as_str()));
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    let dry_run = reviewed.dry_run;
    let ignored = reviewed.ignored.join(",");
    let ignored = ignored.as_str();
    let uid = reviewed.uid.as_str();
    // A tracing event's level is part of its static callsite, so the two levels are two events.
    macro_rules! reviewed {
        ($level:expr) => {
            tracing::event!(
                $level,
                uid,
                namespace,
                generate_name,
                vm,
                outcome,
                reason,
                source,
                lookup,
                scrape,
                scrape_reason,
                oversized,
                ignored,
                dry_run,
                latency_ms,
                "Reviewed pod"
            )
        };
    }
    if matches!(reviewed.outcome, Outcome::Error(_)) {
        reviewed!(tracing::Level::WARN);
    } else {
        reviewed!(tracing::Level::INFO);
    }
}

// === impl Reject ===

impl Reject {
    fn response(&self) -> Response<Full<Bytes>> {
        match self {
            Reject::ContentType => text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type must be application/json\n",
            ),
            Reject::TooLarge => text(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n"),
            Reject::Timeout => text(StatusCode::REQUEST_TIMEOUT, "body not received in time\n"),
            Reject::Read => text(StatusCode::BAD_REQUEST, "failed to read body\n"),
            Reject::Busy => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many reviews at once\n",
            ),
        }
    }
}

fn json(body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_must_be_json() {
        let ok = [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
        ];
        for value in ok {
            assert!(
                is_json(Some(&header::HeaderValue::from_static(value))),
                "{value}"
            );
        }
        let bad = ["text/plain", "application/jsonx", "application/yaml", ""];
        for value in bad {
            assert!(
                !is_json(Some(&header::HeaderValue::from_static(value))),
                "{value}"
            );
        }
        assert!(!is_json(None));
    }

    #[test]
    fn the_declared_length_says_whether_the_body_is_read_before_a_slot() {
        let limits = Limits::default();
        let (small, cap) = (limits.small_body, limits.body_cap);
        let (json, text) = ("application/json", "text/plain");
        let (at_small, past_small, at_cap, past_cap) = (
            small.to_string(),
            (small + 1).to_string(),
            cap.to_string(),
            (cap + 1).to_string(),
        );
        /// Content-Type, Content-Length; what the head declares.
        type Row<'a> = (&'a str, Option<&'a str>, Result<Declared, Reject>);
        let table: [Row<'_>; 8] = [
            (json, Some("15010"), Ok(Declared::Small(15010))),
            (json, Some("0"), Ok(Declared::Small(0))),
            (json, Some(&at_small), Ok(Declared::Small(small))),
            (json, Some(&past_small), Ok(Declared::Large(small + 1))),
            (json, Some(&at_cap), Ok(Declared::Large(cap))),
            (json, Some(&past_cap), Err(Reject::TooLarge)),
            (json, None, Ok(Declared::Large(0))),
            (text, Some("15010"), Err(Reject::ContentType)),
        ];
        for (content_type, length, want) in table {
            let mut headers = http::HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, content_type.parse().unwrap());
            if let Some(length) = length {
                headers.insert(header::CONTENT_LENGTH, length.parse().unwrap());
            }
            assert_eq!(
                Declared::of(&headers, &limits),
                want,
                "{content_type} {length:?}"
            );
        }
    }

    #[test]
    fn rejections_map_to_statuses() {
        let cases = [
            (Reject::ContentType, StatusCode::UNSUPPORTED_MEDIA_TYPE),
            (Reject::TooLarge, StatusCode::PAYLOAD_TOO_LARGE),
            (Reject::Timeout, StatusCode::REQUEST_TIMEOUT),
            (Reject::Read, StatusCode::BAD_REQUEST),
            (Reject::Busy, StatusCode::SERVICE_UNAVAILABLE),
        ];
        for (reject, status) in cases {
            assert_eq!(reject.response().status(), status, "{reject:?}");
        }
    }
}
