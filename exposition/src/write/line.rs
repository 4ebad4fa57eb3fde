//! One sample line, `name{label="value",...} value [timestamp]`, and the escaping of label values
//! and HELP texts: the only escaping in the workspace, so the collector and the relay cannot drift.

use crate::Format;

/// Writes one sample line into a buffer: start with the name, add labels, end with a value.
/// The line is complete only once a value is written.
#[derive(Debug)]
pub struct Line<'o> {
    out: &'o mut Vec<u8>,
    /// Whether `{` has been written.
    open: bool,
}

// === impl Line ===

impl<'o> Line<'o> {
    pub fn new(out: &'o mut Vec<u8>, name: &str) -> Self {
        out.extend_from_slice(name.as_bytes());
        Self { out, open: false }
    }

    /// Adds `name="value"`, escaping the value.
    pub fn label(&mut self, name: &str, value: &str) -> &mut Self {
        self.separator();
        label(name, value, self.out);
        self
    }

    /// Adds labels already written as `a="x",b="y"` (see [`label`]); nothing when empty.
    pub fn escaped_labels(&mut self, labels: &[u8]) -> &mut Self {
        if !labels.is_empty() {
            self.separator();
            self.out.extend_from_slice(labels);
        }
        self
    }

    /// Where the series key (name and labels, without the closing `}`) ends in the buffer.
    pub fn key_end(&self) -> usize {
        self.out.len()
    }

    /// Ends the line with `value`, spelled as `format` wants.
    pub fn value(self, value: f64, format: Format) {
        let out = self.close();
        number(value, format, out);
        out.push(b'\n');
    }

    /// Ends the line with a value and timestamp copied as given: the relay forwards a target's
    /// validated tokens so that it never changes a number by reformatting it.
    pub fn raw_value(self, value: &str, timestamp: Option<&str>) {
        let out = self.close();
        out.extend_from_slice(value.as_bytes());
        if let Some(timestamp) = timestamp {
            out.push(b' ');
            out.extend_from_slice(timestamp.as_bytes());
        }
        out.push(b'\n');
    }

    fn separator(&mut self) {
        self.out.push(if self.open { b',' } else { b'{' });
        self.open = true;
    }

    fn close(self) -> &'o mut Vec<u8> {
        if self.open {
            self.out.push(b'}');
        }
        self.out.push(b' ');
        self.out
    }
}

/// Appends `name="value"` with the value escaped.
pub fn label(name: &str, value: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"=\"");
    escape_label_value(value, out);
    out.push(b'"');
}

/// Escapes a label value: `\`, newline and `"` (both formats).
pub fn escape_label_value(value: &str, out: &mut Vec<u8>) {
    escape(value, true, out);
}

/// Escapes a HELP text: `\` and newline, and in OpenMetrics `"` too.
pub fn escape_help(text: &str, format: Format, out: &mut Vec<u8>) {
    escape(text, format == Format::OpenMetrics, out);
}

fn escape(text: &str, quotes: bool, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    if !bytes
        .iter()
        .any(|&b| b == b'\\' || b == b'\n' || (quotes && b == b'"'))
    {
        out.extend_from_slice(bytes);
        return;
    }
    for &b in bytes {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'"' if quotes => out.extend_from_slice(b"\\\""),
            _ => out.push(b),
        }
    }
}

/// Largest integer below which every f64 integer is exact.
const EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

/// Like `f64`'s `Display` (what the prometheus crate's text encoder writes), with a fast path for
/// whole numbers, which most of our samples are. OpenMetrics spells infinities `+Inf`/`-Inf`.
fn number(value: f64, format: Format, out: &mut Vec<u8>) {
    if value.is_sign_positive() && value < EXACT_INTEGER && value.fract() == 0.0 && value != 0.0 {
        // Whole, positive and exact: the cast is lossless.
        integer(value as u64, out);
    } else if value == 0.0 && value.is_sign_positive() {
        out.push(b'0');
    } else if format == Format::OpenMetrics && value.is_infinite() {
        out.extend_from_slice(if value > 0.0 { b"+Inf" } else { b"-Inf" });
    } else {
        use std::io::Write;
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{value}");
    }
}

fn integer(mut n: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        if let Some(d) = digits.get_mut(at) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(at..).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        write(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_label_values_and_help_per_format() {
        // (input, label value, text HELP, OpenMetrics HELP)
        let cases = [
            ("plain", "plain", "plain", "plain"),
            ("a\\b", "a\\\\b", "a\\\\b", "a\\\\b"),
            ("a\nb", "a\\nb", "a\\nb", "a\\nb"),
            (
                "say \"hi\"",
                "say \\\"hi\\\"",
                "say \"hi\"",
                "say \\\"hi\\\"",
            ),
            ("\"\\\n", "\\\"\\\\\\n", "\"\\\\\\n", "\\\"\\\\\\n"),
            ("", "", "", ""),
        ];
        for (input, value, help_text, help_om) in cases {
            assert_eq!(text(|o| escape_label_value(input, o)), value, "{input:?}");
            assert_eq!(
                text(|o| escape_help(input, Format::Text, o)),
                help_text,
                "{input:?}"
            );
            assert_eq!(
                text(|o| escape_help(input, Format::OpenMetrics, o)),
                help_om,
                "{input:?}"
            );
        }
    }

    #[test]
    fn lines_with_and_without_labels() {
        assert_eq!(
            text(|o| Line::new(o, "m").value(2.0, Format::Text)),
            "m 2\n"
        );
        assert_eq!(
            text(|o| {
                let mut line = Line::new(o, "m");
                line.escaped_labels(b"").label("a", "x\"y").label("b", "");
                line.value(0.5, Format::Text);
            }),
            "m{a=\"x\\\"y\",b=\"\"} 0.5\n"
        );
        assert_eq!(
            text(|o| {
                let mut line = Line::new(o, "m");
                line.escaped_labels(b"h=\"1\"").label("a", "2");
                line.raw_value("1e3", Some("17"));
            }),
            "m{h=\"1\",a=\"2\"} 1e3 17\n"
        );
    }

    #[test]
    fn key_end_is_before_the_closing_brace() {
        let mut out = Vec::new();
        let mut line = Line::new(&mut out, "m");
        line.label("a", "1");
        let end = line.key_end();
        line.raw_value("3", None);
        assert_eq!(out.get(..end), Some(&b"m{a=\"1\""[..]));
    }

    #[test]
    fn numbers_print_like_display() {
        let cases = [
            0.0,
            -0.0,
            1.0,
            0.5,
            3.25,
            1e15,
            123_456_789.0,
            EXACT_INTEGER - 1.0,
            EXACT_INTEGER,
            1e21,
            -7.0,
            f64::NAN,
            u64::MAX as f64,
        ];
        for value in cases {
            assert_eq!(
                text(|o| number(value, Format::Text, o)),
                value.to_string(),
                "{value}"
            );
        }
    }

    #[test]
    fn openmetrics_spells_infinities_with_signs() {
        for (value, want) in [(f64::INFINITY, "+Inf"), (f64::NEG_INFINITY, "-Inf")] {
            assert_eq!(text(|o| number(value, Format::OpenMetrics, o)), want);
        }
        assert_eq!(text(|o| number(f64::INFINITY, Format::Text, o)), "inf");
    }
}
