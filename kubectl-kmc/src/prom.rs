//! The Prometheus HTTP API (`GET /api/v1/query`) over HTTP/1.1, plain or TLS ([`tls`]): the only
//! module that talks to Prometheus. An instant query answers an instant vector ([`Prometheus::query`])
//! or, for a range or subquery expression, a range vector ([`Prometheus::query_series`]).
//!
//! An answer is read up to a byte cap ([`Access::max_bytes`]) and never whole into memory first,
//! and credentials never reach an error: the URL's userinfo becomes a Basic `Authorization`
//! header and is cut from every URL this module prints ([`redact`]), as is its query.

mod tls;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

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
    authority: String,
    prefix: String,
    /// `Some` for https: the configuration and the name the certificate must carry.
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    /// The whole `Authorization` header: Bearer from `--prometheus-token`, Basic from the URL.
    authorization: Option<String>,
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
        let authorization = match (userinfo, &access.token) {
            (Some(_), Some(_)) => return Err(PromError::TwoCredentials(shown)),
            (Some(info), None) => Some(basic(info)),
            (None, Some(token)) => Some(format!("Bearer {token}")),
            (None, None) => None,
        };
        let tls = if https {
            let host = authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']');
            let name = ServerName::try_from(host.to_owned()).map_err(|_| bad())?;
            Some((tls::client_config(access.ca_file.as_deref())?, name))
        } else {
            None
        };
        let port = authority.port_u16().unwrap_or(default_port);
        Ok(Self {
            url: shown.trim_end_matches('/').to_owned(),
            authority: format!("{}:{port}", authority.host()),
            prefix: uri.path().trim_end_matches('/').to_owned(),
            tls,
            authorization,
            max_bytes: access.max_bytes,
            time: time.to_owned(),
        })
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
            "{}/api/v1/query?query={}&time={}",
            self.prefix,
            encode(expr),
            encode(&self.time)
        );
        let timeout = PromError::Timeout {
            url: self.url.clone(),
        };
        let (status, body) = tokio::time::timeout(QUERY_TIMEOUT, self.get(&path))
            .await
            .map_err(|_| timeout)??;
        parse_response(&self.url, expr, status, &body)
    }

    async fn get(&self, path: &str) -> Result<(StatusCode, Bytes), PromError> {
        let stream = TcpStream::connect(&self.authority)
            .await
            .map_err(|e| self.unreachable(e.to_string()))?;
        let Some((config, name)) = &self.tls else {
            return self.send(stream, path).await;
        };
        let stream = tokio_rustls::TlsConnector::from(config.clone())
            .connect(name.clone(), stream)
            .await
            .map_err(|e| PromError::Tls {
                reason: format!("{}: {e}", self.url),
            })?;
        self.send(stream, path).await
    }

    fn unreachable(&self, reason: String) -> PromError {
        PromError::Unreachable {
            url: self.url.clone(),
            reason,
        }
    }

    async fn send<S>(&self, stream: S, path: &str) -> Result<(StatusCode, Bytes), PromError>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let unreachable = |e: &dyn std::fmt::Display| self.unreachable(e.to_string());
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(&e))?;
        // The connection task ends when the response has been read and the sender dropped.
        tokio::spawn(connection);
        let mut request = Request::get(path)
            .header(http::header::HOST, &self.authority)
            .header(http::header::ACCEPT, "application/json");
        if let Some(authorization) = &self.authorization {
            request = request.header(http::header::AUTHORIZATION, authorization);
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|e| unreachable(&e))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| unreachable(&e))?;
        let status = response.status();
        let mut body = response.into_body();
        let mut read = BytesMut::new();
        // Frame by frame, so that an answer past the cap is dropped before it is all in memory.
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| unreachable(&e))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if (read.len() + data.len()) as u64 > self.max_bytes {
                return Err(PromError::TooLarge {
                    url: self.url.clone(),
                    max_bytes: self.max_bytes,
                });
            }
            read.extend_from_slice(&data);
        }
        Ok((status, read.freeze()))
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

fn not_prometheus(url: &str, reason: String) -> PromError {
    PromError::NotPrometheus {
        url: url.to_owned(),
        reason,
    }
}

/// The API's JSON envelope to its `data`, or the error it carries.
fn parse_response(
    url: &str,
    query: &str,
    status: StatusCode,
    body: &[u8],
) -> Result<Value, PromError> {
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        return Err(PromError::Denied {
            url: url.to_owned(),
            status,
        });
    }
    let mut json: Value = serde_json::from_slice(body)
        .map_err(|_| not_prometheus(url, format!("HTTP {status}, not JSON")))?;
    if json["status"] != "success" {
        return Err(PromError::Rejected {
            query: query.to_owned(),
            status,
            message: json["error"].as_str().unwrap_or("no error text").to_owned(),
        });
    }
    Ok(json["data"].take())
}

/// The results of `data`, when they are of `kind`.
fn results<'a>(url: &str, data: &'a Value, kind: &str) -> Result<&'a Vec<Value>, PromError> {
    if data["resultType"] != kind {
        return Err(not_prometheus(
            url,
            format!(
                "result type {} where a {kind} was expected",
                data["resultType"]
            ),
        ));
    }
    data["result"]
        .as_array()
        .ok_or_else(|| not_prometheus(url, "no result array".into()))
}

fn parse_vector(url: &str, data: &Value) -> Result<Vec<Sample>, PromError> {
    results(url, data, "vector")?
        .iter()
        .map(|r| sample(r).ok_or_else(|| not_prometheus(url, format!("malformed sample {r}"))))
        .collect()
}

fn parse_matrix(url: &str, data: &Value) -> Result<Vec<Series>, PromError> {
    results(url, data, "matrix")?
        .iter()
        .map(|r| series(r).ok_or_else(|| not_prometheus(url, format!("malformed series {r}"))))
        .collect()
}

fn labels(result: &Value) -> Option<BTreeMap<String, String>> {
    result["metric"]
        .as_object()?
        .iter()
        .map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

/// `[1712345678.123, "2.5"]` to its time and value.
fn point(pair: &Value) -> Option<(f64, f64)> {
    Some((pair.get(0)?.as_f64()?, pair.get(1)?.as_str()?.parse().ok()?))
}

fn sample(result: &Value) -> Option<Sample> {
    let (_, value) = point(&result["value"])?;
    Some(Sample {
        labels: labels(result)?,
        value,
    })
}

fn series(result: &Value) -> Option<Series> {
    let points = result["values"]
        .as_array()?
        .iter()
        .map(point)
        .collect::<Option<_>>()?;
    Some(Series {
        labels: labels(result)?,
        points,
    })
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
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let access = Access::default();
        let cases = [
            (
                "http://127.0.0.1:9090/",
                Some(("127.0.0.1:9090", "", false)),
            ),
            (
                "http://prom.example/sub/path",
                Some(("prom.example:80", "/sub/path", false)),
            ),
            ("https://prom.example", Some(("prom.example:443", "", true))),
            ("https://[::1]:9091/p/", Some(("[::1]:9091", "/p", true))),
            ("ftp://x:9090", None),
            ("x:9090", None),
        ];
        for (url, want) in cases {
            let got = Prometheus::new(url, "0", &access).ok();
            let got = got
                .as_ref()
                .map(|p| (p.authority.as_str(), p.prefix.as_str(), p.tls.is_some()));
            assert_eq!(got, want, "{url}");
        }
    }

    fn vector(body: &[u8]) -> Result<Vec<Sample>, PromError> {
        let data = parse_response("u", "q", StatusCode::OK, body)?;
        parse_vector("u", &data)
    }

    #[test]
    fn responses() {
        let ok = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"pod":"p"},"value":[1,"2.5"]}]}}"#;
        let got = vector(ok).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].label("pod"), got[0].label("x"), got[0].value),
            ("p", "", 2.5)
        );
        let bad = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        let error = parse_response("u", "q", StatusCode::BAD_REQUEST, bad).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Prometheus rejected the query q: 400 Bad Request parse error"
        );
        let html = b"<html>";
        assert!(matches!(vector(html), Err(PromError::NotPrometheus { .. })));
    }

    #[test]
    fn range_vectors() {
        let ok = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"pod":"p"},"values":[[3600,"1"],[7200.5,"2e3"]]}]}}"#;
        let data = parse_response("u", "q", StatusCode::OK, ok).unwrap();
        let got = parse_matrix("u", &data).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].label("pod"), "p");
        assert_eq!(got[0].points, [(3600.0, 1.0), (7200.5, 2000.0)]);
        let error = parse_vector("u", &data).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Prometheus at u answered something that is not its API: result type \"matrix\" where a vector was expected"
        );
        let broken = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{},"values":[[1,"x"]]}]}}"#;
        let data = parse_response("u", "q", StatusCode::OK, broken).unwrap();
        assert!(matches!(
            parse_matrix("u", &data),
            Err(PromError::NotPrometheus { .. })
        ));
    }

    #[test]
    fn credentials_never_reach_a_message() {
        let cases = [
            ("http://prom:9090", "http://prom:9090"),
            ("https://alice:s3cret@prom:9090/p", "https://prom:9090/p"),
            ("https://a@b:c@prom/p?token=x#f", "https://prom/p"),
            ("prom:9090?x", "prom:9090"),
            ("http://u:p@h/\u{1b}[2J", "http://h/\\u{1b}[2J"),
        ];
        for (url, want) in cases {
            assert_eq!(redact(url), want, "{url}");
        }
        let access = Access::default();
        let error = Prometheus::new("ftp://alice:s3cret@prom", "0", &access).unwrap_err();
        assert_eq!(
            error.to_string(),
            "--prometheus ftp://prom: not an http:// or https:// URL without a query"
        );
        let error = Prometheus::new("http://prom/?token=s3cret", "0", &access).unwrap_err();
        assert!(!error.to_string().contains("s3cret"), "{error}");
        let prometheus = Prometheus::new("http://alice:s%33cret@prom:9090", "0", &access).unwrap();
        assert_eq!(prometheus.url, "http://prom:9090");
        assert_eq!(prometheus.authority, "prom:9090");
        // base64("alice:s3cret")
        assert_eq!(
            prometheus.authorization.as_deref(),
            Some("Basic YWxpY2U6czNjcmV0")
        );
        assert!(!format!("{prometheus:?}").contains("s3cret"));
        let token = Access {
            token: Some("t".into()),
            ..Access::default()
        };
        assert!(matches!(
            Prometheus::new("http://alice:s3cret@prom", "0", &token),
            Err(PromError::TwoCredentials(_))
        ));
        let bearer = Prometheus::new("http://prom", "0", &token).unwrap();
        assert_eq!(bearer.authorization.as_deref(), Some("Bearer t"));
    }

    #[test]
    fn encoding() {
        assert_eq!(encode(r#"a{b="c d"}"#), "a%7Bb%3D%22c%20d%22%7D");
    }
}
