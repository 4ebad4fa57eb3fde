//! A bound on what parsing a body costs, checked on its bytes before any `serde_json::Value` is
//! built. No I/O.
//!
//! The byte cap alone does not bound memory: a `Value` costs 32 bytes plus its allocations whatever
//! its text, so 6 MiB of `["","",...]` are two million values (~100 MB with the vector's growth),
//! and a few such bodies at once exceed the Deployment's memory limit. One pass over the bytes
//! counts the tokens that become values and the nesting depth; a body over [`LIMIT`] is refused as
//! a malformed one is.
//!
//! What is counted: every string (member names included), every `[` and `{`, and every `,`. A
//! number, `true`, `false` or `null` follows a `,`, a `[` or a member name, so a document of `t`
//! tokens holds at most `2t + 1` values and names. Invalid JSON is counted the same way: the bound
//! then covers what the parser builds before it fails.

/// Counts and their limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Complexity {
    /// Strings, `[`, `{` and `,`.
    pub tokens: usize,
    /// Nesting of arrays and objects; `0` for a scalar.
    pub depth: usize,
}

/// The limit: a launcher pod's AdmissionReview has 890 tokens (depth 11) for the 15 KiB fixture; a
/// container disk adds ~110 (its container, its init container, its volume, `compute`'s mount), so
/// a VMI with KubeVirt's most volumes (256) stays under 30,000. What bounds the limit from above is
/// memory: the costliest JSON per token, one-member objects (`[{"a":0},...]`), parses into ~230
/// bytes per token (a B-tree node each), ~9 MB at 40,000 tokens, for each review slot at once
/// (`tests/attacks.rs` measures it; docs/threat-model.md adds it up). serde_json stops at depth
/// 128 on its own; 64 is far above a pod's (managedFields included) and keeps the parser's
/// recursion short.
pub const LIMIT: Complexity = Complexity {
    tokens: 40_000,
    depth: 64,
};

/// A body over the limit; the count stops where the limit was passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TooComplex {
    #[error("more than {0} JSON tokens")]
    Tokens(usize),
    #[error("JSON nested deeper than {0}")]
    Depth(usize),
}

/// Counts `bytes` up to `limit`: the counts when within it.
pub fn check(bytes: &[u8], limit: Complexity) -> Result<Complexity, TooComplex> {
    let mut count = Complexity {
        tokens: 0,
        depth: 0,
    };
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in bytes {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => {
                in_string = true;
                count.tokens += 1;
            }
            b'[' | b'{' => {
                count.tokens += 1;
                depth += 1;
                if depth > limit.depth {
                    return Err(TooComplex::Depth(limit.depth));
                }
                count.depth = count.depth.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' => count.tokens += 1,
            _ => continue,
        }
        if count.tokens > limit.tokens {
            return Err(TooComplex::Tokens(limit.tokens));
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    const UNLIMITED: Complexity = Complexity {
        tokens: usize::MAX,
        depth: usize::MAX,
    };

    fn counts(text: &str) -> Complexity {
        check(text.as_bytes(), UNLIMITED).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// Values and member names in `value`, and its nesting depth.
    fn size(value: &Value) -> (usize, usize) {
        let children: Vec<(usize, usize)> = match value {
            Value::Array(items) => items.iter().map(size).collect(),
            // The member name counts as one more value.
            Value::Object(map) => map.values().map(|v| (size(v).0 + 1, size(v).1)).collect(),
            _ => return (1, 0),
        };
        let values = 1 + children.iter().map(|c| c.0).sum::<usize>();
        let depth = 1 + children.iter().map(|c| c.1).max().unwrap_or(0);
        (values, depth)
    }

    #[test]
    fn counts_strings_containers_and_commas() {
        let table = [
            ("0", 0, 0),
            (r#""a""#, 1, 0),
            ("[]", 1, 1),
            ("[1,2,3]", 3, 1),
            (r#"{"a":[{"b":null}]}"#, 5, 3),
            // Brackets, commas and quotes inside strings are text.
            (r#"["[,{\"}]", "\\"]"#, 4, 1),
            (" [ [ ] , { } ] ", 4, 2),
        ];
        for (text, tokens, depth) in table {
            assert_eq!(counts(text), Complexity { tokens, depth }, "{text}");
        }
    }

    #[test]
    fn the_fixture_review_is_far_below_the_limit() {
        let fixture = include_str!("../../tests/fixtures/admission/pod-a.json");
        let got = check(fixture.as_bytes(), LIMIT).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            got,
            Complexity {
                tokens: 890,
                depth: 11
            }
        );
    }

    #[test]
    fn worst_case_shapes_stop_at_the_limit() {
        let limit = Complexity {
            tokens: 1000,
            depth: 10,
        };
        let strings = format!("[{}\"\"]", "\"\",".repeat(600));
        let objects = format!("{{{}\"z\":0}}", "\"a\":0,".repeat(600));
        let deep = format!("{}{}", "[".repeat(11), "]".repeat(11));
        assert_eq!(
            check(strings.as_bytes(), limit),
            Err(TooComplex::Tokens(1000))
        );
        assert_eq!(
            check(objects.as_bytes(), limit),
            Err(TooComplex::Tokens(1000))
        );
        assert_eq!(check(deep.as_bytes(), limit), Err(TooComplex::Depth(10)));
        let shallow = format!("{}{}", "[".repeat(10), "]".repeat(10));
        assert_eq!(
            check(shallow.as_bytes(), limit),
            Ok(Complexity {
                tokens: 10,
                depth: 10
            })
        );
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let text = "[a-z\"\\\\\\[\\]{},: \u{e9}\u{1f600}]{0,6}";
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            text.prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 64, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(text, inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// On valid JSON, compact or pretty: the depth is exact and the tokens bound the values.
        #[test]
        fn bounds_the_values_of_any_document(value in json_value(), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_string_pretty(&value)
            } else {
                serde_json::to_string(&value)
            }
            .unwrap_or_default();
            let got = counts(&text);
            let (values, depth) = size(&value);
            prop_assert_eq!(got.depth, depth);
            prop_assert!(values <= 2 * got.tokens + 1, "{} values, {:?}", values, got);
            // Exactly at the counts passes; one below fails.
            prop_assert_eq!(check(text.as_bytes(), got), Ok(got));
            if got.tokens > 0 {
                let tighter = Complexity { tokens: got.tokens - 1, ..got };
                prop_assert_eq!(check(text.as_bytes(), tighter), Err(TooComplex::Tokens(tighter.tokens)));
            }
        }

        /// On any bytes: no panic, and what serde_json builds from a body that passes stays within
        /// the bound.
        #[test]
        fn arbitrary_bytes_pass_only_within_the_bound(bytes in prop::collection::vec(
            prop_oneof![Just(b'['), Just(b']'), Just(b'{'), Just(b'}'), Just(b','), Just(b':'),
                        Just(b'"'), Just(b'\\'), Just(b'0'), Just(b' '), any::<u8>()],
            0..200,
        )) {
            let limit = Complexity { tokens: 20, depth: 5 };
            if let Ok(got) = check(&bytes, limit) {
                prop_assert!(got.tokens <= limit.tokens && got.depth <= limit.depth);
                if let Ok(value) = serde_json::from_slice::<Value>(&bytes) {
                    let (values, depth) = size(&value);
                    prop_assert!(values <= 2 * got.tokens + 1);
                    prop_assert!(depth <= got.depth);
                }
            }
        }
    }
}
