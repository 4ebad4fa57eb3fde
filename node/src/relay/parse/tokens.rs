//! The tokens of one exposition line: a sample's name, labels, value and
//! timestamp, and HELP text. Each is validated or refused, never repaired.
//!
//! Every check is linear in the line: a line stops being read at its
//! [`MAX_LABELS`]th label or at a value over [`MAX_LABEL_VALUE_BYTES`],
//! before any more work on it.

use std::borrow::Cow;

use kube_metrics_contract::limits::MAX_LABEL_VALUE_BYTES;
use kube_metrics_contract::metrics::MAX_LABELS;

use super::value::{is_sample_value, is_timestamp};
use super::{Fault, Sample};

/// One label as read: its name and unescaped value.
type Label<'a> = (&'a str, Cow<'a, str>);

/// Parses `name{label="value",...} value [timestamp]`.
pub fn parse_sample(line: &str) -> Result<Sample<'_>, Fault> {
    let name_end = line.find(|c: char| !is_name_char(c)).unwrap_or(line.len());
    let (name, mut rest) = line.split_at(name_end);
    if !is_metric_name(name) {
        return Err(Fault::Malformed);
    }
    let mut labels = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(body)?;
        labels = parsed;
        rest = after;
    }
    // At least one blank must separate the name or labels from the value.
    if !rest.starts_with([' ', '\t']) {
        return Err(Fault::Malformed);
    }
    let mut tokens = rest.split([' ', '\t']).filter(|t| !t.is_empty());
    let value = tokens.next().ok_or(Fault::Malformed)?;
    let timestamp = tokens.next();
    let well_formed =
        tokens.next().is_none() && is_sample_value(value) && timestamp.is_none_or(is_timestamp);
    if !well_formed {
        return Err(Fault::Malformed);
    }
    Ok(Sample {
        name,
        labels,
        value,
        timestamp,
        line,
    })
}

/// Parses the label list after `{`; returns the labels and the text after `}`.
/// Stops at the label after the [`MAX_LABELS`]th, so a line with thousands
/// of labels costs no more than one with a few.
fn parse_labels(mut rest: &str) -> Result<(Vec<Label<'_>>, &str), Fault> {
    let mut labels: Vec<Label<'_>> = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if let Some(after) = rest.strip_prefix('}') {
            return no_repeats(&labels).map(|()| (labels, after));
        }
        if labels.len() == MAX_LABELS {
            return Err(Fault::TooManyLabels);
        }
        let name_end = rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len());
        let (name, after) = rest.split_at(name_end);
        if !is_label_name(name) {
            return Err(Fault::Malformed);
        }
        let after = after.trim_start_matches([' ', '\t']).strip_prefix('=');
        let after = after
            .ok_or(Fault::Malformed)?
            .trim_start_matches([' ', '\t']);
        let after = after.strip_prefix('"').ok_or(Fault::Malformed)?;
        let (value, after) = unescape_label_value(after).ok_or(Fault::Malformed)?;
        if value.len() > MAX_LABEL_VALUE_BYTES {
            return Err(Fault::LabelTooLong);
        }
        labels.push((name, value));
        rest = after.trim_start_matches([' ', '\t']);
        match rest.strip_prefix(',') {
            Some(after) => rest = after,
            None if rest.starts_with('}') => {}
            None => return Err(Fault::Malformed),
        }
    }
}

/// A label name twice makes the line malformed. At most [`MAX_LABELS`]
/// names: sorted on the stack and compared with their neighbours.
fn no_repeats(labels: &[Label<'_>]) -> Result<(), Fault> {
    let mut names = [""; MAX_LABELS];
    for (slot, (name, _)) in names.iter_mut().zip(labels) {
        *slot = *name;
    }
    let names = names.get_mut(..labels.len()).unwrap_or_default();
    names.sort_unstable();
    match names.windows(2).any(|pair| pair.first() == pair.last()) {
        true => Err(Fault::Malformed),
        false => Ok(()),
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
pub(super) fn unescape_help(text: &str) -> Option<Cow<'_, str>> {
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
        parse_sample(line).ok()
    }

    #[test]
    fn parses_sample_with_escaped_labels_and_timestamp() {
        let line = r#"m_total{a="x\"y",b="1\\2\n3",} 4.5e3 1700000000000"#;
        let s = sample(line).unwrap_or_else(|| panic!("sample must parse"));
        assert_eq!(s.name, "m_total");
        assert_eq!(
            s.labels,
            vec![("a", "x\"y".into()), ("b", "1\\2\n3".into())]
        );
        assert_eq!(s.value, "4.5e3");
        assert_eq!(s.timestamp, Some("1700000000000"));
        assert_eq!(s.line, line);
    }

    #[test]
    fn refuses_values_and_timestamps_prometheus_refuses() {
        for line in ["m 1e400", "m -nan", "m 0x1p4", "m 1 -5", "m 1 1.5"] {
            assert_eq!(parse_sample(line).err(), Some(Fault::Malformed), "{line:?}");
        }
        assert!(sample("m +Inf 17").is_some());
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
            "m{a=\"1\",b=\"2\",a=\"3\"} 1",
            "m{a=\"1} 1",
            "m{a=\"\\x\"} 1",
            "m{a=1} 1",
            "m one",
            "m 1 2.5",
            "m 1 2 3",
            "m 1 -2",
            "m{a=\"1\" b=\"2\"} 1",
            "m\u{0}x 1",
        ] {
            assert_eq!(parse_sample(line).err(), Some(Fault::Malformed), "{line:?}");
        }
    }

    #[test]
    fn stops_reading_a_line_at_too_many_labels_or_too_long_a_value() {
        let labels = |n: usize| -> String {
            let list: Vec<String> = (0..n).map(|i| format!("l{i}=\"v\"")).collect();
            format!("m{{{}}} 1", list.join(","))
        };
        assert!(parse_sample(&labels(MAX_LABELS)).is_ok());
        assert_eq!(
            parse_sample(&labels(MAX_LABELS + 1)).err(),
            Some(Fault::TooManyLabels)
        );
        // Even when the rest of the line is not read at all.
        let broken = format!("{} {{", labels(MAX_LABELS + 1));
        assert_eq!(parse_sample(&broken).err(), Some(Fault::TooManyLabels));
        let long = |n: usize| format!("m{{a=\"{}\"}} 1", "x".repeat(n));
        assert!(parse_sample(&long(MAX_LABEL_VALUE_BYTES)).is_ok());
        assert_eq!(
            parse_sample(&long(MAX_LABEL_VALUE_BYTES + 1)).err(),
            Some(Fault::LabelTooLong)
        );
    }

    #[test]
    fn a_line_of_many_labels_costs_what_a_short_one_does() {
        // 45,000 labels, the size of the attack that took seconds: read up to the seventh.
        let list: Vec<String> = (0..45_000).map(|i| format!("l{i}=\"v\"")).collect();
        let line = format!("m{{{}}} 1", list.join(","));
        let start = std::time::Instant::now();
        for _ in 0..100 {
            assert_eq!(parse_sample(&line).err(), Some(Fault::TooManyLabels));
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
    }

    proptest::proptest! {
        /// The writer's escaping and this parser agree on every label value and HELP text.
        #[test]
        fn unescapes_what_the_writer_escapes(text in "[a-z\\\\\"\n\t ]{0,16}") {
            let mut value = Vec::new();
            kube_metrics_exposition::escape_label_value(&text, &mut value);
            value.push(b'"');
            let value = String::from_utf8(value).unwrap();
            let (parsed, rest) = unescape_label_value(&value).unwrap();
            proptest::prop_assert_eq!(parsed.as_ref(), text.as_str());
            proptest::prop_assert_eq!(rest, "");
            let mut help = Vec::new();
            let format = kube_metrics_exposition::Format::Text;
            kube_metrics_exposition::escape_help(&text, format, &mut help);
            let help = String::from_utf8(help).unwrap();
            let unescaped = unescape_help(&help).unwrap();
            proptest::prop_assert_eq!(unescaped.as_ref(), text.as_str());
        }
    }
}
