//! Writes counter and gauge families straight into a byte buffer, as Prometheus text 0.0.4 or
//! OpenMetrics 1.0.0. No intermediate metric objects: a scrape's ~300 samples cost no allocation.
//!
//! Differences between the formats that matter here: text writes `# HELP` then `# TYPE` and escapes
//! only `\` and newline in HELP; OpenMetrics writes `# TYPE` first, names a counter *family* without
//! `_total` while its sample keeps it, escapes `"` in HELP too, and ends with `# EOF`.
//! <https://github.com/prometheus/OpenMetrics/blob/v1.0.0/specification/OpenMetrics.md>

use crate::Format;

/// The two metric types we expose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// Appends families and samples to `out`. A family's header is written with its first sample, so
/// a family without samples leaves no trace (the text format forbids an empty family).
#[derive(Debug)]
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
    format: Format,
    family: Family,
    header_written: bool,
    /// Labels common to many samples (`host`, `domain`), escaped once: `a="x",b="y"`.
    prefix: Vec<u8>,
}

#[derive(Clone, Copy, Debug)]
struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
}

// === impl Writer ===

impl<'a> Writer<'a> {
    pub fn new(out: &'a mut Vec<u8>, format: Format) -> Self {
        Self {
            out,
            format,
            family: Family {
                name: "",
                help: "",
                kind: Kind::Gauge,
            },
            header_written: true,
            prefix: Vec::new(),
        }
    }

    /// Sets the labels that `sample(true, ..)` puts first.
    pub fn set_prefix(&mut self, labels: &[(&str, &str)]) {
        self.prefix.clear();
        for (i, (name, value)) in labels.iter().enumerate() {
            if i > 0 {
                self.prefix.push(b',');
            }
            self.prefix.extend_from_slice(name.as_bytes());
            self.prefix.extend_from_slice(b"=\"");
            escape(value, true, &mut self.prefix);
            self.prefix.push(b'"');
        }
    }

    /// Starts a family; `name` of a counter ends in `_total`.
    pub fn family(&mut self, name: &'static str, help: &'static str, kind: Kind) {
        self.family = Family { name, help, kind };
        self.header_written = false;
    }

    /// One sample of the current family, with the prefix labels (when `prefixed`) then `labels`.
    pub fn sample(&mut self, prefixed: bool, labels: &[(&str, &str)], value: f64) {
        if self.family.name.is_empty() {
            return;
        }
        if !self.header_written {
            self.header();
            self.header_written = true;
        }
        self.out.extend_from_slice(self.family.name.as_bytes());
        let mut separator = b'{';
        if prefixed && !self.prefix.is_empty() {
            self.out.push(b'{');
            self.out.extend_from_slice(&self.prefix);
            separator = b',';
        }
        for (name, value) in labels {
            self.out.push(separator);
            self.out.extend_from_slice(name.as_bytes());
            self.out.extend_from_slice(b"=\"");
            escape(value, true, self.out);
            self.out.push(b'"');
            separator = b',';
        }
        if separator == b',' {
            self.out.push(b'}');
        }
        self.out.push(b' ');
        number(value, self.format, self.out);
        self.out.push(b'\n');
    }

    /// Ends the exposition.
    pub fn finish(self) {
        if self.format == Format::OpenMetrics {
            self.out.extend_from_slice(b"# EOF\n");
        }
    }

    fn header(&mut self) {
        let Family { name, help, kind } = self.family;
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        match self.format {
            Format::Text => {
                self.line(b"# HELP ", name, help, false);
                self.line(b"# TYPE ", name, kind, false);
            }
            Format::OpenMetrics => {
                let name = match self.family.kind {
                    Kind::Counter => name.strip_suffix("_total").unwrap_or(name),
                    Kind::Gauge => name,
                };
                self.line(b"# TYPE ", name, kind, false);
                self.line(b"# HELP ", name, help, true);
            }
        }
    }

    fn line(&mut self, prefix: &[u8], name: &str, text: &str, quotes: bool) {
        if text.is_empty() {
            return;
        }
        self.out.extend_from_slice(prefix);
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b' ');
        escape(text, quotes, self.out);
        self.out.push(b'\n');
    }
}

/// Escapes `\`, newline and (in label values and OpenMetrics HELP) `"`.
fn escape(text: &str, quotes: bool, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    if !bytes.iter().any(|&b| b == b'\\' || b == b'\n' || b == b'"') {
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

    fn render(format: Format) -> String {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out, format);
        w.family(
            "x_events_total",
            "Events \"seen\"\nso far \\ total.",
            Kind::Counter,
        );
        w.set_prefix(&[("a", "q\"\\\nz")]);
        w.sample(true, &[], 1.5);
        w.family("x_empty", "Never sampled.", Kind::Gauge);
        w.family("x_level", "", Kind::Gauge);
        w.sample(false, &[], f64::INFINITY);
        w.finish();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn encodes_openmetrics_counters_gauges_and_escapes() {
        let want = "# TYPE x_events counter\n\
                    # HELP x_events Events \\\"seen\\\"\\nso far \\\\ total.\n\
                    x_events_total{a=\"q\\\"\\\\\\nz\"} 1.5\n\
                    # TYPE x_level gauge\n\
                    x_level +Inf\n\
                    # EOF\n";
        assert_eq!(render(Format::OpenMetrics), want);
    }

    #[test]
    fn encodes_text_with_help_first_and_quotes_unescaped_in_help() {
        let want = "# HELP x_events_total Events \"seen\"\\nso far \\\\ total.\n\
                    # TYPE x_events_total counter\n\
                    x_events_total{a=\"q\\\"\\\\\\nz\"} 1.5\n\
                    # TYPE x_level gauge\n\
                    x_level inf\n";
        assert_eq!(render(Format::Text), want);
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
            let mut out = Vec::new();
            number(value, Format::Text, &mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                value.to_string(),
                "{value}"
            );
        }
    }
}
