//! Prometheus' HTTP API answers -> samples and series: the envelope (`status`, `errorType`,
//! `error`), instant vectors and range matrices; an answer that is not Prometheus' is named as
//! such. No I/O.

use std::collections::BTreeMap;

use http::StatusCode;
use serde_json::Value;

use super::{PromError, Sample, Series};

fn not_prometheus(url: &str, reason: String) -> PromError {
    PromError::NotPrometheus {
        url: url.to_owned(),
        reason,
    }
}

/// The API's JSON envelope to its `data`, or the error it carries.
pub(super) fn parse_response(
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

pub(super) fn parse_vector(url: &str, data: &Value) -> Result<Vec<Sample>, PromError> {
    results(url, data, "vector")?
        .iter()
        .map(|r| sample(r).ok_or_else(|| not_prometheus(url, format!("malformed sample {r}"))))
        .collect()
}

pub(super) fn parse_matrix(url: &str, data: &Value) -> Result<Vec<Series>, PromError> {
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
