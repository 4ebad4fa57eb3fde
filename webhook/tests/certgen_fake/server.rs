//! The fake's HTTP side: one `match` over method and route, and kube-apiserver's answers.
use std::{
    collections::BTreeMap,
    convert::Infallible,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use k8s_openapi::api::{admissionregistration::v1::MutatingWebhookConfiguration, core::v1::Secret};
use serde_json::{Value, json};

use super::{Fault, Recorded, State, stamp, str_at};

const SECRETS: &str = "/api/v1/namespaces/";
const MWC_RESOURCE: &str = "mutatingwebhookconfigurations.admissionregistration.k8s.io";
const MWCS: &str = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/";

pub(super) async fn answer(
    request: Request<Incoming>,
    state: Arc<Mutex<State>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let recorded = Recorded {
        method: parts.method.clone(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        content_type: content_type.clone(),
        body: serde_json::from_slice(&body).ok(),
    };
    let Ok(mut state) = state.lock() else {
        return Ok(status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "poisoned",
        ));
    };
    state.requests.push(recorded);
    let path = parts.uri.path();
    if let Some(fault) = take_fault(&mut state, &parts.method, path) {
        return Ok(match fault.text {
            Some(text) => respond(fault.status, "text/plain", text),
            None => status(fault.status, reason(fault.status), "injected by the test"),
        });
    }
    let patch = PatchKind::of(&content_type);
    Ok(match (&parts.method, route(path)) {
        (&Method::GET, Route::Secret(ns, name)) => {
            let message = not_found("secrets", &name);
            get(&state.secrets, &(ns, name), &message)
        }
        (&Method::POST, Route::Secrets(ns)) => create_secret(&mut state, ns, &body),
        (&Method::PUT, Route::Secret(ns, name)) => replace_secret(&mut state, (ns, name), &body),
        (&Method::GET, Route::Config(name)) => {
            get(&state.configs, &name, &not_found(MWC_RESOURCE, &name))
        }
        (&Method::PATCH, Route::Config(name)) => patch_config(&mut state, name, patch, &body),
        (_, Route::Secret(..) | Route::Secrets(_) | Route::Config(_)) => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "not served by the fake",
        ),
        (_, Route::Other) => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        ),
    })
}

/// The URLs certgen may use.
enum Route {
    Secret(String, String),
    Secrets(String),
    Config(String),
    Other,
}

fn route(path: &str) -> Route {
    if let Some(rest) = path.strip_prefix(SECRETS) {
        match rest.split('/').collect::<Vec<_>>()[..] {
            [ns, "secrets", name] => return Route::Secret(ns.into(), name.into()),
            [ns, "secrets"] => return Route::Secrets(ns.into()),
            _ => {}
        }
    }
    match path.strip_prefix(MWCS) {
        Some(name) if !name.contains('/') => Route::Config(name.into()),
        _ => Route::Other,
    }
}

/// The patch types kube-apiserver accepts, by Content-Type.
#[derive(Clone, Copy)]
enum PatchKind {
    Json,
    Merge,
    Other,
}

impl PatchKind {
    fn of(content_type: &str) -> PatchKind {
        match content_type {
            "application/json-patch+json" => PatchKind::Json,
            "application/merge-patch+json" => PatchKind::Merge,
            _ => PatchKind::Other,
        }
    }
}

fn take_fault(state: &mut State, method: &Method, path: &str) -> Option<Fault> {
    let fault = state
        .faults
        .iter_mut()
        .find(|f| f.times > 0 && f.method == method && f.path == path)?;
    fault.times = fault.times.saturating_sub(1);
    Some(fault.clone())
}

/// kube-apiserver's wording for a missing object.
fn not_found(resource: &str, name: &str) -> String {
    format!("{resource} \"{name}\" not found")
}

fn get<K: Ord>(objects: &BTreeMap<K, Value>, key: &K, not_found: &str) -> Response<Full<Bytes>> {
    match objects.get(key) {
        Some(object) => respond(StatusCode::OK, "application/json", object.to_string()),
        None => status(StatusCode::NOT_FOUND, "NotFound", not_found),
    }
}

fn create_secret(state: &mut State, namespace: String, body: &[u8]) -> Response<Full<Bytes>> {
    let Some(mut secret) = valid_secret(body) else {
        return status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "not a valid kubernetes.io/tls Secret",
        );
    };
    let key = (namespace.clone(), str_at(&secret, "/metadata/name"));
    if state.secrets.contains_key(&key) {
        return status(
            StatusCode::CONFLICT,
            "AlreadyExists",
            "secrets already exists",
        );
    }
    secret["metadata"]["namespace"] = Value::String(namespace);
    stamp(state, &mut secret, None);
    state.secrets.insert(key, secret.clone());
    respond(StatusCode::CREATED, "application/json", secret.to_string())
}

fn replace_secret(state: &mut State, key: (String, String), body: &[u8]) -> Response<Full<Bytes>> {
    let Some(mut secret) = valid_secret(body) else {
        return status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "not a valid kubernetes.io/tls Secret",
        );
    };
    let Some(old) = state.secrets.get(&key).cloned() else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &not_found("secrets", &key.1),
        );
    };
    // An update with a resourceVersion is conditional on it (optimistic concurrency).
    let sent = secret.pointer("/metadata/resourceVersion").cloned();
    if sent.is_some() && sent.as_ref() != old.pointer("/metadata/resourceVersion") {
        return status(
            StatusCode::CONFLICT,
            "Conflict",
            "the object has been modified",
        );
    }
    if secret.get("type") != old.get("type") {
        return status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "type: field is immutable",
        );
    }
    stamp(state, &mut secret, Some(&old));
    state.secrets.insert(key, secret.clone());
    respond(StatusCode::OK, "application/json", secret.to_string())
}

fn patch_config(
    state: &mut State,
    name: String,
    kind: PatchKind,
    body: &[u8],
) -> Response<Full<Bytes>> {
    let Some(old) = state.configs.get(&name).cloned() else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &not_found(MWC_RESOURCE, &name),
        );
    };
    let mut new = old.clone();
    let applied = match kind {
        PatchKind::Json => serde_json::from_slice::<json_patch::Patch>(body)
            .map_err(|e| e.to_string())
            .and_then(|p| json_patch::patch(&mut new, &p).map_err(|e| e.to_string())),
        PatchKind::Merge => serde_json::from_slice::<Value>(body)
            .map(|p| json_patch::merge(&mut new, &p))
            .map_err(|e| e.to_string()),
        PatchKind::Other => {
            return status(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                "the fake serves json and merge patches only",
            );
        }
    };
    // 422 is what kube-apiserver answers for a JSON Patch that does not apply (e.g. a failed `test`).
    if let Err(error) = applied {
        return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", &error);
    }
    let typed = serde_json::from_value::<MutatingWebhookConfiguration>(new.clone());
    if typed.is_err() || new.pointer("/metadata/name") != old.pointer("/metadata/name") {
        return status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "patched object is invalid",
        );
    }
    stamp(state, &mut new, Some(&old));
    state.configs.insert(name, new.clone());
    respond(StatusCode::OK, "application/json", new.to_string())
}

/// The body as a Secret the API server would accept: it parses, and a `kubernetes.io/tls` one
/// carries `tls.crt` and `tls.key` (apiserver validation of that type).
fn valid_secret(body: &[u8]) -> Option<Value> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let secret: Secret = serde_json::from_value(value.clone()).ok()?;
    secret.metadata.name.as_ref()?;
    let data = secret.data.unwrap_or_default();
    let tls_ok = data.contains_key("tls.crt") && data.contains_key("tls.key");
    (secret.type_.as_deref() != Some("kubernetes.io/tls") || tls_ok).then_some(value)
}

fn reason(code: StatusCode) -> &'static str {
    match code {
        StatusCode::FORBIDDEN => "Forbidden",
        StatusCode::NOT_FOUND => "NotFound",
        StatusCode::CONFLICT => "Conflict",
        StatusCode::UNPROCESSABLE_ENTITY => "Invalid",
        _ => "InternalError",
    }
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response<Full<Bytes>> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": message, "reason": reason, "code": code.as_u16()});
    respond(code, "application/json", body.to_string())
}

fn respond(code: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = code;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}
