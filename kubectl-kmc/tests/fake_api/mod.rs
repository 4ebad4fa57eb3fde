//! A fake Kubernetes API server (and Prometheus query endpoint) on loopback, plain HTTP: no
//! kube-apiserver can run where these tests run. It serves GET of objects and of lists (with
//! equality label selectors) from collections the test fills, answers a missing object with a
//! `Status` 404 as kube-apiserver does, a path marked forbidden with its 403, and
//! `/api/v1/query` (directly or under a service proxy path) with a canned vector.
#![allow(dead_code)] // Not every test uses every helper.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Default)]
pub struct State {
    /// Collection path (e.g. `/api/v1/namespaces/vms/pods`) to its objects.
    pub collections: BTreeMap<String, Vec<Value>>,
    /// Paths answered 403, with kube-apiserver's message.
    pub forbidden: BTreeMap<String, String>,
    /// Samples `/api/v1/query` returns for any query containing the key.
    pub prometheus: Vec<(String, Vec<Value>)>,
    /// When set, `/api/v1/query` answers 400 with this error text, as Prometheus does.
    pub prometheus_error: Option<String>,
    /// Every request path, in order.
    pub requests: Vec<String>,
    /// The API groups `/apis` lists (discovery), each at `v1`.
    pub api_groups: Vec<String>,
}

/// Accepts on a free loopback port from a thread and runtime of its own, until the process ends,
/// and runs `on_connection` for each connection in a task of its own; returns the address.
pub fn serve_loopback<F, Fut>(on_connection: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            tx.send(listener.local_addr().expect("addr")).expect("send");
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(on_connection(stream));
            }
        });
    });
    rx.recv().expect("loopback server address")
}

/// The running fake; it lives on its own thread and runtime until the process ends.
#[derive(Debug, Clone)]
pub struct FakeApi {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl FakeApi {
    pub fn start(state: State) -> FakeApi {
        let state = Arc::new(Mutex::new(state));
        let shared = state.clone();
        let addr = serve_loopback(move |stream| {
            let state = shared.clone();
            let service = service_fn(move |request| answer(request, state.clone()));
            async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            }
        });
        FakeApi { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig naming the fake, with `vms` as the context's namespace.
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let config = json!({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url()}}],
            "users": [{"name": "fake", "user": {}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": "vms"}}],
        });
        std::fs::write(&path, config.to_string()).expect("kubeconfig");
        path
    }

    /// The canned Prometheus answers.
    pub fn prometheus(&self) -> Vec<(String, Vec<Value>)> {
        self.state.lock().expect("state").prometheus.clone()
    }

    pub fn requests(&self) -> Vec<String> {
        self.state.lock().expect("state").requests.clone()
    }
}

async fn answer(
    request: Request<Incoming>,
    state: Arc<Mutex<State>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let Ok(mut state) = state.lock() else {
        return Ok(status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "poisoned",
        ));
    };
    state.requests.push(path.clone());
    // Also behind the API server's service proxy, as `kubectl kmc` reaches a Prometheus it found.
    if path == "/api/v1/query" || path.ends_with("/proxy/api/v1/query") {
        return Ok(prometheus(&state, &query));
    }
    if path == "/apis" {
        return Ok(respond(StatusCode::OK, groups(&state.api_groups)));
    }
    if let Some(message) = state.forbidden.get(&path) {
        return Ok(status(StatusCode::FORBIDDEN, "Forbidden", message));
    }
    if let Some(items) = state.collections.get(&path) {
        let selector = param(&query, "labelSelector");
        let items: Vec<&Value> = items.iter().filter(|o| matches(o, &selector)).collect();
        let list = json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items});
        return Ok(respond(StatusCode::OK, list.to_string()));
    }
    let (parent, name) = path.rsplit_once('/').unwrap_or_default();
    let found = state
        .collections
        .get(parent)
        .and_then(|items| items.iter().find(|o| o["metadata"]["name"] == name));
    Ok(match found {
        Some(object) => respond(StatusCode::OK, object.to_string()),
        None => {
            let resource = parent.rsplit('/').next().unwrap_or_default();
            status(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("{resource} \"{name}\" not found"),
            )
        }
    })
}

fn prometheus(state: &State, query: &str) -> Response<Full<Bytes>> {
    if let Some(error) = &state.prometheus_error {
        let body = json!({"status": "error", "errorType": "bad_data", "error": error});
        return respond(StatusCode::BAD_REQUEST, body.to_string());
    }
    let expr = param(query, "query");
    let result: Vec<Value> = state
        .prometheus
        .iter()
        .filter(|(key, _)| expr.contains(key.as_str()))
        .flat_map(|(_, samples)| samples.clone())
        .collect();
    let body = json!({"status": "success", "data": {"resultType": "vector", "result": result}});
    respond(StatusCode::OK, body.to_string())
}

/// An `APIGroupList` of `names`, each served at `v1`.
fn groups(names: &[String]) -> String {
    let groups: Vec<Value> = names
        .iter()
        .map(|name| {
            let version = json!({"groupVersion": format!("{name}/v1"), "version": "v1"});
            json!({"name": name, "versions": [version.clone()], "preferredVersion": version})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}).to_string()
}

/// An equality selector `a=b,c=d` against the object's labels.
fn matches(object: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let (key, value) = term.split_once('=').unwrap_or((term, ""));
        object["metadata"]["labels"][key] == value
    })
}

/// A decoded query parameter.
fn param(query: &str, name: &str) -> String {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| decode(v))
        .unwrap_or_default()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response<Full<Bytes>> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": message, "reason": reason, "code": code.as_u16()});
    respond(code, body.to_string())
}

fn respond(code: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = code;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
