//! What the fake answers: a status, a content type and a body, now or later.
use std::{fmt, future::Future, pin::Pin, time::Duration};

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use serde_json::{Value, json};

/// One answer.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: Bytes,
}

/// An answer that may come later: after a delay, after the test opens a gate, or never (a watch
/// the API server holds open without events).
pub struct Reply(Pin<Box<dyn Future<Output = Answer> + Send>>);

// === impl Answer ===

impl Answer {
    pub fn json(status: StatusCode, body: impl Into<Bytes>) -> Answer {
        Answer {
            status,
            content_type: "application/json",
            body: body.into(),
        }
    }

    /// 200 with `value` as JSON.
    pub fn ok(value: &Value) -> Answer {
        Answer::json(StatusCode::OK, value.to_string())
    }

    /// Plain text, as a proxy in the way answers.
    pub fn text(status: StatusCode, text: impl Into<Bytes>) -> Answer {
        Answer {
            status,
            content_type: "text/plain",
            body: text.into(),
        }
    }

    /// A `Status` failure as kube-apiserver answers it, its reason the usual one for `code`.
    pub fn status(code: StatusCode, message: &str) -> Answer {
        Answer::failure(code, reason(code), message)
    }

    /// A `Status` failure with a reason of its own (e.g. `AlreadyExists`, a 409).
    pub fn failure(code: StatusCode, reason: &str, message: &str) -> Answer {
        let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                          "message": message, "reason": reason, "code": code.as_u16()});
        Answer::json(code, body.to_string())
    }

    /// A page of a list: `items` (each one JSON text), `next` its `continue` token (empty on the
    /// last page).
    pub fn list(api_version: &str, kind: &str, items: &[String], next: &str) -> Answer {
        let continued = match next {
            "" => String::new(),
            next => format!(r#","continue":"{next}""#),
        };
        let body = format!(
            r#"{{"apiVersion":"{api_version}","kind":"{kind}","metadata":{{"resourceVersion":"10"{continued}}},"items":[{}]}}"#,
            items.join(",")
        );
        Answer::json(StatusCode::OK, body)
    }

    /// This answer, `delay` from now.
    pub fn after(self, delay: Duration) -> Reply {
        Reply::later(async move {
            tokio::time::sleep(delay).await;
            self
        })
    }

    pub(crate) fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(self.body));
        *response.status_mut() = self.status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static(self.content_type),
        );
        response
    }
}

// === impl Reply ===

impl Reply {
    pub fn later(answer: impl Future<Output = Answer> + Send + 'static) -> Reply {
        Reply(Box::pin(answer))
    }

    /// No answer until the fake stops: an idle watch.
    pub fn held() -> Reply {
        Reply::later(std::future::pending())
    }

    pub(crate) async fn answer(self) -> Answer {
        self.0.await
    }
}

impl From<Answer> for Reply {
    fn from(answer: Answer) -> Reply {
        Reply::later(std::future::ready(answer))
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reply")
    }
}

/// kube-apiserver's `reason` for a status code.
fn reason(code: StatusCode) -> &'static str {
    match code {
        StatusCode::BAD_REQUEST => "BadRequest",
        StatusCode::UNAUTHORIZED => "Unauthorized",
        StatusCode::FORBIDDEN => "Forbidden",
        StatusCode::NOT_FOUND => "NotFound",
        StatusCode::METHOD_NOT_ALLOWED => "MethodNotAllowed",
        StatusCode::CONFLICT => "Conflict",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "UnsupportedMediaType",
        StatusCode::UNPROCESSABLE_ENTITY => "Invalid",
        StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailable",
        _ => "InternalError",
    }
}
