//! The plain-text answers every server gives.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

/// What every handler answers with: the bodies here are small and built in full.
pub type Body = Full<Bytes>;

/// A `text/plain; charset=utf-8` response.
pub fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A 200 carrying `body` as `content_type` (an exposition, typically).
pub fn typed(content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// 405 with the `Allow` header RFC 9110 requires, e.g. `allow = "GET"`.
pub fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// 404 for a path no route knows.
pub fn not_found() -> Response<Body> {
    text(StatusCode::NOT_FOUND, "not found\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_carry_status_and_headers() {
        let cases = [
            (text(StatusCode::OK, "ok\n"), StatusCode::OK, None),
            (
                method_not_allowed("GET"),
                StatusCode::METHOD_NOT_ALLOWED,
                Some("GET"),
            ),
            (not_found(), StatusCode::NOT_FOUND, None),
        ];
        for (response, status, allow) in cases {
            assert_eq!(response.status(), status);
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "text/plain; charset=utf-8"
            );
            assert_eq!(
                response
                    .headers()
                    .get(header::ALLOW)
                    .map(|v| v.to_str().unwrap()),
                allow
            );
        }
    }
}
