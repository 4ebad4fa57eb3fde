//! Whether a field of a VMI's JSON is there, read as KubeVirt's Go reads its typed fields, and
//! leniently: a value of an unexpected type cannot rule a hazard out, so it counts as set. Shared by
//! the VM type's facts and the network's; no I/O.

use serde_json::Value;

/// A boolean flag, read leniently: `true` or `"true"`; a value of another type cannot be ruled out,
/// so it counts as set.
pub(crate) fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(Value::String(text)) => text.eq_ignore_ascii_case("true"),
        Some(_) => true,
    }
}

/// An optional block or list is "set" when it is present, not null, not `false` and not an empty list
/// (KubeVirt tests `!= nil` for blocks and `len() != 0` for lists).
pub(crate) fn is_set(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Array(items)) => !items.is_empty(),
        Some(_) => true,
    }
}
