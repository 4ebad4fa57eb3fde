//! Which metric names a PromQL expression reads, and with which label matchers: enough of the
//! lexer to tell a metric from a function, keyword, label, string or duration. No I/O.

use std::collections::BTreeSet;

/// Binary operators and literals that look like identifiers.
const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "inf", "nan"];
/// Aggregations may put `by (...)` between their name and their argument.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "limitk",
    "limit_ratio",
];
/// Clauses whose parenthesised list holds label names, not expressions.
const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Metric names referenced by `expr`: identifiers that are not functions, keywords, label names in
/// grouping clauses, label matchers, strings, numbers, durations or Grafana variables.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i = match c {
            '"' | '\'' | '`' => skip_past(&chars, i + 1, c),
            '{' => skip_past(&chars, i + 1, '}'),
            '[' => skip_past(&chars, i + 1, ']'),
            // Numbers (`1e3`), durations (`5m`) and Grafana variables (`$__rate_interval`).
            '$' | '0'..='9' => skip_while(&chars, i + 1, |c| {
                c.is_alphanumeric() || c == '_' || c == '.'
            }),
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let end = skip_while(&chars, i, |c| {
                    c.is_ascii_alphanumeric() || c == '_' || c == ':'
                });
                let word: String = chars.get(i..end).unwrap_or_default().iter().collect();
                let next = skip_while(&chars, end, char::is_whitespace);
                let call = chars.get(next) == Some(&'(');
                if GROUPING.contains(&word.as_str()) {
                    if call {
                        skip_past(&chars, next + 1, ')')
                    } else {
                        end
                    }
                } else {
                    if !call && !is_operator(&word) {
                        names.insert(word);
                    }
                    end
                }
            }
            _ => i + 1,
        };
    }
    names
}

/// One vector selector: a metric name and its label matchers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    pub name: String,
    pub matchers: Vec<Matcher>,
}

/// `label op "value"` of a selector; `op` is one of `=`, `!=`, `=~`, `!~`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matcher {
    pub label: String,
    pub op: String,
    pub value: String,
}

/// Every selector of `expr` that names a metric, in order, with its matchers (values unescaped).
pub fn selectors(expr: &str) -> Vec<Selector> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i = match c {
            '"' | '\'' | '`' => skip_past(&chars, i + 1, c),
            '{' => skip_past(&chars, i + 1, '}'),
            '[' => skip_past(&chars, i + 1, ']'),
            '$' | '0'..='9' => skip_while(&chars, i + 1, |c| {
                c.is_alphanumeric() || c == '_' || c == '.'
            }),
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let end = skip_while(&chars, i, |c| {
                    c.is_ascii_alphanumeric() || c == '_' || c == ':'
                });
                let word: String = chars.get(i..end).unwrap_or_default().iter().collect();
                let next = skip_while(&chars, end, char::is_whitespace);
                let call = chars.get(next) == Some(&'(');
                if GROUPING.contains(&word.as_str()) {
                    if call {
                        skip_past(&chars, next + 1, ')')
                    } else {
                        end
                    }
                } else if !call && !is_operator(&word) {
                    let (matchers, after) = if chars.get(end) == Some(&'{') {
                        matchers(&chars, end + 1)
                    } else {
                        (Vec::new(), end)
                    };
                    out.push(Selector {
                        name: word,
                        matchers,
                    });
                    after
                } else {
                    end
                }
            }
            _ => i + 1,
        };
    }
    out
}

/// The matchers from just after a `{` to its `}`; returns them and the index past the `}`.
fn matchers(chars: &[char], from: usize) -> (Vec<Matcher>, usize) {
    let mut out = Vec::new();
    let mut i = from;
    loop {
        i = skip_while(chars, i, |c| c.is_whitespace() || c == ',');
        match chars.get(i) {
            None => return (out, i),
            Some('}') => return (out, i + 1),
            _ => {}
        }
        let end = skip_while(chars, i, |c| c.is_ascii_alphanumeric() || c == '_');
        let label: String = chars.get(i..end).unwrap_or_default().iter().collect();
        let op_start = skip_while(chars, end, char::is_whitespace);
        let op_end = skip_while(chars, op_start, |c| matches!(c, '=' | '!' | '~'));
        let op: String = chars
            .get(op_start..op_end)
            .unwrap_or_default()
            .iter()
            .collect();
        let quote_at = skip_while(chars, op_end, char::is_whitespace);
        let Some(&quote) = chars.get(quote_at) else {
            return (out, quote_at);
        };
        let mut value = String::new();
        let mut j = quote_at + 1;
        while let Some(&c) = chars.get(j) {
            j += 1;
            match c {
                '\\' if quote != '`' => {
                    if let Some(&escaped) = chars.get(j) {
                        value.push(escaped);
                        j += 1;
                    }
                }
                c if c == quote => break,
                c => value.push(c),
            }
        }
        if label.is_empty() || op.is_empty() {
            return (out, j);
        }
        out.push(Matcher { label, op, value });
        i = j;
    }
}

/// True for an aggregation written without parentheses right after it, or a keyword.
fn is_operator(word: &str) -> bool {
    AGGREGATIONS.contains(&word) || KEYWORDS.contains(&word.to_lowercase().as_str())
}

/// The index just past the first `close` at or after `from`; the end when there is none.
fn skip_past(chars: &[char], from: usize, close: char) -> usize {
    chars
        .get(from..)
        .and_then(|rest| rest.iter().position(|&c| c == close))
        .map_or(chars.len(), |p| from + p + 1)
}

/// The first index at or after `from` whose char does not satisfy `keep`.
fn skip_while(chars: &[char], from: usize, keep: impl Fn(char) -> bool) -> usize {
    let mut i = from;
    while chars.get(i).is_some_and(|&c| keep(c)) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(expr: &str) -> Vec<String> {
        metric_names(expr).into_iter().collect()
    }

    #[test]
    fn metric_names_are_extracted_from_promql() {
        let expr = r#"sum by (namespace, pod) (rate(a_total{kind=~"x|y"}[5m])) / on (pod) group_left (domain) b:c:sum
        or label_replace(c == 0, "process", "d|e", "", "") > 14 * 86400 and time() - 1e3 > $__x"#;
        assert_eq!(names(expr), ["a_total", "b:c:sum", "c"]);
    }

    #[test]
    fn aggregation_without_grouping_is_not_a_metric() {
        assert_eq!(names("sum(x) by (pod)"), ["x"]);
        assert_eq!(names("topk(3, y)"), ["y"]);
    }

    #[test]
    fn keywords_are_case_insensitive() {
        assert_eq!(names("a AND b Unless c OFFSET 5m"), ["a", "b", "c"]);
    }

    #[test]
    fn grafana_variables_and_durations_are_skipped() {
        assert_eq!(names("rate(m[$__rate_interval]) * $scale + 1.5"), ["m"]);
    }

    #[test]
    fn selectors_carry_their_matchers() {
        let expr = r#"sum by (pod) (rate(a_total{kind=~"x|y", pod!="p\"q"}[5m])) / on (pod) b
            or label_replace(c{d='e'} == 0, "process", "d|e", "", "")"#;
        let got = selectors(expr);
        let m = |label: &str, op: &str, value: &str| Matcher {
            label: label.into(),
            op: op.into(),
            value: value.into(),
        };
        assert_eq!(
            got,
            [
                Selector {
                    name: "a_total".into(),
                    matchers: vec![m("kind", "=~", "x|y"), m("pod", "!=", "p\"q")],
                },
                Selector {
                    name: "b".into(),
                    matchers: vec![],
                },
                Selector {
                    name: "c".into(),
                    matchers: vec![m("d", "=", "e")],
                },
            ]
        );
        let names: Vec<String> = selectors(expr).into_iter().map(|s| s.name).collect();
        assert_eq!(names, metric_names(expr).into_iter().collect::<Vec<_>>());
        assert_eq!(selectors("x{a=\"b").len(), 1);
    }

    #[test]
    fn unterminated_input_does_not_panic() {
        assert_eq!(names("m{a=\"x"), ["m"]);
        assert_eq!(names("sum by (a"), Vec::<String>::new());
        assert_eq!(names("'"), Vec::<String>::new());
    }
}
