//! Samples, as parsed from the Prometheus text format or returned by the Prometheus API.

use anyhow::{Context as _, Result, bail};
use std::collections::BTreeMap;

/// One sample: metric name, labels, value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

// === impl Sample ===

impl Sample {
    /// The value of label `name`, empty when absent (as in PromQL).
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }

    /// True when every `(label, value)` pair matches.
    pub fn matches(&self, selector: &[(&str, &str)]) -> bool {
        selector.iter().all(|(k, v)| self.label(k) == *v)
    }
}

/// `name{k="v",...}`, the values escaped as the text formats want them.
pub fn series_text<'a>(
    name: &str,
    labels: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> String {
    let labels: Vec<String> = labels
        .into_iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{name}{{{}}}", labels.join(","))
}

/// Parses the text format (0.0.4 or OpenMetrics): comments are skipped, timestamps ignored.
pub fn parse(text: &str) -> Result<Vec<Sample>> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| parse_line(line).with_context(|| format!("bad sample line {line:?}")))
        .collect()
}

/// The samples of metric `name` whose labels match `selector`.
pub fn select<'a>(samples: &'a [Sample], name: &str, selector: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| s.name == name && s.matches(selector))
        .collect()
}

/// The value of the single sample of `name` matching `selector`.
pub fn value(samples: &[Sample], name: &str, selector: &[(&str, &str)]) -> Result<f64> {
    match select(samples, name, selector).as_slice() {
        [one] => Ok(one.value),
        [] => bail!("no sample {name}{selector:?}"),
        many => bail!("{} samples {name}{selector:?}: {many:?}", many.len()),
    }
}

fn parse_line(line: &str) -> Result<Sample> {
    let name_end = line.find(['{', ' ']).context("no value")?;
    let name = line.get(..name_end).unwrap_or_default().to_owned();
    let mut rest = line.get(name_end..).unwrap_or_default();
    let mut labels = BTreeMap::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        rest = parse_labels(after_brace, &mut labels)?;
    }
    let value = rest
        .split_whitespace()
        .next()
        .context("no value")?
        .parse()
        .context("value is not a number")?;
    Ok(Sample {
        name,
        labels,
        value,
    })
}

/// Parses `k="v",...}` into `labels`, returns what follows the `}`.
fn parse_labels<'a>(mut rest: &'a str, labels: &mut BTreeMap<String, String>) -> Result<&'a str> {
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        let (key, after_key) = rest.split_once("=\"").context("label without =\"")?;
        let mut value = String::new();
        let mut chars = after_key.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => bail!("label value ends in a backslash"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => bail!("unterminated label value"),
            }
        };
        labels.insert(key.trim().to_owned(), value);
        rest = after_key.get(end + 1..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_labels_are_written_as_openmetrics() {
        let sample = Sample {
            name: "vmi:x:max".into(),
            labels: [("a".to_owned(), "q\"".to_owned())].into(),
            value: 1.0,
        };
        assert_eq!(
            series_text(&sample.name, &sample.labels),
            "vmi:x:max{a=\"q\\\"\"}"
        );
    }

    #[test]
    fn parses_labels_escapes_and_special_values() {
        let text = "# HELP x y\n# TYPE x counter\n\
            x_total{a=\"1\",b=\"q\\\"uo\\\\te\\n\"} 2.5\n\
            up 1 1700000000000\n\
            inf{le=\"+Inf\"} +Inf\n";
        let samples = parse(text).unwrap();
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0].name, "x_total");
        assert_eq!(samples[0].label("a"), "1");
        assert_eq!(samples[0].label("b"), "q\"uo\\te\n");
        assert_eq!(samples[0].value, 2.5);
        assert_eq!(value(&samples, "up", &[]).unwrap(), 1.0);
        assert!(samples[2].value.is_infinite());
        assert_eq!(samples[2].label("le"), "+Inf");
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse("novalue").is_err());
        assert!(parse("x{a=\"1} 2").is_err());
        assert!(parse("x abc").is_err());
    }

    #[test]
    fn value_wants_exactly_one() {
        let samples = parse("m{p=\"a\"} 1\nm{p=\"b\"} 2\n").unwrap();
        assert!(value(&samples, "m", &[]).is_err());
        assert_eq!(value(&samples, "m", &[("p", "b")]).unwrap(), 2.0);
        assert!(value(&samples, "m", &[("p", "c")]).is_err());
    }
}
