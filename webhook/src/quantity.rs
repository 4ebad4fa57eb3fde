//! Kubernetes resource quantities (`100m`, `2320Mi`, `1.5`, `1e3`), parsed to compare them: "every
//! container has requests == limits" must hold for `1Gi` against `1024Mi`. No I/O.
//!
//! k8s-openapi's `Quantity` is only the string; the grammar is small enough to parse here
//! (apimachinery `resource.ParseQuantity`): `<signed number><suffix>`, suffix one of the binary
//! `Ki..Ei`, the decimal `n u m k M G T P E`, or a decimal exponent `e<n>` / `E<n>`.

/// A non-negative quantity as written, with its value in nano-units for comparisons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quantity {
    text: String,
    nano: u128,
}

/// Longest text we try to parse; real quantities are a dozen characters.
const MAX_LEN: usize = 64;

// === impl Quantity ===

impl Quantity {
    /// The value as written, e.g. `"64Mi"`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value in nano-units (rounded up, like Kubernetes does below 1n).
    pub fn nano(&self) -> u128 {
        self.nano
    }

    pub fn is_zero(&self) -> bool {
        self.nano == 0
    }

    /// A quantity from a literal in our own source; a typo there reads as zero, which the policy
    /// tests catch (`default_flags_give_the_default_policy`).
    pub(crate) fn literal(text: &'static str) -> Self {
        parse(text).unwrap_or(Self {
            text: text.to_owned(),
            nano: 0,
        })
    }
}

/// Parses a quantity; `None` for anything Kubernetes would not accept, for negative values, and for
/// values too large to compare.
pub fn parse(text: &str) -> Option<Quantity> {
    if text.is_empty() || text.len() > MAX_LEN {
        return None;
    }
    let body = text.strip_prefix('+').unwrap_or(text);
    let split = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(split);
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let digits = format!("{int}{frac}");
    let mantissa: u128 = digits.parse().ok()?;
    let (num, den) = multiplier(suffix)?;
    let den = den.checked_mul(10u128.checked_pow(u32::try_from(frac.len()).ok()?)?)?;
    let scaled = mantissa.checked_mul(num)?.checked_mul(1_000_000_000)?;
    Some(Quantity {
        text: text.to_owned(),
        nano: scaled.div_ceil(den),
    })
}

/// The suffix as a fraction `num / den`.
fn multiplier(suffix: &str) -> Option<(u128, u128)> {
    let binary = |shift: u32| Some((1u128 << shift, 1));
    let decimal = |exp: i32| {
        let pow = 10u128.checked_pow(exp.unsigned_abs())?;
        Some(if exp >= 0 { (pow, 1) } else { (1, pow) })
    };
    match suffix {
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "" => decimal(0),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        _ => {
            let exp = suffix.strip_prefix(['e', 'E'])?;
            let exp: i32 = exp.parse().ok()?;
            if exp.unsigned_abs() > 18 {
                None
            } else {
                decimal(exp)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nano(text: &str) -> Option<u128> {
        parse(text).map(|q| q.nano())
    }

    #[test]
    fn parses_the_suffixes() {
        let table: &[(&str, u128)] = &[
            ("1", 1_000_000_000),
            ("100m", 100_000_000),
            ("0.1", 100_000_000),
            (".5", 500_000_000),
            ("+2", 2_000_000_000),
            ("1k", 1_000_000_000_000),
            ("1Ki", 1_024_000_000_000),
            ("2320Mi", 2320 * (1 << 20) * 1_000_000_000),
            ("60M", 60_000_000 * 1_000_000_000),
            ("1e3", 1_000_000_000_000),
            ("1E-3", 1_000_000),
            ("5n", 5),
            ("1u", 1_000),
            ("0", 0),
        ];
        for (text, want) in table {
            assert_eq!(nano(text), Some(*want), "{text}");
        }
    }

    #[test]
    fn equal_values_compare_equal_across_spellings() {
        assert_eq!(nano("1Gi"), nano("1024Mi"));
        assert_eq!(nano("1"), nano("1000m"));
        assert_eq!(nano("0.5"), nano("500m"));
    }

    #[test]
    fn rejects_what_kubernetes_rejects() {
        for text in [
            "", "-1", "1.2.3", "m", ".", "1x", "1 Mi", "1mi", "1e", "1e99", "Mi", "1.5.Mi",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn rejects_overflow_instead_of_wrapping() {
        assert_eq!(parse("999999999999999999999999999999Ei"), None);
        assert_eq!(parse(&"9".repeat(65)), None);
    }

    #[test]
    fn keeps_the_text() {
        assert_eq!(
            parse("64Mi").map(|q| q.as_str().to_owned()),
            Some("64Mi".to_owned())
        );
    }
}
