//! PromQL that reads the collector's families as OpenShift's user-workload monitoring stores them
//! (docs/openshift.md). There every target's own `namespace` and `pod` win over the scraped ones
//! (`overrideHonorLabels`), so a series the relay forwards arrives with the relay's
//! `namespace`/`pod` and the VM's as `exported_namespace`/`exported_pod`. [`rewrite`] turns each
//! selector of a collector family into the union of
//!
//! - the series of every other namespace, as they are (directly scraped pods; under any other
//!   Prometheus, relayed ones too), and
//! - the series of the install namespace that carry `exported_*`, with those promoted to
//!   `namespace`/`pod`: only the relay's target can be there, so a tenant's directly scraped pod
//!   that writes a `namespace` of its own (kept as `exported_namespace`) stays in its namespace.
//!
//! A selector's own `namespace`/`pod` matchers apply to the promoted labels in the second part.
//! A range selector cannot be relabelled, so the function call that reads it is split instead:
//! `rate(F[5m])` becomes `(rate(F{…direct}[5m]) or label_replace(…rate(F{…relayed}[5m])…))`.
//! Both parts keep `exported_*`; the `max by (namespace, pod, …)` the rules put around each raw
//! read drops them, so a pod read both ways counts once.
//!
//! The rewrite is idempotent: a selector with a matcher on `exported_namespace`/`exported_pod`, or
//! with `namespace!="<install namespace>"`, is already one of the two parts and is left alone.
//! Selectors by `{__name__=…}` are not recognised. No I/O, no dependencies.

pub mod lex;

use crate::metrics;
use lex::{GROUPING, Kind, Token, next_solid};

/// Functions of a range vector that return one series per input series, with its labels: a call
/// of one splits into a direct and a relayed call. `absent_over_time` is not one (it answers for
/// all series together).
const PER_SERIES: &[&str] = &[
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "deriv",
    "predict_linear",
    "holt_winters",
    "double_exponential_smoothing",
    "changes",
    "resets",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "quantile_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "last_over_time",
    "first_over_time",
    "present_over_time",
    "mad_over_time",
];

/// Why an expression was not rewritten.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RewriteError {
    /// A string, `{…}` or `[…]` opened at this byte never closes.
    Unterminated { at: usize },
    /// A `)` at this byte closes nothing, or a `(` is never closed.
    Unbalanced { at: usize },
    /// A range selector of `family` that is not the argument of a function in [`PER_SERIES`]
    /// (`function` is empty outside any call).
    RangeOutsideCall { family: String, function: String },
}

impl std::fmt::Display for RewriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unterminated { at } => write!(f, "unterminated string or block at byte {at}"),
            Self::Unbalanced { at } => write!(f, "unbalanced parenthesis at byte {at}"),
            Self::RangeOutsideCall { family, function } if function.is_empty() => {
                write!(f, "range selector of {family} outside a function call")
            }
            Self::RangeOutsideCall { family, function } => write!(
                f,
                "range selector of {family} read by {function}, which does not answer per series"
            ),
        }
    }
}

impl std::error::Error for RewriteError {}

/// An open parenthesis: its token, the function it calls if any, whether it holds label names,
/// and how much was written and copied when it opened.
#[derive(Debug)]
struct Open<'e> {
    token: usize,
    function: Option<&'e str>,
    labels: bool,
    out_len: usize,
    copied: usize,
}

/// `expr` with every selector of a collector family ([`metrics::FAMILIES`]) reading relayed series
/// as user-workload monitoring stores them, relayed by the install namespace `install_namespace`.
pub fn rewrite(expr: &str, install_namespace: &str) -> Result<String, RewriteError> {
    let tokens = lex::lex(expr)?;
    let mut out = String::with_capacity(expr.len() * 2);
    let mut copied = 0;
    let mut open: Vec<Open<'_>> = Vec::new();
    let mut i = 0;
    while let Some(token) = tokens.get(i) {
        let text = &expr[token.start..token.end];
        i += 1;
        match token.kind {
            Kind::Open => open.push(Open {
                token: i - 1,
                function: None,
                labels: false,
                out_len: out.len(),
                copied,
            }),
            Kind::Close => {
                open.pop()
                    .ok_or(RewriteError::Unbalanced { at: token.start })?;
            }
            Kind::Ident if !open.last().is_some_and(|o| o.labels) => {
                if let Some(n) = next_solid(&tokens, i).filter(|&n| tokens[n].kind == Kind::Open) {
                    open.push(Open {
                        token: i - 1,
                        function: Some(text),
                        labels: GROUPING.contains(&text),
                        out_len: out.len(),
                        copied,
                    });
                    i = n + 1;
                    continue;
                }
                if metrics::family(text).is_none() {
                    continue;
                }
                let selector = Selector::read(expr, &tokens, i - 1);
                i = selector.end_token;
                if selector.rewritten(install_namespace) {
                    continue;
                }
                if !selector.range {
                    out.push_str(&expr[copied..token.start]);
                    out.push_str(&selector.union(expr, install_namespace));
                    copied = selector.end;
                    continue;
                }
                let call = match open.pop() {
                    Some(call) if call.function.is_some_and(|f| PER_SERIES.contains(&f)) => call,
                    other => {
                        return Err(RewriteError::RangeOutsideCall {
                            family: text.to_owned(),
                            function: other.and_then(|o| o.function).unwrap_or("").to_owned(),
                        });
                    }
                };
                let (split, close) =
                    split_call(expr, &tokens, &call, &selector, install_namespace)?;
                // Earlier arguments of the call may have been rewritten already: start the call
                // over, each half rewrites them.
                out.truncate(call.out_len);
                out.push_str(&expr[call.copied..tokens[call.token].start]);
                out.push_str(&split);
                copied = tokens[close].end;
                i = close + 1;
            }
            _ => {}
        }
    }
    if let Some(o) = open.last() {
        return Err(RewriteError::Unbalanced {
            at: tokens[o.token].start,
        });
    }
    out.push_str(&expr[copied..]);
    Ok(out)
}

/// The per-series function `call` that reads the range `selector`, as the union of a call on each
/// half, every other selector in it rewritten in both; and the token of its `)`.
fn split_call(
    expr: &str,
    tokens: &[Token],
    call: &Open<'_>,
    selector: &Selector<'_>,
    namespace: &str,
) -> Result<(String, usize), RewriteError> {
    let start = tokens[call.token].start;
    let close =
        matching_close(tokens, selector.end_token).ok_or(RewriteError::Unbalanced { at: start })?;
    let half = |braces: String| {
        let text = format!(
            "{}{}{braces}{}",
            &expr[start..selector.name_start],
            selector.name,
            &expr[selector.braces_end..tokens[close].end]
        );
        rewrite(&text, namespace)
    };
    let direct = half(selector.direct(namespace))?;
    let relayed = half(selector.relayed(namespace))?;
    Ok((union(&direct, &relayed), close))
}

/// `(direct or relayed with exported_* promoted)`.
fn union(direct: &str, relayed: &str) -> String {
    format!(
        r#"({direct} or label_replace(label_replace({relayed}, "namespace", "$1", "exported_namespace", "(.+)"), "pod", "$1", "exported_pod", "(.+)"))"#
    )
}

/// The `)` that closes the parenthesis open around token `inside`.
fn matching_close(tokens: &[Token], inside: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, token) in tokens.iter().enumerate().skip(inside) {
        match token.kind {
            Kind::Open => depth += 1,
            Kind::Close if depth == 0 => return Some(i),
            Kind::Close => depth -= 1,
            _ => {}
        }
    }
    None
}

/// `text` as a PromQL string.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Past `offset <duration>` and `@ <time>` modifiers from token `from` on, in either order:
/// the token after the last one.
fn past_modifiers(expr: &str, tokens: &[Token], from: usize) -> usize {
    let mut end = from;
    loop {
        let Some(m) = next_solid(tokens, end) else {
            return end;
        };
        let word = &expr[tokens[m].start..tokens[m].end];
        let after = if tokens[m].kind == Kind::Ident && word.eq_ignore_ascii_case("offset") {
            // `offset 5m` or `offset -5m`.
            let mut d = next_solid(tokens, m + 1);
            if d.is_some_and(|d| &expr[tokens[d].start..tokens[d].end] == "-") {
                d = d.and_then(|d| next_solid(tokens, d + 1));
            }
            d.filter(|&d| tokens[d].kind == Kind::Number)
        } else if word == "@" {
            // `@ 1700000000`, `@ start()`, `@ end()`.
            next_solid(tokens, m + 1).and_then(|t| match tokens[t].kind {
                Kind::Number => Some(t),
                Kind::Ident => next_solid(tokens, t + 1)
                    .filter(|&o| tokens[o].kind == Kind::Open)
                    .and_then(|o| next_solid(tokens, o + 1))
                    .filter(|&c| tokens[c].kind == Kind::Close),
                _ => None,
            })
        } else {
            None
        };
        match after {
            Some(last) => end = last + 1,
            None => return end,
        }
    }
}

/// One selector of a family: `name{…}`, then a range `[…]`, then `offset`/`@`. A subquery's
/// `[…:…]` is not part of it: the subquery reads the selector as an instant vector.
#[derive(Debug)]
struct Selector<'e> {
    name: &'e str,
    /// The byte where the name starts.
    name_start: usize,
    /// The matchers inside the braces, if any.
    matchers: Vec<&'e str>,
    /// The byte just past the name, or past its braces.
    braces_end: usize,
    /// A range selector (`[5m]`), not a subquery (`[5m:1m]`).
    range: bool,
    /// The byte and the token just past the selector and its modifiers.
    end: usize,
    end_token: usize,
}

impl<'e> Selector<'e> {
    fn read(expr: &'e str, tokens: &[Token], at: usize) -> Self {
        let name = &expr[tokens[at].start..tokens[at].end];
        let (mut matchers, mut braces_end, mut next) = (Vec::new(), tokens[at].end, at + 1);
        if let Some(b) = next_solid(tokens, next).filter(|&b| tokens[b].kind == Kind::Braces) {
            let block = &expr[tokens[b].start + 1..tokens[b].end - 1];
            matchers = lex::matchers(block);
            braces_end = tokens[b].end;
            next = b + 1;
        }
        let bracket = next_solid(tokens, next).filter(|&b| tokens[b].kind == Kind::Brackets);
        let subquery = bracket.is_some_and(|b| expr[tokens[b].start..tokens[b].end].contains(':'));
        let range = bracket.is_some() && !subquery;
        if let Some(b) = bracket.filter(|_| range) {
            next = b + 1;
        }
        if !subquery {
            next = past_modifiers(expr, tokens, next);
        }
        let end = tokens.get(next - 1).map_or(braces_end, |t| t.end);
        Self {
            name,
            name_start: tokens[at].start,
            matchers,
            braces_end,
            range,
            end,
            end_token: next,
        }
    }

    /// Already one half of a union: it reads `exported_*`, or leaves the install namespace out.
    fn rewritten(&self, namespace: &str) -> bool {
        let outside = format!("!={}", quoted(namespace));
        self.matchers.iter().any(|m| match lex::split_matcher(m) {
            ("exported_namespace" | "exported_pod", _) => true,
            ("namespace", rest) => rest.replace(' ', "") == outside,
            _ => false,
        })
    }

    /// The directly scraped half: every namespace but the install's.
    fn direct(&self, namespace: &str) -> String {
        let mut all: Vec<String> = self.matchers.iter().map(|m| (*m).to_owned()).collect();
        all.push(format!("namespace!={}", quoted(namespace)));
        format!("{{{}}}", all.join(", "))
    }

    /// The relayed half: the install namespace's series that carry `exported_*`, the selector's
    /// own `namespace`/`pod` matchers applied to those.
    fn relayed(&self, namespace: &str) -> String {
        let mut all: Vec<String> = self
            .matchers
            .iter()
            .map(|m| match lex::split_matcher(m) {
                ("namespace" | "pod", _) => format!("exported_{m}"),
                _ => (*m).to_owned(),
            })
            .collect();
        all.push(format!("namespace={}", quoted(namespace)));
        all.push(r#"exported_namespace!="""#.to_owned());
        all.push(r#"exported_pod!="""#.to_owned());
        format!("{{{}}}", all.join(", "))
    }

    /// An instant selector with its modifiers, as the union of both halves.
    fn union(&self, expr: &str, namespace: &str) -> String {
        let modifiers = &expr[self.braces_end..self.end];
        let half = |braces: String| format!("{}{braces}{modifiers}", self.name);
        union(
            &half(self.direct(namespace)),
            &half(self.relayed(namespace)),
        )
    }
}

#[cfg(test)]
mod tests;
