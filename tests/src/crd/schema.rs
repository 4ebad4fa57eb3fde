//! A custom resource checked against the OpenAPI v3 schema of its CustomResourceDefinition, as the
//! API server's validation of a structural schema would check it: `type`, `nullable`, `required`,
//! `enum`, `int32` bounds, `x-kubernetes-int-or-string`, and unknown fields (the server prunes them,
//! and `kubectl apply` with its default strict field validation refuses them).
//!
//! Not covered: CEL rules (`x-kubernetes-validations`), string `pattern`s and formats, length and
//! item-count limits, list-type uniqueness. The SecurityContextConstraints schema uses none of them.
//! `metadata` is the API server's own business and is not descended into.

use anyhow::{Context as _, Result};
use serde_json::Value;

/// The `openAPIV3Schema` of `version` in a CustomResourceDefinition.
pub fn schema<'a>(crd: &'a Value, version: &str) -> Result<&'a Value> {
    let versions = crd["spec"]["versions"].as_array().context("no versions")?;
    let entry = versions
        .iter()
        .find(|v| v["name"] == version)
        .with_context(|| format!("no version {version}"))?;
    entry
        .pointer("/schema/openAPIV3Schema")
        .context("no openAPIV3Schema")
}

/// Every way `value` breaks `schema`, as `path: message` in the API server's words
/// (`.priority: Required value`); empty when it validates.
pub fn violations(schema: &Value, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check(schema, value, "", &mut out);
    out
}

fn check(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    if value.is_null() {
        if schema["nullable"] != true {
            out.push(format!("{path}: Invalid value: null"));
        }
        return;
    }
    if schema["x-kubernetes-int-or-string"] == true {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            out.push(format!(
                "{path}: Invalid value: must be an integer or a string"
            ));
        }
        return;
    }
    let wanted = schema["type"].as_str().unwrap_or("");
    if !wanted.is_empty() && !has_type(value, wanted, schema["format"].as_str()) {
        out.push(format!(
            "{path}: Invalid value: {value}: must be of type {wanted}"
        ));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        out.push(format!("{path}: Unsupported value: {value}"));
    }
    if let Some(items) = value.as_array() {
        for (i, item) in items.iter().enumerate() {
            check(&schema["items"], item, &format!("{path}[{i}]"), out);
        }
    }
    if value.is_object() {
        check_object(schema, value, path, out);
    }
}

fn check_object(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    let fields = value.as_object().into_iter().flatten();
    let properties = schema["properties"].as_object();
    for (key, field) in fields {
        let field_path = format!("{path}.{key}");
        match properties.and_then(|p| p.get(key)) {
            // The server drops a null it may not keep before it validates; `required` then fails.
            Some(sub) if field.is_null() && sub["nullable"] != true => {}
            Some(_) if path.is_empty() && key == "metadata" => {}
            Some(sub) => check(sub, field, &field_path, out),
            None if schema["additionalProperties"].is_object() => {
                check(&schema["additionalProperties"], field, &field_path, out);
            }
            None if properties.is_none()
                || schema["x-kubernetes-preserve-unknown-fields"] == true => {}
            None => out.push(format!("{field_path}: unknown field")),
        }
    }
    for key in schema["required"].as_array().into_iter().flatten() {
        let key = key.as_str().unwrap_or("");
        let sub = properties.and_then(|p| p.get(key));
        let kept = value
            .get(key)
            .is_some_and(|v| !v.is_null() || sub.is_some_and(|s| s["nullable"] == true));
        if !kept {
            out.push(format!("{path}.{key}: Required value"));
        }
    }
}

fn has_type(value: &Value, wanted: &str, format: Option<&str>) -> bool {
    match wanted {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "number" => value.is_number(),
        "integer" => match (value.as_i64(), format) {
            (Some(n), Some("int32")) => i32::try_from(n).is_ok(),
            (Some(_), _) => true,
            (None, _) => value.is_u64() && format != Some("int32"),
        },
        _ => true,
    }
}

#[cfg(test)]
mod tests;
