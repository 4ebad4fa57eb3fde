//! Just enough of PromQL's lexer for [`super::rewrite`]: identifiers, strings, `{…}` and `[…]`
//! blocks, parentheses and commas, each with its byte span. Everything else is `Other`. No I/O.

use super::RewriteError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Token {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

/// The tokens of `expr`, covering it without gaps.
pub(super) fn lex(expr: &str) -> Result<Vec<Token>, RewriteError> {
    let bytes = expr.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = bytes.get(i) {
        let (kind, end) = match c {
            b'"' | b'\'' | b'`' => (Kind::Str, past_string(bytes, i)?),
            b'{' => (Kind::Braces, past_block(bytes, i, b'}')?),
            b'[' => (Kind::Brackets, past_block(bytes, i, b']')?),
            b'(' => (Kind::Open, i + 1),
            b')' => (Kind::Close, i + 1),
            b',' => (Kind::Comma, i + 1),
            b'#' => (Kind::Space, skip(bytes, i, |b| b != b'\n')),
            c if c.is_ascii_whitespace() => {
                (Kind::Space, skip(bytes, i, |b| b.is_ascii_whitespace()))
            }
            c if c.is_ascii_digit() || c == b'$' || (c == b'.' && next_is_digit(bytes, i)) => (
                Kind::Number,
                skip(bytes, i + 1, |b| {
                    b.is_ascii_alphanumeric() || b == b'_' || b == b'.'
                }),
            ),
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' => (
                Kind::Ident,
                skip(bytes, i, |b| {
                    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
                }),
            ),
            // One whole character, so that every span ends on a char boundary.
            _ => (
                Kind::Other,
                i + expr[i..].chars().next().map_or(1, char::len_utf8),
            ),
        };
        tokens.push(Token {
            kind,
            start: i,
            end,
        });
        i = end;
    }
    Ok(tokens)
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

/// Just past the string opening at `start`; backslash escapes in `"` and `'` strings only.
fn past_string(bytes: &[u8], start: usize) -> Result<usize, RewriteError> {
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
    Err(RewriteError::Unterminated { at: start })
}

/// Just past the `close` that ends the block opening at `start`, strings inside skipped.
fn past_block(bytes: &[u8], start: usize, close: u8) -> Result<usize, RewriteError> {
    let mut i = start + 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' | b'\'' | b'`' => i = past_string(bytes, i)?,
            b if b == close => return Ok(i + 1),
            _ => i += 1,
        }
    }
    Err(RewriteError::Unterminated { at: start })
}

/// The comma-separated items of a `{…}` block's inside (commas in strings kept), each trimmed,
/// empty ones left out.
pub(super) fn matchers(inside: &str) -> Vec<&str> {
    let bytes = inside.as_bytes();
    let (mut items, mut from, mut i) = (Vec::new(), 0, 0);
    while let Some(&b) = bytes.get(i) {
        match b {
            // Well-formed: the block was lexed already.
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
pub(super) fn split_matcher(matcher: &str) -> (&str, &str) {
    let end = skip(matcher.as_bytes(), 0, |b| {
        b.is_ascii_alphanumeric() || b == b'_'
    });
    (&matcher[..end], matcher[end..].trim_start())
}
