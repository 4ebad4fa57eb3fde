//! Reads one target's Prometheus text exposition (format 0.0.4) into families
//! and samples, dropping every line it cannot prove well-formed. No I/O.
//!
//! The input comes from a socket that any pod on the node may have created,
//! so nothing here trusts it: every token is validated, bad lines are counted
//! and skipped, and nothing can panic. Values are kept as the validated source
//! token so that the relay never changes a number by reformatting it.
//!
//! Everything borrows from the exposition text: a target sends thousands of
//! samples per scrape, and an owned string per token made allocation the
//! relay's main cost. Only escaped label values and HELP texts are copied.

use std::borrow::Cow;
use std::collections::HashMap;

/// One sample line, with label values unescaped.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample<'a> {
    pub name: &'a str,
    pub labels: Vec<(&'a str, Cow<'a, str>)>,
    /// The value token exactly as the target wrote it (validated as a float).
    pub value: &'a str,
    /// The optional timestamp token (validated as an integer).
    pub timestamp: Option<&'a str>,
}

/// The samples of one metric family, as one target declared them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Family<'a> {
    /// Owned: one small copy per family, not per sample.
    pub name: String,
    /// HELP text, unescaped.
    pub help: Option<Cow<'a, str>>,
    /// TYPE, one of `counter`, `gauge`, `histogram`, `summary`, `untyped`.
    pub kind: Option<&'static str>,
    pub samples: Vec<Sample<'a>>,
}

/// A parsed exposition plus how many lines were thrown away.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Parsed<'a> {
    pub families: Vec<Family<'a>>,
    pub malformed: u64,
}

/// The metric types of text format 0.0.4.
const KINDS: [&str; 5] = ["counter", "gauge", "histogram", "summary", "untyped"];

// === impl Parsed ===

impl<'a> Parsed<'a> {
    /// Parses a whole exposition. Never fails: bad lines are counted.
    pub fn from_text(text: &'a str) -> Self {
        let mut parsed = Self::default();
        // Where each family name is in `families`, so that finding a family
        // does not scan all of them.
        let mut index: HashMap<&'a str, usize> = HashMap::new();
        // Index into `families` of the family the last HELP/TYPE named.
        let mut current: Option<usize> = None;
        for line in text.split('\n') {
            let ok = match line.strip_prefix('#') {
                Some(comment) => parsed.comment(comment, &mut index, &mut current),
                None if line.trim().is_empty() => true,
                None => match parse_sample(line) {
                    Some(sample) => {
                        parsed.push_sample(sample, &mut index, current);
                        true
                    }
                    None => false,
                },
            };
            if !ok {
                parsed.malformed += 1;
            }
        }
        parsed
    }

    /// Handles `# HELP`/`# TYPE`; other comments are ignored. Returns false
    /// for a malformed or contradictory metadata line.
    fn comment(
        &mut self,
        comment: &'a str,
        index: &mut HashMap<&'a str, usize>,
        current: &mut Option<usize>,
    ) -> bool {
        let mut words = comment
            .trim_start_matches([' ', '\t'])
            .splitn(2, [' ', '\t']);
        let keyword = words.next().unwrap_or_default();
        if keyword != "HELP" && keyword != "TYPE" {
            return true;
        }
        let rest = words
            .next()
            .unwrap_or_default()
            .trim_start_matches([' ', '\t']);
        let (name, arg) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
        if !is_metric_name(name) {
            return false;
        }
        let at = self.family_index(name, index);
        *current = Some(at);
        let Some(family) = self.families.get_mut(at) else {
            return false;
        };
        if keyword == "HELP" {
            let Some(help) = unescape_help(arg) else {
                return false;
            };
            if family.help.is_some() {
                return false;
            }
            family.help = Some(help);
            return true;
        }
        let Some(kind) = KINDS.iter().copied().find(|k| *k == arg.trim()) else {
            return false;
        };
        // A TYPE after the family's samples or a second TYPE is invalid in
        // the format; keep the first declaration.
        if family.kind.is_some() || !family.samples.is_empty() {
            return false;
        }
        family.kind = Some(kind);
        true
    }

    fn family_index(&mut self, name: &'a str, index: &mut HashMap<&'a str, usize>) -> usize {
        *index.entry(name).or_insert_with(|| {
            self.families.push(Family {
                name: name.to_owned(),
                ..Family::default()
            });
            self.families.len() - 1
        })
    }

    /// A sample belongs to the family last named by HELP/TYPE when its name
    /// fits that family's type; otherwise to the family of its own name.
    fn push_sample(
        &mut self,
        sample: Sample<'a>,
        index: &mut HashMap<&'a str, usize>,
        current: Option<usize>,
    ) {
        let fits = current
            .and_then(|i| self.families.get(i))
            .is_some_and(|f| belongs_to(sample.name, &f.name, f.kind));
        let at = match current {
            Some(at) if fits => at,
            _ => self.family_index(sample.name, index),
        };
        if let Some(family) = self.families.get_mut(at) {
            family.samples.push(sample);
        }
    }
}

/// Whether a sample name is part of a family of this name and type.
pub fn belongs_to(sample: &str, family: &str, kind: Option<&str>) -> bool {
    if sample == family {
        return true;
    }
    let Some(suffix) = sample.strip_prefix(family) else {
        return false;
    };
    match kind {
        Some("histogram") => matches!(suffix, "_bucket" | "_sum" | "_count"),
        Some("summary") => matches!(suffix, "_sum" | "_count"),
        _ => false,
    }
}

/// The well-formed samples called exactly `name`, in order, without parsing
/// the rest. Such a sample always lands in the family of its own name unless
/// `name` ends in a histogram or summary suffix.
pub fn samples_named<'a>(text: &'a str, name: &'a str) -> impl Iterator<Item = Sample<'a>> {
    text.split('\n')
        .filter(move |line| line.starts_with(name))
        .filter_map(parse_sample)
        .filter(move |sample| sample.name == name)
}

/// Parses `name{label="value",...} value [timestamp]`.
fn parse_sample(line: &str) -> Option<Sample<'_>> {
    let name_end = line.find(|c: char| !is_name_char(c)).unwrap_or(line.len());
    let (name, mut rest) = line.split_at(name_end);
    if !is_metric_name(name) {
        return None;
    }
    let mut labels = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(body)?;
        labels = parsed;
        rest = after;
    }
    // At least one blank must separate the name or labels from the value.
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    let mut tokens = rest.split([' ', '\t']).filter(|t| !t.is_empty());
    let value = tokens.next()?;
    let timestamp = tokens.next();
    if tokens.next().is_some() || value.parse::<f64>().is_err() {
        return None;
    }
    if timestamp.is_some_and(|t| t.parse::<i64>().is_err()) {
        return None;
    }
    Some(Sample {
        name,
        labels,
        value,
        timestamp,
    })
}

/// Parses the label list after `{`; returns the labels and the text after `}`.
#[allow(clippy::type_complexity)]
fn parse_labels(mut rest: &str) -> Option<(Vec<(&str, Cow<'_, str>)>, &str)> {
    let mut labels: Vec<(&str, Cow<'_, str>)> = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let name_end = rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len());
        let (name, after) = rest.split_at(name_end);
        if !is_label_name(name) || labels.iter().any(|(n, _)| *n == name) {
            return None;
        }
        let after = after.trim_start_matches([' ', '\t']).strip_prefix('=')?;
        let after = after.trim_start_matches([' ', '\t']).strip_prefix('"')?;
        let (value, after) = unescape_label_value(after)?;
        labels.push((name, value));
        rest = after.trim_start_matches([' ', '\t']);
        match rest.strip_prefix(',') {
            Some(after) => rest = after,
            None if rest.starts_with('}') => {}
            None => return None,
        }
    }
}

/// Reads a label value up to its closing quote; `\\`, `\"` and `\n` are the
/// only escapes the format defines, anything else is malformed. A value
/// without escapes (nearly all of them) is borrowed.
fn unescape_label_value(text: &str) -> Option<(Cow<'_, str>, &str)> {
    let end = text.find(['"', '\\'])?;
    if text.as_bytes().get(end) == Some(&b'"') {
        return Some((Cow::Borrowed(text.get(..end)?), text.get(end + 1..)?));
    }
    let mut value = String::from(text.get(..end)?);
    let mut chars = text.get(end..)?.char_indices().map(|(i, c)| (i + end, c));
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((Cow::Owned(value), text.get(i + 1..)?)),
            '\\' => match chars.next()?.1 {
                '\\' => value.push('\\'),
                '"' => value.push('"'),
                'n' => value.push('\n'),
                _ => return None,
            },
            c => value.push(c),
        }
    }
    None
}

/// HELP text escapes only `\\` and `\n`; an unknown escape is kept literally,
/// as Prometheus itself does.
fn unescape_help(text: &str) -> Option<Cow<'_, str>> {
    if !text.contains('\\') {
        return Some(Cow::Borrowed(text));
    }
    let mut help = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, true) => match chars.next() {
                Some('\\') => help.push('\\'),
                Some('n') => help.push('\n'),
                Some(other) => {
                    help.push('\\');
                    help.push(other);
                }
                None => help.push('\\'),
            },
            (c, false) => help.push(c),
        }
    }
    Some(Cow::Owned(help))
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
pub fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(is_name_char)
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(line: &str) -> Option<Sample<'_>> {
        parse_sample(line)
    }

    #[test]
    fn parses_sample_with_escaped_labels_and_timestamp() {
        let s = sample(r#"m_total{a="x\"y",b="1\\2\n3",} 4.5e3 1700000000000"#);
        let s = s.unwrap_or_else(|| panic!("sample must parse"));
        assert_eq!(s.name, "m_total");
        assert_eq!(
            s.labels,
            vec![("a", "x\"y".into()), ("b", "1\\2\n3".into())]
        );
        assert_eq!(s.value, "4.5e3");
        assert_eq!(s.timestamp, Some("1700000000000"));
    }

    #[test]
    fn accepts_special_float_values() {
        for v in ["+Inf", "-Inf", "NaN", "0", "-1.5"] {
            assert!(sample(&format!("m {v}")).is_some(), "{v}");
        }
    }

    #[test]
    fn rejects_malformed_samples() {
        for line in [
            "m",
            "m{a=\"1\"}",
            "m{a=\"1\"}1",
            "1m 1",
            "m{1a=\"1\"} 1",
            "m{a=\"1\",a=\"2\"} 1",
            "m{a=\"1} 1",
            "m{a=\"\\x\"} 1",
            "m{a=1} 1",
            "m one",
            "m 1 2.5",
            "m 1 2 3",
            "m{a=\"1\" b=\"2\"} 1",
            "m\u{0}x 1",
        ] {
            assert_eq!(sample(line), None, "{line:?}");
        }
    }

    #[test]
    fn groups_histogram_suffixes_under_their_family() {
        let text = "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 2\nh_count 1\nother 3\n";
        let parsed = Parsed::from_text(text);
        let names: Vec<_> = parsed
            .families
            .iter()
            .map(|f| (f.name.as_str(), f.samples.len()))
            .collect();
        assert_eq!(names, vec![("h", 3), ("other", 1)]);
        assert_eq!(parsed.malformed, 0);
    }

    #[test]
    fn counts_bad_metadata_and_keeps_first_type() {
        let text = "# TYPE a gauge\n# TYPE a counter\n# TYPE b bogus\n# HELP 1x y\n# random comment\na 1\n";
        let parsed = Parsed::from_text(text);
        assert_eq!(parsed.malformed, 3);
        assert_eq!(parsed.families.first().and_then(|f| f.kind), Some("gauge"));
    }

    #[test]
    fn unescapes_help() {
        let parsed = Parsed::from_text("# HELP a x\\\\y\\nz\\q\n");
        assert_eq!(
            parsed
                .families
                .first()
                .and_then(|f| f.help.clone())
                .as_deref(),
            Some("x\\y\nz\\q")
        );
    }
}
