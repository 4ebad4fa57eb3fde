//! `kube-metrics-collector probe`: `GET /healthz` over the Unix socket, for exec probes.
//! It never touches the network: a kubelet TCP/HTTP probe on a launcher pod can land in the guest
//! (docs/kubevirt.md §3.7).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

/// The whole probe, connect to status line, must fit in this.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Succeeds iff the collector on `socket` answers `/healthz` with 200 within `PROBE_TIMEOUT`.
pub async fn run(socket: &Path) -> anyhow::Result<()> {
    let status = tokio::time::timeout(PROBE_TIMEOUT, healthz(socket))
        .await
        .with_context(|| format!("no answer on {} within {PROBE_TIMEOUT:?}", socket.display()))??;
    if status != StatusCode::OK {
        bail!("/healthz on {} answered {status}", socket.display());
    }
    Ok(())
}

async fn healthz(socket: &Path) -> anyhow::Result<StatusCode> {
    let stream = UnixStream::connect(socket)
        .await
        .with_context(|| format!("failed to connect to {}", socket.display()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake failed")?;
    tokio::spawn(async move {
        if let Err(error) = conn.await {
            tracing::debug!(%error, "Probe connection closed with an error");
        }
    });
    let request = Request::get("/healthz")
        .header(header::HOST, "localhost")
        .body(Empty::<Bytes>::new())
        .context("failed to build request")?;
    let response = sender
        .send_request(request)
        .await
        .context("request failed")?;
    Ok(response.status())
}
