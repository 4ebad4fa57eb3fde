//! The Prometheus HTTP API (`GET /api/v1/query`) over HTTP/1.1, plain or TLS ([`tls`]), directly
//! or through the API server ([`transport`], [`discover`]): the only module that talks to
//! Prometheus. An instant query answers an instant vector ([`Prometheus::query`])
//! or, for a range or subquery expression, a range vector ([`Prometheus::query_series`]).
//!
//! An answer is read up to a byte cap ([`Access::max_bytes`]) and never whole into memory first,
//! and credentials never reach an error: the URL's userinfo becomes a Basic `Authorization`
//! header and is cut from every URL this module prints ([`redact`]), as is its query.

mod answer;
pub mod discover;
mod tls;
mod transport;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use http::{StatusCode, Uri};
use serde_json::Value;

use answer::{parse_matrix, parse_response, parse_vector};
use transport::Transport;

/// How long one query may take, connection included.
const QUERY_TIMEOUT: Duration = Duration::from_secs(60);

/// The default cap on one answer, in MiB. The largest answer `recommend` asks for is the
/// hourly trends of every component of every pod over the range: about 5 KiB per component and
/// pod for 7 days, so 64 MiB holds some 1,500 VMs' worth; parsed, an answer takes about six
/// times its size in memory, so the cap also bounds the plugin's memory to a few hundred MiB.
pub const DEFAULT_MAX_MIB: u64 = 64;

/// Why a query gave no answer; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum PromError {
    #[error("--prometheus {0}: not an http:// or https:// URL without a query")]
    Url(String),
    #[error(
        "--prometheus {0}: give credentials either in the URL or with --prometheus-token, not both"
    )]
    TwoCredentials(String),
    #[error("TLS to Prometheus: {reason}")]
    Tls { reason: String },
    #[error("Prometheus at {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("Prometheus at {url} did not answer within {}s", QUERY_TIMEOUT.as_secs())]
    Timeout { url: String },
    #[error("Prometheus rejected the query {query}: {status} {message}")]
    Rejected {
        query: String,
        status: StatusCode,
        message: String,
    },
    #[error("Prometheus at {url} refused the request: {status} (check --prometheus-token)")]
    Denied { url: String, status: StatusCode },
    #[error("Prometheus at {url} answered something that is not its API: {reason}")]
    NotPrometheus { url: String, reason: String },
    #[error(
        "Prometheus at {url} answered more than {} MiB, the cap that keeps this plugin's memory bounded: narrow the question (-n, a VM, a shorter --range) or raise --prometheus-max-mib",
        max_bytes / (1024 * 1024)
    )]
    TooLarge { url: String, max_bytes: u64 },
}

/// One sample of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    /// A sample of `value` with `labels`, as tests build them.
    pub fn new(labels: &[(&str, &str)], value: f64) -> Self {
        Self {
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            value,
        }
    }

    /// The value of `name`, empty when the series lacks it.
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

/// One series of a range vector: its labels and its points (Unix seconds, value), oldest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// The value of `name`, empty when the series lacks it.
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

/// How to reach Prometheus beyond its URL.
#[derive(Clone)]
pub struct Access {
    /// PEM CA certificates to trust besides the system's, for https.
    pub ca_file: Option<PathBuf>,
    /// Sent as `Authorization: Bearer` (e.g. to OpenShift's thanos-querier).
    pub token: Option<String>,
    /// The most bytes one answer may have.
    pub max_bytes: u64,
}

impl Default for Access {
    fn default() -> Self {
        Self {
            ca_file: None,
            token: None,
            max_bytes: DEFAULT_MAX_MIB * 1024 * 1024,
        }
    }
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Access")
            .field("ca_file", &self.ca_file)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

/// A Prometheus server, and the instant every query is evaluated at.
#[derive(Clone)]
pub struct Prometheus {
    /// The URL without credentials or query, for messages.
    url: String,
    transport: Transport,
    max_bytes: u64,
    /// Unix seconds or RFC 3339, as the API's `time` parameter takes it.
    time: String,
}

impl std::fmt::Debug for Prometheus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Prometheus")
            .field("url", &self.url)
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

impl Prometheus {
    /// `url` is `http[s]://host[:port][/prefix]`; queries are evaluated at `time` (Unix seconds or
    /// RFC 3339, passed to Prometheus as is).
    pub fn new(url: &str, time: &str, access: &Access) -> Result<Self, PromError> {
        let shown = redact(url);
        let bad = || PromError::Url(shown.clone());
        let uri: Uri = url.parse().map_err(|_| bad())?;
        let (https, default_port) = match uri.scheme_str() {
            Some("http") => (false, 80),
            Some("https") => (true, 443),
            _ => return Err(bad()),
        };
        if uri.query().is_some() || url.contains('#') {
            return Err(bad());
        }
        let authority = uri.authority().ok_or_else(bad)?;
        let userinfo = authority.as_str().rsplit_once('@').map(|(info, _)| info);
        // The bearer token of `--prometheus-token`, or Basic from the URL's userinfo.
        let authorization = match (userinfo, &access.token) {
            (Some(_), Some(_)) => return Err(PromError::TwoCredentials(shown)),
            (Some(info), None) => Some(basic(info)),
            (None, Some(token)) => Some(format!("Bearer {token}")),
            (None, None) => None,
        };
        let origin = format!(
            "{}://{}:{}{}",
            if https { "https" } else { "http" },
            authority.host(),
            authority.port_u16().unwrap_or(default_port),
            uri.path().trim_end_matches('/')
        );
        let client = reqwest::Client::builder()
            .http1_only()
            .timeout(QUERY_TIMEOUT)
            .tls_backend_preconfigured(tls::client_config(access.ca_file.as_deref())?)
            .build()
            .map_err(|e| PromError::Tls {
                reason: e.to_string(),
            })?;
        Ok(Self {
            url: shown.trim_end_matches('/').to_owned(),
            transport: Transport::Http {
                client,
                origin,
                authorization,
            },
            max_bytes: access.max_bytes,
            time: time.to_owned(),
        })
    }

    /// Prometheus behind the API server's service proxy at `path`, reached with the kubeconfig's
    /// credentials; `shown` names it in messages.
    pub fn through_api_server(
        client: kube::Client,
        path: String,
        shown: String,
        time: &str,
        max_bytes: u64,
    ) -> Self {
        Self {
            url: shown,
            transport: Transport::ApiServer { client, path },
            max_bytes,
            time: time.to_owned(),
        }
    }

    /// The URL as shown in messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Evaluates `expr`, which must give an instant vector.
    pub async fn query(&self, expr: &str) -> Result<Vec<Sample>, PromError> {
        let data = self.evaluate(expr).await?;
        parse_vector(&self.url, &data)
    }

    /// Evaluates `expr`, which must give a range vector (a range selector or a subquery).
    pub async fn query_series(&self, expr: &str) -> Result<Vec<Series>, PromError> {
        let data = self.evaluate(expr).await?;
        parse_matrix(&self.url, &data)
    }

    /// The answer's `data` object.
    async fn evaluate(&self, expr: &str) -> Result<Value, PromError> {
        let path = format!(
            "/api/v1/query?query={}&time={}",
            encode(expr),
            encode(&self.time)
        );
        let timeout = PromError::Timeout {
            url: self.url.clone(),
        };
        let get = self.transport.get(&self.url, &path, self.max_bytes);
        let (status, body) = tokio::time::timeout(QUERY_TIMEOUT, get)
            .await
            .map_err(|_| timeout)??;
        parse_response(&self.url, expr, status, &body)
    }
}

/// `url` as it may be shown: without userinfo (`user:password@`), query or fragment.
pub fn redact(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let shown = if scheme.is_empty() {
        format!("{authority}{path}")
    } else {
        format!("{scheme}://{authority}{path}")
    };
    crate::text::escape(&shown).into_owned()
}

/// The `Authorization` header for the URL's `user:password` (percent-decoded, RFC 3986 §3.2.1).
fn basic(userinfo: &str) -> String {
    // `ByteString` serialises as base64: the encoder kube's own types use.
    let credentials = k8s_openapi::ByteString(percent_decode(userinfo));
    let encoded = serde_json::to_value(credentials)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    format!("Basic {encoded}")
}

fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}
/// Percent-encoding of a query parameter (RFC 3986 unreserved characters pass).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
