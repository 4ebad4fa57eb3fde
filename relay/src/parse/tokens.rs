//! The tokens of one exposition line: a sample's name, labels, value and
//! timestamp, and HELP text. Each is validated or refused, never repaired.

use std::borrow::Cow;

use super::Sample;

/// Parses `name{label="value",...} value [timestamp]`.
pub(super) fn parse_sample(line: &str) -> Option<Sample<'_>> {
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
