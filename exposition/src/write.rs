//! Writes metric families straight into a byte buffer, as Prometheus text 0.0.4 or OpenMetrics
//! 1.0.0. No intermediate metric objects: a scrape's ~300 samples cost no allocation but the
//! buffer of the labels they share (`benches/writer.rs`).
//!
//! Differences between the formats that matter here: text writes `# HELP` then `# TYPE` and escapes
//! only `\` and newline in HELP; OpenMetrics writes `# TYPE` first, names a counter *family* without
//! `_total` while its sample keeps it, calls `untyped` `unknown`, escapes `"` in HELP too, and ends
//! with `# EOF`.
//! <https://github.com/prometheus/OpenMetrics/blob/v1.0.0/specification/OpenMetrics.md>

mod line;

pub use line::{Line, escape_help, escape_label_value, label};

use crate::Format;

/// The metric types of text format 0.0.4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

/// Appends families and samples to `out`. A family's header is written with its first sample, so
/// a family without samples leaves no trace (the text format forbids an empty family).
#[derive(Debug)]
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
    format: Format,
    family: Family<'a>,
    header_written: bool,
    /// No HELP or TYPE at all: sample lines for a caller that writes the headers itself.
    headless: bool,
    /// Labels first on every sample (the node collector's `namespace` and `pod`), escaped once.
    lead: Vec<u8>,
    /// Labels common to many samples (`host`, `domain`), escaped once: `a="x",b="y"`.
    prefix: Vec<u8>,
}

/// The header of the current family; a `None` line is not written.
#[derive(Clone, Copy, Debug)]
struct Family<'a> {
    name: &'a str,
    help: Option<&'a str>,
    kind: Option<Kind>,
}

// === impl Kind ===

impl Kind {
    const ALL: [Self; 5] = [
        Self::Counter,
        Self::Gauge,
        Self::Histogram,
        Self::Summary,
        Self::Untyped,
    ];

    /// The `# TYPE` word of text format 0.0.4.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
            Self::Summary => "summary",
            Self::Untyped => "untyped",
        }
    }

    /// The kind a text-format `# TYPE` word names.
    pub fn from_text(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == word)
    }

    fn word(self, format: Format) -> &'static str {
        match (self, format) {
            (Self::Untyped, Format::OpenMetrics) => "unknown",
            _ => self.as_str(),
        }
    }
}

// === impl Writer ===

impl<'a> Writer<'a> {
    pub fn new(out: &'a mut Vec<u8>, format: Format) -> Self {
        Self {
            out,
            format,
            family: Family {
                name: "",
                help: None,
                kind: None,
            },
            header_written: true,
            headless: false,
            lead: Vec::new(),
            prefix: Vec::new(),
        }
    }

    /// A writer of sample lines only, in text format: families leave no HELP or TYPE, for a
    /// caller that gathers the lines of many writers under one header per family.
    pub fn headless(out: &'a mut Vec<u8>) -> Self {
        Self {
            headless: true,
            ..Self::new(out, Format::Text)
        }
    }

    /// Sets the labels that `sample(true, ..)` puts first.
    pub fn set_prefix(&mut self, labels: &[(&str, &str)]) {
        escaped(labels, &mut self.prefix);
    }

    /// Sets the labels that every sample puts first, before the prefix.
    pub fn set_lead(&mut self, labels: &[(&str, &str)]) {
        escaped(labels, &mut self.lead);
    }

    /// Bytes written to the buffer so far.
    pub fn position(&self) -> usize {
        self.out.len()
    }

    /// Starts a family; `name` of a counter ends in `_total`; an empty `help` writes no HELP.
    pub fn family(&mut self, name: &'a str, help: &'a str, kind: Kind) {
        let help = (!help.is_empty()).then_some(help);
        self.declared(name, help, Some(kind));
    }

    /// Starts a family as a target declared it: HELP and TYPE only when it had them.
    pub fn declared(&mut self, name: &'a str, help: Option<&'a str>, kind: Option<Kind>) {
        self.family = Family { name, help, kind };
        self.header_written = false;
    }

    /// One sample of the current family, with the prefix labels (when `prefixed`) then `labels`.
    pub fn sample(&mut self, prefixed: bool, labels: &[(&str, &str)], value: f64) {
        if self.family.name.is_empty() {
            return;
        }
        self.header();
        let mut line = Line::new(self.out, self.family.name);
        line.escaped_labels(&self.lead);
        if prefixed {
            line.escaped_labels(&self.prefix);
        }
        for (name, value) in labels {
            line.label(name, value);
        }
        line.value(value, self.format);
    }

    /// Sample lines of the current family already written with [`Line`]; nothing when empty.
    pub fn lines(&mut self, lines: &[u8]) {
        if lines.is_empty() || self.family.name.is_empty() {
            return;
        }
        self.header();
        self.out.extend_from_slice(lines);
    }

    /// Writes the current family's HELP and TYPE now, for sample lines that its caller appends to
    /// the buffer itself once this writer is dropped (the relay writes each target's lines
    /// straight into its answer, with [`Line`]).
    pub fn header_now(&mut self) {
        if !self.family.name.is_empty() {
            self.header();
        }
    }

    /// Ends the exposition.
    pub fn finish(self) {
        if self.format == Format::OpenMetrics {
            self.out.extend_from_slice(b"# EOF\n");
        }
    }

    /// The current family's HELP and TYPE, once.
    fn header(&mut self) {
        if self.header_written || self.headless {
            return;
        }
        self.header_written = true;
        let Family { name, help, kind } = self.family;
        let word = kind.map(|k| k.word(self.format));
        match self.format {
            Format::Text => {
                self.help(name, help);
                self.kind(name, word);
            }
            Format::OpenMetrics => {
                let name = match kind {
                    Some(Kind::Counter) => name.strip_suffix("_total").unwrap_or(name),
                    _ => name,
                };
                self.kind(name, word);
                self.help(name, help);
            }
        }
    }

    fn help(&mut self, name: &str, help: Option<&str>) {
        if let Some(help) = help {
            self.comment(b"# HELP ", name);
            escape_help(help, self.format, self.out);
            self.out.push(b'\n');
        }
    }

    fn kind(&mut self, name: &str, word: Option<&str>) {
        if let Some(word) = word {
            self.comment(b"# TYPE ", name);
            self.out.extend_from_slice(word.as_bytes());
            self.out.push(b'\n');
        }
    }

    fn comment(&mut self, keyword: &[u8], name: &str) {
        self.out.extend_from_slice(keyword);
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b' ');
    }
}

/// `labels` escaped once into `out` (cleared first), as `a="x",b="y"`.
fn escaped(labels: &[(&str, &str)], out: &mut Vec<u8>) {
    out.clear();
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        label(name, value, out);
    }
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
    fn forwards_declared_families_with_their_lines() {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out, Format::Text);
        w.declared("h", Some(""), Some(Kind::Histogram));
        w.lines(b"h_count 1\n");
        w.declared("bare", None, None);
        w.lines(b"bare 2\n");
        w.declared("skipped", Some("x"), Some(Kind::Gauge));
        w.lines(b"");
        w.declared("u", None, Some(Kind::Untyped));
        w.lines(b"u 3\n");
        w.finish();
        let want = "# HELP h \n# TYPE h histogram\nh_count 1\nbare 2\n# TYPE u untyped\nu 3\n";
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[test]
    fn writes_a_header_now_for_lines_appended_after_it() {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out, Format::Text);
        w.header_now();
        w.declared("g", Some("Level."), Some(Kind::Gauge));
        w.header_now();
        w.header_now();
        drop(w);
        Line::new(&mut out, "g").raw_value("1", None);
        let want = "# HELP g Level.\n# TYPE g gauge\ng 1\n";
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[test]
    fn openmetrics_calls_untyped_unknown() {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out, Format::OpenMetrics);
        w.declared("u", None, Some(Kind::Untyped));
        w.lines(b"u 3\n");
        w.finish();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "# TYPE u unknown\nu 3\n# EOF\n"
        );
    }

    #[test]
    fn kinds_round_trip_through_their_type_words() {
        let cases = [
            ("counter", Some(Kind::Counter)),
            ("gauge", Some(Kind::Gauge)),
            ("histogram", Some(Kind::Histogram)),
            ("summary", Some(Kind::Summary)),
            ("untyped", Some(Kind::Untyped)),
            ("unknown", None),
            ("Gauge", None),
            ("", None),
        ];
        for (word, want) in cases {
            assert_eq!(Kind::from_text(word), want, "{word:?}");
        }
    }

    #[test]
    fn headless_writes_lines_only_with_the_lead_labels_first() {
        let mut out = Vec::new();
        let mut w = Writer::headless(&mut out);
        w.set_lead(&[("namespace", "ns"), ("pod", "p\"q")]);
        w.set_prefix(&[("host", "h")]);
        w.family("x_total", "Help.", Kind::Counter);
        w.sample(true, &[("k", "v")], 2.0);
        let middle = w.position();
        w.family("y", "Help.", Kind::Gauge);
        w.sample(false, &[], 1.0);
        w.finish();
        let want = "x_total{namespace=\"ns\",pod=\"p\\\"q\",host=\"h\",k=\"v\"} 2\n\
                    y{namespace=\"ns\",pod=\"p\\\"q\"} 1\n";
        assert_eq!(String::from_utf8(out.clone()).unwrap(), want);
        assert_eq!(
            out.get(middle..),
            Some(&b"y{namespace=\"ns\",pod=\"p\\\"q\"} 1\n"[..])
        );
    }
}
