//! Tests of the Prometheus client: transports, answers, errors.

use super::*;

/// Where an HTTP(S) Prometheus' requests go, and with which `Authorization`.
fn http(prometheus: &Prometheus) -> (&str, Option<&str>) {
    match &prometheus.transport {
        Transport::Http {
            origin,
            authorization,
            ..
        } => (origin, authorization.as_deref()),
        Transport::ApiServer { .. } => panic!("not HTTP"),
    }
}

#[test]
fn urls() {
    let access = Access::default();
    let cases = [
        ("http://127.0.0.1:9090/", Some("http://127.0.0.1:9090")),
        (
            "http://prom.example/sub/path",
            Some("http://prom.example:80/sub/path"),
        ),
        ("https://prom.example", Some("https://prom.example:443")),
        ("https://[::1]:9091/p/", Some("https://[::1]:9091/p")),
        ("ftp://x:9090", None),
        ("x:9090", None),
    ];
    for (url, want) in cases {
        let got = Prometheus::new(url, "0", &access).ok();
        assert_eq!(got.as_ref().map(|p| http(p).0), want, "{url}");
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
    // base64("alice:s3cret"), and the userinfo out of the URL requests go to.
    assert_eq!(
        http(&prometheus),
        ("http://prom:9090", Some("Basic YWxpY2U6czNjcmV0"))
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
    assert_eq!(http(&bearer).1, Some("Bearer t"));
}

#[test]
fn encoding() {
    assert_eq!(encode(r#"a{b="c d"}"#), "a%7Bb%3D%22c%20d%22%7D");
}
