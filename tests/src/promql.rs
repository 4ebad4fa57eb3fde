//! Which metric names a PromQL expression reads: enough of the lexer to tell a metric from a
//! function, keyword, label, string or duration. No I/O.

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
    fn unterminated_input_does_not_panic() {
        assert_eq!(names("m{a=\"x"), ["m"]);
        assert_eq!(names("sum by (a"), Vec::<String>::new());
        assert_eq!(names("'"), Vec::<String>::new());
    }
}
