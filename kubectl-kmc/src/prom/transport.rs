//! How a query reaches Prometheus: over HTTP(S) with reqwest, which honours `HTTPS_PROXY`,
//! `HTTP_PROXY` and `NO_PROXY` as kubectl does, or through the API server's service proxy with
//! the kubeconfig's credentials ([`super::discover`]). Either way an answer is read frame by
//! frame up to a byte cap, never whole into memory first.

use bytes::{Bytes, BytesMut};
use http::StatusCode;
use http_body_util::BodyExt as _;

use super::PromError;

/// Where requests go.
#[derive(Clone)]
pub enum Transport {
    /// `origin` is `scheme://host:port[/prefix]`, without credentials; `authorization` the
    /// whole header.
    Http {
        client: reqwest::Client,
        origin: String,
        authorization: Option<String>,
    },
    /// `path` is the service proxy's, e.g.
    /// `/api/v1/namespaces/monitoring/services/prometheus-operated:web/proxy`.
    ApiServer { client: kube::Client, path: String },
}

impl Transport {
    /// GETs `path_and_query` (which starts with `/`); `url` names Prometheus in errors.
    pub async fn get(
        &self,
        url: &str,
        path_and_query: &str,
        max_bytes: u64,
    ) -> Result<(StatusCode, Bytes), PromError> {
        let unreachable = |reason: String| PromError::Unreachable {
            url: url.to_owned(),
            reason,
        };
        match self {
            Transport::Http {
                client,
                origin,
                authorization,
            } => {
                let mut request = client
                    .get(format!("{origin}{path_and_query}"))
                    .header(http::header::ACCEPT, "application/json");
                if let Some(authorization) = authorization {
                    request = request.header(http::header::AUTHORIZATION, authorization);
                }
                let mut response = request.send().await.map_err(|e| http_error(url, &e))?;
                let mut body = Capped::new(url, max_bytes);
                while let Some(chunk) = response.chunk().await.map_err(|e| http_error(url, &e))? {
                    body.push(&chunk)?;
                }
                Ok((response.status(), body.read.freeze()))
            }
            Transport::ApiServer { client, path } => {
                let request = http::Request::get(format!("{path}{path_and_query}"))
                    .header(http::header::ACCEPT, "application/json")
                    .body(kube::client::Body::empty())
                    .map_err(|e| unreachable(e.to_string()))?;
                let response = client
                    .send(request)
                    .await
                    .map_err(|e| unreachable(e.to_string()))?;
                let status = response.status();
                let mut frames = response.into_body();
                let mut body = Capped::new(url, max_bytes);
                while let Some(frame) = frames.frame().await {
                    let frame = frame.map_err(|e| unreachable(e.to_string()))?;
                    if let Ok(data) = frame.into_data() {
                        body.push(&data)?;
                    }
                }
                Ok((status, body.read.freeze()))
            }
        }
    }
}

/// An answer read so far, refused once it passes the cap.
struct Capped<'a> {
    url: &'a str,
    max_bytes: u64,
    read: BytesMut,
}

impl<'a> Capped<'a> {
    fn new(url: &'a str, max_bytes: u64) -> Self {
        Self {
            url,
            max_bytes,
            read: BytesMut::new(),
        }
    }

    fn push(&mut self, data: &[u8]) -> Result<(), PromError> {
        if (self.read.len() + data.len()) as u64 > self.max_bytes {
            return Err(PromError::TooLarge {
                url: self.url.to_owned(),
                max_bytes: self.max_bytes,
            });
        }
        self.read.extend_from_slice(data);
        Ok(())
    }
}

/// reqwest's error as this module's: a timeout, a TLS failure (a rustls error somewhere in the
/// chain) or an unreachable server.
fn http_error(url: &str, error: &reqwest::Error) -> PromError {
    if error.is_timeout() {
        return PromError::Timeout {
            url: url.to_owned(),
        };
    }
    // reqwest's own text names the URL, query included; its causes say what happened.
    let reason = std::error::Error::source(error)
        .map(kube_metrics_runtime::log::error_chain)
        .unwrap_or_default();
    let mut tls = false;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        tls |= is_tls(e);
        cause = e.source();
    }
    if tls {
        PromError::Tls {
            reason: format!("{url}: {reason}"),
        }
    } else {
        PromError::Unreachable {
            url: url.to_owned(),
            reason,
        }
    }
}

/// A rustls error, or an io::Error that wraps one (perhaps in another io::Error: `source()`
/// does not show what an io::Error wraps).
fn is_tls(error: &(dyn std::error::Error + 'static)) -> bool {
    if error.downcast_ref::<rustls::Error>().is_some() {
        return true;
    }
    error
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
        .is_some_and(|inner| is_tls(inner))
}
