//! Just enough of PromQL's lexer for [`super::rewrite`], and for the tests that read which series
//! the rules and dashboards select: identifiers, strings, `{…}` and `[…]` blocks, parentheses and
//! commas, each with its byte span. Everything else is `Other`. No I/O.

use super::RewriteError;

/// Clauses whose parenthesised list holds label names.
pub const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A metric, function, keyword or label name (`:` included, as in record names).
    Ident,
    /// A number or duration (`5m`, `1e3`, `0x1f`), or a Grafana variable (`$__rate_interval`).
    Number,
    /// A quoted string.
    Str,
    /// `{…}` with its braces.
    Braces,
    /// `[…]` with its brackets.
    Brackets,
    Open,
    Close,
    Comma,
    /// Whitespace and `#` comments.
    Space,
    /// An operator or any other character.
    Other,
}

/// One token: its kind and its byte span, which starts and ends on char boundaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

impl Token {
    /// The token's text in `expr`, the expression it was read from.
    pub fn text<'e>(&self, expr: &'e str) -> &'e str {
        expr.get(self.start..self.end).unwrap_or_default()
    }
}

/// The tokens of `expr`, covering it without gaps; a string or block that never closes runs to
/// the end.
pub fn tokens(expr: &str) -> Vec<Token> {
    scan(expr).0
}

/// The tokens of `expr`, covering it without gaps; an error for a string or block that never
/// closes.
pub(super) fn lex(expr: &str) -> Result<Vec<Token>, RewriteError> {
    match scan(expr) {
        (tokens, None) => Ok(tokens),
        (_, Some(at)) => Err(RewriteError::Unterminated { at }),
    }
}

/// The tokens, and where the first string or block that never closes opens.
fn scan(expr: &str) -> (Vec<Token>, Option<usize>) {
    let bytes = expr.as_bytes();
    let (mut tokens, mut unterminated) = (Vec::new(), None);
    let mut i = 0;
    while let Some(&c) = bytes.get(i) {
        let (kind, end) = match c {
            b'"' | b'\'' | b'`' => (Kind::Str, past_string(bytes, i)),
            b'{' => (Kind::Braces, past_block(bytes, i, b'}')),
            b'[' => (Kind::Brackets, past_block(bytes, i, b']')),
            b'(' => (Kind::Open, Ok(i + 1)),
            b')' => (Kind::Close, Ok(i + 1)),
            b',' => (Kind::Comma, Ok(i + 1)),
            b'#' => (Kind::Space, Ok(skip(bytes, i, |b| b != b'\n'))),
            c if c.is_ascii_whitespace() => {
                (Kind::Space, Ok(skip(bytes, i, |b| b.is_ascii_whitespace())))
            }
            c if c.is_ascii_digit() || c == b'$' || (c == b'.' && next_is_digit(bytes, i)) => (
                Kind::Number,
                Ok(skip(bytes, i + 1, |b| {
                    b.is_ascii_alphanumeric() || b == b'_' || b == b'.'
                })),
            ),
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' => (
                Kind::Ident,
                Ok(skip(bytes, i, |b| {
                    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
                })),
            ),
            // One whole character, so that every span ends on a char boundary.
            _ => (
                Kind::Other,
                Ok(i + expr[i..].chars().next().map_or(1, char::len_utf8)),
            ),
        };
        let end = end.unwrap_or_else(|at| {
            unterminated.get_or_insert(at);
            bytes.len()
        });
        tokens.push(Token {
            kind,
            start: i,
            end,
        });
        i = end;
    }
    (tokens, unterminated)
}

/// The first token at or after `from` that is not space.
pub fn next_solid(tokens: &[Token], from: usize) -> Option<usize> {
    (from..tokens.len()).find(|&i| tokens[i].kind != Kind::Space)
}

fn next_is_digit(bytes: &[u8], i: usize) -> bool {
    bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
}

fn skip(bytes: &[u8], from: usize, keep: impl Fn(u8) -> bool) -> usize {
    let mut i = from;
    while bytes.get(i).is_some_and(|&b| keep(b)) {
        i += 1;
    }
    i
}

/// Just past the string opening at `start`; backslash escapes in `"` and `'` strings only. An
/// `Err` says where the string that never closes opens.
fn past_string(bytes: &[u8], start: usize) -> Result<usize, usize> {
    let quote = bytes[start];
    let mut i = start + 1;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' && quote != b'`' {
            i += 2;
        } else if b == quote {
            return Ok(i + 1);
        } else {
            i += 1;
        }
    }
    Err(start)
}

/// Just past the `close` that ends the block opening at `start`, strings inside skipped. An `Err`
/// says where the block or string that never closes opens.
fn past_block(bytes: &[u8], start: usize, close: u8) -> Result<usize, usize> {
    let mut i = start + 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' | b'\'' | b'`' => i = past_string(bytes, i)?,
            b if b == close => return Ok(i + 1),
            _ => i += 1,
        }
    }
    Err(start)
}

/// The comma-separated items of a `{…}` block's inside (commas in strings kept), each trimmed,
/// empty ones left out.
pub fn matchers(inside: &str) -> Vec<&str> {
    let bytes = inside.as_bytes();
    let (mut items, mut from, mut i) = (Vec::new(), 0, 0);
    while let Some(&b) = bytes.get(i) {
        match b {
            // A string that never closes runs to the end, as in `tokens`.
            b'"' | b'\'' | b'`' => i = past_string(bytes, i).unwrap_or(bytes.len()),
            b',' => {
                items.push(inside[from..i].trim());
                i += 1;
                from = i;
            }
            _ => i += 1,
        }
    }
    items.push(inside[from..].trim());
    items.retain(|m| !m.is_empty());
    items
}

/// A matcher's label name and the rest (operator and value, spaces trimmed).
pub fn split_matcher(matcher: &str) -> (&str, &str) {
    let end = skip(matcher.as_bytes(), 0, |b| {
        b.is_ascii_alphanumeric() || b == b'_'
    });
    (&matcher[..end], matcher[end..].trim_start())
}
