//! Which metric names a PromQL expression reads, and with which label matchers, from the tokens
//! of the contract's PromQL lexer (the one the OpenShift rewrite reads expressions with): a metric
//! is told from a function, keyword, label, string or duration by its token and the next. No I/O.

use std::collections::BTreeSet;

use kube_metrics_contract::user_workload::lex::{self, GROUPING, Kind, Token};

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

/// Metric names referenced by `expr`: identifiers that are not functions, keywords, label names in
/// grouping clauses, label matchers, strings, numbers, durations or Grafana variables.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    selectors(expr).into_iter().map(|s| s.name).collect()
}

/// Every selector of `expr` that names a metric, in order, with its matchers (values unescaped).
/// A string or block that never closes runs to the end of `expr`.
pub fn selectors(expr: &str) -> Vec<Selector> {
    let tokens = lex::tokens(expr);
    let kind_at = |i: Option<usize>| i.and_then(|i| tokens.get(i)).map(|t| t.kind);
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(token) = tokens.get(i) {
        i += 1;
        if token.kind != Kind::Ident {
            continue;
        }
        let word = token.text(expr);
        let next = lex::next_solid(&tokens, i);
        let call = kind_at(next) == Some(Kind::Open);
        if GROUPING.contains(&word) {
            // Label names up to the `)`, not metrics.
            if let Some(open) = next.filter(|_| call) {
                i = past_close(&tokens, open + 1);
            }
        } else if !call && !is_operator(word) {
            let braces = next.filter(|_| kind_at(next) == Some(Kind::Braces));
            let matchers = braces.map_or_else(Vec::new, |b| {
                i = b + 1;
                matchers(tokens[b].text(expr))
            });
            out.push(Selector {
                name: word.to_owned(),
                matchers,
            });
        }
    }
    out
}

/// The matchers of a `{…}` block (one that never closes: up to the end).
fn matchers(block: &str) -> Vec<Matcher> {
    let inside = block.strip_prefix('{').unwrap_or(block);
    let inside = inside.strip_suffix('}').unwrap_or(inside);
    lex::matchers(inside)
        .into_iter()
        .filter_map(|matcher| {
            let (label, rest) = lex::split_matcher(matcher);
            let op_end = rest
                .find(|c| !matches!(c, '=' | '!' | '~'))
                .unwrap_or(rest.len());
            let (op, value) = rest.split_at(op_end);
            (!label.is_empty() && !op.is_empty()).then(|| Matcher {
                label: label.to_owned(),
                op: op.to_owned(),
                value: unquote(value.trim_start()),
            })
        })
        .collect()
}

/// A PromQL string's value: backslash escapes in `"` and `'` strings, none in raw `` ` `` ones.
fn unquote(quoted: &str) -> String {
    let mut chars = quoted.chars();
    let quote = chars.next();
    let mut value = String::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quote != Some('`') => value.extend(chars.next()),
            c if Some(c) == quote => break,
            c => value.push(c),
        }
    }
    value
}

/// The token after the first `)` at or after `from`; the end when there is none.
fn past_close(tokens: &[Token], from: usize) -> usize {
    (from..tokens.len())
        .find(|&i| tokens[i].kind == Kind::Close)
        .map_or(tokens.len(), |close| close + 1)
}

/// True for an aggregation written without parentheses right after it, or a keyword.
fn is_operator(word: &str) -> bool {
    AGGREGATIONS.contains(&word) || KEYWORDS.contains(&word.to_lowercase().as_str())
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
