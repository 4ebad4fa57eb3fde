//! The schema check: values checked as the API server checks them, and a version's schema found.

use super::*;
use serde_json::json;

fn scc_like() -> Value {
    json!({"type": "object", "required": ["priority", "volumes"], "properties": {
        "apiVersion": {"type": "string"},
        "metadata": {"type": "object"},
        "priority": {"type": "integer", "format": "int32", "nullable": true},
        "volumes": {"type": "array", "nullable": true, "items": {"type": "string"}},
        "readOnly": {"type": "boolean"},
        "level": {"type": "string", "enum": ["A", "B"]},
        "port": {"x-kubernetes-int-or-string": true},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                 "properties": {"a": {"type": "string"}}},
        "runAsUser": {"type": "object", "properties": {"uid": {"type": "integer"}}}
    }})
}

// serde_json sorts object keys, so violations come in key order.
#[test]
fn values_are_checked_like_the_api_server_does() {
    let cases = [
        (json!({"priority": 0, "volumes": ["hostPath"]}), vec![]),
        (json!({"priority": null, "volumes": null}), vec![]),
        (json!({"volumes": []}), vec![".priority: Required value"]),
        (
            json!({"priority": "high", "volumes": []}),
            vec![".priority: Invalid value: \"high\": must be of type integer"],
        ),
        (
            json!({"priority": 4_294_967_296_i64, "volumes": []}),
            vec![".priority: Invalid value: 4294967296: must be of type integer"],
        ),
        (
            json!({"priority": 1, "volumes": [1]}),
            vec![".volumes[0]: Invalid value: 1: must be of type string"],
        ),
        (
            json!({"priority": 1, "volumes": [], "allowedHostPaths": []}),
            vec![".allowedHostPaths: unknown field"],
        ),
        (
            json!({"priority": 1, "volumes": [], "runAsUser": {"uid": 0, "type": "x"}}),
            vec![".runAsUser.type: unknown field"],
        ),
        // A null in a field that may not be null is dropped by the server, not refused.
        (
            json!({"priority": 1, "volumes": [], "readOnly": null}),
            vec![],
        ),
        (
            json!({"priority": 1, "volumes": [], "level": "C"}),
            vec![".level: Unsupported value: \"C\""],
        ),
        (
            json!({"priority": 1, "volumes": [], "port": "https", "labels": {"a": "b"},
                   "free": {"x": 1}, "metadata": {"name": "n", "anything": {}}}),
            vec![],
        ),
        (
            json!({"priority": 1, "volumes": [], "port": true, "labels": {"a": 1}}),
            vec![
                ".labels.a: Invalid value: 1: must be of type string",
                ".port: Invalid value: must be an integer or a string",
            ],
        ),
        (
            json!([]),
            vec![": Invalid value: []: must be of type object"],
        ),
    ];
    for (value, want) in cases {
        assert_eq!(violations(&scc_like(), &value), want, "{value}");
    }
}

#[test]
fn the_schema_of_a_version_is_found() {
    let crd = json!({"spec": {"versions": [
        {"name": "v1beta1", "schema": {"openAPIV3Schema": {"type": "string"}}},
        {"name": "v1", "schema": {"openAPIV3Schema": {"type": "object"}}}
    ]}});
    assert_eq!(schema(&crd, "v1").unwrap(), &json!({"type": "object"}));
    assert!(schema(&crd, "v2").is_err());
    assert!(schema(&json!({}), "v1").is_err());
}
