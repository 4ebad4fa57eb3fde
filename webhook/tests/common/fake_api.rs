//! A fake Kubernetes API server on loopback, plain HTTP: each request goes to a handler that
//! answers with a status and a JSON body. There is no cluster here; the VMI lookup's tests, the
//! memory benchmark and the VMI list attack serve real API shapes from it, lists paged as the
//! client asks ([`page`], [`list`]).
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::{server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::{convert::Infallible, future::Future, net::SocketAddr, ops::Range, pin::Pin, sync::Arc};
use tokio::net::TcpListener;

/// What the server does with one request (its head; the lookup sends no bodies).
pub type Handler = Arc<dyn Fn(http::request::Parts) -> Answer + Send + Sync>;
/// The status and JSON body of one answer, when it is ready.
pub type Answer = Pin<Box<dyn Future<Output = (StatusCode, Bytes)> + Send>>;

/// Serves `handler` on 127.0.0.1 until the runtime stops.
pub async fn serve(handler: Handler) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|error| panic!("bind: {error}"));
    let address = listener
        .local_addr()
        .unwrap_or_else(|error| panic!("address: {error}"));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let answer = handler(request.into_parts().0);
                    async move {
                        let (status, body) = answer.await;
                        let mut response = Response::new(Full::new(body));
                        *response.status_mut() = status;
                        response.headers_mut().insert(
                            http::header::CONTENT_TYPE,
                            http::HeaderValue::from_static("application/json"),
                        );
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    address
}

/// The API server's 404 for a missing object.
pub fn not_found() -> (StatusCode, Bytes) {
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": "not found", "reason": "NotFound", "code": 404});
    (StatusCode::NOT_FOUND, Bytes::from(status.to_string()))
}

/// A client of the fake at `address`.
pub fn client(address: SocketAddr) -> kube::Client {
    let uri = format!("http://{address}")
        .parse()
        .unwrap_or_else(|error| panic!("uri: {error}"));
    kube::Client::try_from(kube::Config::new(uri)).unwrap_or_else(|error| panic!("client: {error}"))
}

/// A kubeconfig for a process that should talk to the fake at `address`.
pub fn kubeconfig(address: SocketAddr) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{address}\n\
         users:\n- name: fake\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n\
         current-context: fake\n"
    )
}

/// One query parameter of a request, if present.
pub fn query<'a>(parts: &'a http::request::Parts, name: &str) -> Option<&'a str> {
    parts.uri.query()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then_some(value)
    })
}

/// Which of `total` items a list request asks for, and the `continue` token of the page after it
/// (empty on the last page), as the API server pages a list: `limit` items from where `continue`
/// left off (here simply the index), all of them without a `limit`.
pub fn page(parts: &http::request::Parts, total: usize) -> (Range<usize>, String) {
    let start: usize = query(parts, "continue")
        .and_then(|token| token.parse().ok())
        .unwrap_or(0)
        .min(total);
    let limit: usize = query(parts, "limit")
        .and_then(|limit| limit.parse().ok())
        .unwrap_or(total);
    let end = start.saturating_add(limit).min(total);
    let next = if end < total {
        end.to_string()
    } else {
        String::new()
    };
    (start..end, next)
}

/// A `kubevirt.io/v1` `kind` list of `items` (each one JSON text), with `continue` set to `next`.
pub fn list(kind: &str, items: &[String], next: &str) -> String {
    format!(
        r#"{{"apiVersion":"kubevirt.io/v1","kind":"{kind}","metadata":{{"resourceVersion":"10","continue":"{next}"}},"items":[{}]}}"#,
        items.join(",")
    )
}
