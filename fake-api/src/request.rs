//! One request as the fake received it: what routes match on and what tests assert on.
use std::ops::Range;

use bytes::Bytes;
use http::{HeaderMap, Method, header};
use serde_json::Value;

/// A request, its body read whole.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: Method,
    pub path: String,
    /// The raw query string, without the `?`; empty when there is none.
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

// === impl Request ===

impl Request {
    pub(crate) fn new(parts: http::request::Parts, body: Bytes) -> Request {
        Request {
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or_default().to_owned(),
            method: parts.method,
            headers: parts.headers,
            body,
        }
    }

    /// "METHOD path", the way tests list the calls a client made.
    pub fn call(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// One query parameter, percent-decoded; `None` when absent.
    pub fn param(&self, name: &str) -> Option<String> {
        self.query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| decode(value))
    }

    /// Whether this is a watch (`?watch=true`) rather than a list or a get.
    pub fn is_watch(&self) -> bool {
        self.param("watch").is_some_and(|watch| watch == "true")
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// Which of `total` items a list request asks for, and the `continue` token of the page after
    /// it (empty on the last page), as the API server pages a list: `limit` items from where
    /// `continue` left off (here simply the index), all of them without a `limit`.
    pub fn page(&self, total: usize) -> (Range<usize>, String) {
        let number = |name| self.param(name).and_then(|text| text.parse::<usize>().ok());
        let start = number("continue").unwrap_or(0).min(total);
        let end = start
            .saturating_add(number("limit").unwrap_or(total))
            .min(total);
        let next = if end < total {
            end.to_string()
        } else {
            String::new()
        };
        (start..end, next)
    }
}

/// Percent-decoding, with `+` for a space as in a form-encoded query.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok());
        match (byte, hex.and_then(|hex| u8::from_str_radix(hex, 16).ok())) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(query: &str) -> Request {
        let uri = format!("/api/v1/pods?{query}");
        let (parts, ()) = http::Request::get(uri).body(()).unwrap().into_parts();
        Request::new(parts, Bytes::new())
    }

    #[test]
    fn params_are_percent_decoded() {
        let request = get("query=up%7Bjob%3D%22a%22%7D+x&watch=true");
        assert_eq!(request.param("query").unwrap(), "up{job=\"a\"} x");
        assert!(request.is_watch());
        assert_eq!(request.param("missing"), None);
    }

    #[test]
    fn pages_follow_limit_and_continue() {
        assert_eq!(get("limit=2").page(5), (0..2, "2".to_owned()));
        assert_eq!(get("limit=2&continue=4").page(5), (4..5, String::new()));
        assert_eq!(get("").page(5), (0..5, String::new()));
    }
}
