//! How Prometheus reads a sample's value and timestamp, which the relay forwards as the
//! target wrote them: only spellings Prometheus accepts may pass, or it would refuse the relay's
//! whole answer.

/// Whether Prometheus reads `token` as a sample value. Its text parser
/// (`model/textparse/promparse.go`, `parseFloat`; `promtool check metrics`
/// reads values the same way) refuses `p`, `P` and `_` and then takes what
/// Go's `strconv.ParseFloat` takes, which is what Rust's `f64` parser takes
/// except for two spellings (checked against promtool by `tests/promtool.rs`):
///
/// | spelling | Go | Rust | relay |
/// |---|---|---|---|
/// | `1`, `-1.5`, `+1.5`, `.5`, `5.`, `1e5`, `1E+05`, `007` | value | value | forwards |
/// | `1e-400` (below the smallest float) | 0 | 0 | forwards |
/// | `1e400`, `-1e400`, `1.8e308` (beyond the largest) | out of range | infinity | refuses |
/// | `NaN`, `nan`, `NAN` | NaN | NaN | forwards |
/// | `+nan`, `-nan` | invalid | NaN | refuses |
/// | `Inf`, `+Inf`, `-Inf`, `inf`, `infinity`, `-INFINITY` | infinity | infinity | forwards |
/// | `0x10`, `0x1p4`, `1_000`, `1e`, `.`, `+`, `infin`, `١` | invalid | invalid | refuses |
pub fn is_sample_value(token: &str) -> bool {
    match token.parse::<f64>() {
        Err(_) => false,
        Ok(value) if value.is_nan() => !token.starts_with(['+', '-']),
        Ok(value) if value.is_infinite() => is_infinity(token),
        Ok(_) => true,
    }
}

/// The decision table of [`is_sample_value`], spelling by spelling: whether
/// Prometheus (and so the relay) reads it as a value. `tests/promtool.rs`
/// holds it to promtool.
pub const VALUE_SPELLINGS: &[(&str, bool)] = &[
    ("1", true),
    ("-1.5", true),
    ("+1.5", true),
    (".5", true),
    ("5.", true),
    ("1e5", true),
    ("1E+05", true),
    ("1.e5", true),
    ("007", true),
    ("-0", true),
    ("1e-400", true),
    ("4.9e-324", true),
    ("1.7976931348623157e308", true),
    ("1.797693134862315807e308", true),
    ("1.797693134862315808e308", false),
    ("1.8e308", false),
    ("1e400", false),
    ("-1e400", false),
    ("NaN", true),
    ("nan", true),
    ("NAN", true),
    ("+nan", false),
    ("-nan", false),
    ("+NaN", false),
    ("Inf", true),
    ("+Inf", true),
    ("-Inf", true),
    ("inf", true),
    ("+inf", true),
    ("infinity", true),
    ("+Infinity", true),
    ("-INFINITY", true),
    ("++Inf", false),
    ("infin", false),
    ("0x10", false),
    ("0x1p4", false),
    ("0x1.8p1", false),
    ("1_000", false),
    ("1e", false),
    (".", false),
    ("+", false),
    ("-", false),
    ("0.0.1", false),
    ("1,5", false),
    ("\u{661}", false),
    ("1\r", false),
];

/// A timestamp as Prometheus' text lexer reads one: digits only (`{D}+` in
/// `model/textparse/promlex.l`, no sign), within an `i64` of milliseconds.
pub fn is_timestamp(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) && token.parse::<i64>().is_ok()
}

/// `inf` or `infinity` in any case, with at most one sign: an infinity
/// Prometheus reads as one, rather than a number too large for a float.
fn is_infinity(token: &str) -> bool {
    let word = token.strip_prefix(['+', '-']).unwrap_or(token);
    word.eq_ignore_ascii_case("inf") || word.eq_ignore_ascii_case("infinity")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_values_as_prometheus_does() {
        for (token, forwarded) in VALUE_SPELLINGS {
            assert_eq!(is_sample_value(token), *forwarded, "{token:?}");
        }
    }

    #[test]
    fn reads_timestamps_as_prometheus_does() {
        let cases = [
            ("0", true),
            ("1700000000000", true),
            ("9223372036854775807", true),
            ("9223372036854775808", false),
            ("-5", false),
            ("+5", false),
            ("1.5", false),
            ("1e3", false),
        ];
        for (token, forwarded) in cases {
            assert_eq!(is_timestamp(token), forwarded, "{token:?}");
        }
    }
}
