//! Prometheus' instant-query API with canned answers, served by the fake at `/api/v1/query` (the
//! fake's own address given as a Prometheus URL) and behind the API server's service proxy
//! (`…/services/<name>:<port>/proxy/api/v1/query`), as a client that finds Prometheus in the
//! cluster reaches it.
use std::sync::{Arc, Mutex};

use http::StatusCode;
use serde_json::{Value, json};

use crate::{Answer, Request, lock};

/// The canned answers; clones share them.
#[derive(Clone, Debug, Default)]
pub struct Prometheus(Arc<Mutex<Canned>>);

#[derive(Debug, Default)]
struct Canned {
    answers: Vec<(String, Vec<Value>)>,
    error: Option<String>,
}

// === impl Prometheus ===

impl Prometheus {
    /// A query that contains `key` gets `samples`, after those of the keys added before it that
    /// it contains too.
    pub fn answer(&self, key: impl Into<String>, samples: Vec<Value>) {
        lock(&self.0).answers.push((key.into(), samples));
    }

    /// Every query is answered 400 with `error`, as Prometheus answers one it cannot run.
    pub fn fail(&self, error: impl Into<String>) {
        lock(&self.0).error = Some(error.into());
    }

    /// The canned answers, to serve the same ones elsewhere.
    pub fn answers(&self) -> Vec<(String, Vec<Value>)> {
        lock(&self.0).answers.clone()
    }

    pub(crate) fn is_query(request: &Request) -> bool {
        request.path == "/api/v1/query" || request.path.ends_with("/proxy/api/v1/query")
    }

    pub(crate) fn reply(&self, request: &Request) -> Answer {
        let canned = lock(&self.0);
        if let Some(error) = &canned.error {
            let body = json!({"status": "error", "errorType": "bad_data", "error": error});
            return Answer::json(StatusCode::BAD_REQUEST, body.to_string());
        }
        let query = request.param("query").unwrap_or_default();
        let result: Vec<&Value> = canned
            .answers
            .iter()
            .filter(|(key, _)| query.contains(key.as_str()))
            .flat_map(|(_, samples)| samples)
            .collect();
        let body = json!({"status": "success", "data": {"resultType": "vector", "result": result}});
        Answer::ok(&body)
    }
}
