//! Fetches one collector's `/metrics` over its Unix socket: HTTP/1, bounded in
//! time and size. The only module of the relay that opens client connections.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_LENGTH, HOST};
use http::{HeaderMap, HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

/// Text format 0.0.4: what the relay merges and serves.
pub const ACCEPT_TEXT: &str = "text/plain; version=0.0.4";

/// The most a connection's read buffer may grow to. Each body chunk is copied
/// out and dropped at once, so this is all a connection holds besides the
/// body; hyper's default (about 400 KiB) would let a node's worth of fast
/// targets hold 43 MiB of buffers. A local socket fills 16 KiB in no time.
const READ_BUFFER_BYTES: usize = 16 * 1024;

/// How much one target may cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connect, request and the whole body.
    pub timeout: Duration,
    pub max_body_bytes: usize,
}

/// Why a target's exposition could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The target did not answer in full within the timeout.
    #[error("timed out")]
    Timeout,
    /// Nobody listens (a dead collector leaves its socket file behind).
    #[error("cannot connect")]
    Connect(#[source] std::io::Error),
    #[error("HTTP exchange failed")]
    Http(#[source] hyper::Error),
    #[error("collector answered {0}")]
    Status(StatusCode),
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    #[error("body could not be read")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("body is not UTF-8")]
    NotUtf8,
}

// === impl FetchError ===

impl FetchError {
    /// The `reason` label value of the relay's failure counter.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connect(_) => "connect",
            Self::Http(_) => "http",
            Self::Status(_) => "http_status",
            Self::TooLarge(_) => "too_large",
            Self::Body(_) => "body",
            Self::NotUtf8 => "not_utf8",
        }
    }
}

/// GETs `/metrics` from the socket at `path`, all within `limits.timeout`.
pub async fn fetch(path: &Path, limits: Limits) -> Result<String, FetchError> {
    tokio::time::timeout(limits.timeout, exchange(path, limits.max_body_bytes))
        .await
        .unwrap_or(Err(FetchError::Timeout))
}

async fn exchange(path: &Path, max_body_bytes: usize) -> Result<String, FetchError> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(FetchError::Connect)?;
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(READ_BUFFER_BYTES)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(FetchError::Http)?;
    let mut request = Request::new(Empty::<Bytes>::new());
    *request.uri_mut() = Uri::from_static("/metrics");
    let headers = request.headers_mut();
    headers.insert(HOST, HeaderValue::from_static("localhost"));
    headers.insert(ACCEPT, HeaderValue::from_static(ACCEPT_TEXT));

    let response = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(FetchError::Http)?;
        if response.status() != StatusCode::OK {
            return Err(FetchError::Status(response.status()));
        }
        let announced = content_length(response.headers());
        if announced.is_some_and(|n| n > max_body_bytes) {
            return Err(FetchError::TooLarge(max_body_bytes));
        }
        let body = read_body(response.into_body(), announced, max_body_bytes).await?;
        String::from_utf8(body).map_err(|_| FetchError::NotUtf8)
    };
    // The connection is driven here rather than spawned, so that dropping
    // this future on timeout also closes the socket.
    tokio::pin!(conn, response);
    tokio::select! {
        biased;
        result = &mut response => result,
        // The connection may end (and hand over the last body bytes) before
        // the response future has seen them; it then finishes on its own.
        _ = &mut conn => response.await,
    }
}

/// Reads the body into one buffer of its size (`announced`, when the target
/// sent a length), each chunk copied out and dropped as it comes: what the
/// body holds in memory is its own bytes, at most `max_body_bytes`.
async fn read_body(
    mut body: Incoming,
    announced: Option<usize>,
    max_body_bytes: usize,
) -> Result<Vec<u8>, FetchError> {
    let mut out = Vec::with_capacity(announced.unwrap_or(0));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| FetchError::Body(error.into()))?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        if out.len() + chunk.len() > max_body_bytes {
            return Err(FetchError::TooLarge(max_body_bytes));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The `content-length` a response announces, if it is a number.
fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}
