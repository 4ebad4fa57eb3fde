//! The kubelet's downward-API map files (`labels`, `annotations`): one `key="value"` per line, the
//! value quoted as Go's `strconv.Quote` quotes it. The collector reads its pod's; the relay and the
//! node collector read other pods' through the kubelet's directories.

/// Undoes Go's `strconv.Quote`: `"..."` with `\"`, `\\`, `\n`, `\t`, `\xNN`, `\uNNNN`, ... escapes.
pub fn unquote(quoted: &str) -> Option<String> {
    let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut bytes: Vec<u8> = Vec::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return None,
            '\\' => {
                let escape = chars.next()?;
                let simple = match escape {
                    'a' => Some('\x07'),
                    'b' => Some('\x08'),
                    'f' => Some('\x0c'),
                    'n' => Some('\n'),
                    'r' => Some('\r'),
                    't' => Some('\t'),
                    'v' => Some('\x0b'),
                    '\\' => Some('\\'),
                    '"' => Some('"'),
                    '\'' => Some('\''),
                    _ => None,
                };
                if let Some(s) = simple {
                    flush_bytes(&mut bytes, &mut out);
                    out.push(s);
                    continue;
                }
                match escape {
                    // `\xNN` and octal escapes are single bytes that may form UTF-8 together.
                    'x' => bytes.push(u8::from_str_radix(&take(&mut chars, 2)?, 16).ok()?),
                    '0'..='7' => {
                        let rest = take(&mut chars, 2)?;
                        let octal = format!("{escape}{rest}");
                        bytes.push(u8::from_str_radix(&octal, 8).ok()?);
                    }
                    'u' | 'U' => {
                        let width = if escape == 'u' { 4 } else { 8 };
                        let code = u32::from_str_radix(&take(&mut chars, width)?, 16).ok()?;
                        flush_bytes(&mut bytes, &mut out);
                        out.push(char::from_u32(code)?);
                    }
                    _ => return None,
                }
            }
            c => {
                flush_bytes(&mut bytes, &mut out);
                out.push(c);
            }
        }
    }
    flush_bytes(&mut bytes, &mut out);
    Some(out)
}

fn take(chars: &mut std::str::Chars<'_>, n: usize) -> Option<String> {
    let s: String = chars.by_ref().take(n).collect();
    (s.chars().count() == n).then_some(s)
}

fn flush_bytes(bytes: &mut Vec<u8>, out: &mut String) {
    if !bytes.is_empty() {
        out.push_str(&String::from_utf8_lossy(bytes));
        bytes.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn go_escapes() {
        let cases = [
            (r#""relay""#, Some("relay")),
            (r#""a \"q\" \\ b\nc""#, Some("a \"q\" \\ b\nc")),
            (r#""caf\xc3\xa9 \u00e9 \U0001F600""#, Some("café é 😀")),
            (r#""\101""#, Some("A")),
            (r#""bad\q""#, None),
            (r#""open"#, None),
            (r#"unquoted"#, None),
            (r#""in"side""#, None),
        ];
        for (quoted, want) in cases {
            assert_eq!(unquote(quoted).as_deref(), want, "{quoted}");
        }
    }

    proptest! {
        #[test]
        fn unquote_roundtrips_debug_quoting(s in "\\PC{0,40}") {
            // Rust's `{:?}` for str is close to Go's strconv.Quote for printable text.
            let quoted = format!("{s:?}");
            if !quoted.contains("\\u{") {
                prop_assert_eq!(unquote(&quoted), Some(s));
            }
        }
    }
}
