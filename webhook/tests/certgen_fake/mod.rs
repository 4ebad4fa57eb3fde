//! A fake Kubernetes API server on 127.0.0.1 for `certgen_cluster*.rs`: it stands in for a real
//! API server, because none can run where these tests run (no cluster, no kube-apiserver or etcd
//! binaries on this machine). It serves only what certgen uses, with the real wire shapes:
//! Secrets (GET, POST, PUT) and MutatingWebhookConfigurations (GET, PATCH with a JSON Patch or a
//! merge patch), answering errors as `Status` objects with the codes kube-apiserver uses. State is
//! in memory, every request is recorded, and faults can be injected per method and path.
//!
//! What it does not model: authentication, admission, field managers, strategic-merge patches
//! (answered 415, so a client that relies on them shows up), and most validation.
#![allow(dead_code)] // Not every scenario uses every helper.

pub mod scenario;
mod server;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
};

use http::{Method, StatusCode};
use hyper::{server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::{admissionregistration::v1::MutatingWebhookConfiguration, core::v1::Secret};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// One request as the fake saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Option<Value>,
}

/// An injected failure: the next `times` requests matching method and path get this answer.
#[derive(Clone, Debug)]
pub struct Fault {
    pub method: Method,
    pub path: String,
    pub status: StatusCode,
    /// `None`: a JSON `Status`; `Some`: this body as text/plain (a proxy in the way).
    pub text: Option<String>,
    pub times: usize,
}

/// The objects, the request log and the faults.
#[derive(Debug, Default)]
pub struct State {
    pub secrets: BTreeMap<(String, String), Value>,
    pub configs: BTreeMap<String, Value>,
    pub requests: Vec<Recorded>,
    pub faults: Vec<Fault>,
    resource_version: u64,
}

/// The running fake.
#[derive(Debug)]
pub struct FakeApi {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

// === impl FakeApi ===

impl FakeApi {
    pub async fn start() -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        // Ends with the test's runtime.
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                let service = service_fn(move |request| server::answer(request, state.clone()));
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        FakeApi { addr, state }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// A client the way certgen's own would be, pointed at the fake over plain HTTP.
    pub fn client(&self) -> kube::Client {
        let url = format!("http://{}", self.addr).parse().unwrap();
        kube::Client::try_from(kube::Config::new(url)).unwrap()
    }

    /// A kubeconfig naming the fake, for running the binary.
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let config = json!({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": format!("http://{}", self.addr)}}],
            "users": [{"name": "fake", "user": {}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        });
        std::fs::write(&path, config.to_string()).unwrap();
        path
    }

    /// "METHOD path" of every request so far, in order.
    pub fn calls(&self) -> Vec<String> {
        let state = self.state();
        state
            .requests
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    pub fn secret(&self, namespace: &str, name: &str) -> Option<Secret> {
        let key = (namespace.to_owned(), name.to_owned());
        let value = self.state().secrets.get(&key).cloned()?;
        Some(serde_json::from_value(value).unwrap())
    }

    pub fn config(&self, name: &str) -> Option<MutatingWebhookConfiguration> {
        let value = self.state().configs.get(name).cloned()?;
        Some(serde_json::from_value(value).unwrap())
    }

    /// Seeds an object as if it had been created earlier.
    pub fn seed_secret(&self, secret: &Secret) {
        let mut value = serde_json::to_value(secret).unwrap();
        let mut state = self.state();
        let key = (
            str_at(&value, "/metadata/namespace"),
            str_at(&value, "/metadata/name"),
        );
        stamp(&mut state, &mut value, None);
        state.secrets.insert(key, value);
    }

    pub fn seed_config(&self, mut value: Value) {
        let mut state = self.state();
        let name = str_at(&value, "/metadata/name");
        stamp(&mut state, &mut value, None);
        state.configs.insert(name, value);
    }

    pub fn fail(&self, method: Method, path: &str, status: StatusCode, text: Option<&str>) {
        self.state().faults.push(Fault {
            method,
            path: path.to_owned(),
            status,
            text: text.map(str::to_owned),
            times: usize::MAX,
        });
    }

    pub fn fail_once(&self, method: Method, path: &str, status: StatusCode) {
        self.state().faults.push(Fault {
            method,
            path: path.to_owned(),
            status,
            text: None,
            times: 1,
        });
    }
}

/// Sets the server-owned metadata: a new resourceVersion; uid and creation time kept on update.
fn stamp(state: &mut State, object: &mut Value, old: Option<&Value>) {
    state.resource_version += 1;
    let metadata = &mut object["metadata"];
    metadata["resourceVersion"] = Value::String(state.resource_version.to_string());
    let uid = old.and_then(|o| o.pointer("/metadata/uid").cloned());
    metadata["uid"] = uid.unwrap_or_else(|| format!("uid-{}", state.resource_version).into());
    metadata["creationTimestamp"] = "2025-01-01T00:00:00Z".into();
}

fn str_at(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}
