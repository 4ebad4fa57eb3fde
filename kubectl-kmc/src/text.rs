//! What makes text from outside safe to print and to paste; no I/O.
//!
//! Label values in Prometheus answers, annotations of a pod, messages of the API server and of
//! Prometheus are chosen by whoever wrote them, a tenant included: a VM named
//! `vm;touch /tmp/x;#` or one with a newline and an escape sequence in its name must neither run
//! a command when a printed line is pasted, nor add lines, nor drive the terminal. So:
//!
//! - every line of text output goes through [`escape`] (control characters, bidirectional
//!   overrides and backslashes written as Rust escapes, so a line stays one line);
//! - JSON is written with [`to_json`], which also escapes C1 controls and bidirectional
//!   overrides that JSON allows raw;
//! - a name reaches a printed command only when it is a Kubernetes name ([`dns1123_label`],
//!   [`dns1123_subdomain`]), and then [`shell_quote`]d as well.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io;

use serde::Serialize;

/// Why a name cannot be a Kubernetes object's name. The name is printed as given: every output
/// escapes its lines.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{name} is not a valid {kind} name: {why}")]
    Invalid {
        name: String,
        kind: &'static str,
        why: &'static str,
    },
}

/// The longest DNS-1123 label (a namespace's name).
const LABEL_MAX: usize = 63;
/// The longest DNS-1123 subdomain (most objects' names).
const SUBDOMAIN_MAX: usize = 253;

/// `text` with every character a terminal could act on written as an escape: control
/// characters (C0, DEL, C1: `\n`, `\r`, `\t`, `\u{1b}`, …), the bidirectional overrides and
/// isolates that reorder what is shown, and the backslash itself, so that an escape in the
/// output always means an escape in the value.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c == '\\' || c.is_control() || is_bidi_control(c)
}

/// Unicode's explicit bidirectional formatting characters (UAX #9): LRE, RLE, PDF, LRO, RLO,
/// LRI, RLI, FSI, PDI, and the marks LRM, RLM, ALM.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

/// `word` as one shell word: unchanged when it holds only characters no POSIX shell treats
/// specially, else in single quotes (a `'` inside written `'\''`).
pub fn shell_quote(word: &str) -> Cow<'_, str> {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b));
    if plain {
        return Cow::Borrowed(word);
    }
    Cow::Owned(format!("'{}'", word.replace('\'', r"'\''")))
}

/// A DNS-1123 label (RFC 1123, as Kubernetes checks it): a namespace's name.
pub fn dns1123_label(name: &str, kind: &'static str) -> Result<(), NameError> {
    let invalid = |why| NameError::Invalid {
        name: name.to_owned(),
        kind,
        why,
    };
    if name.is_empty() || name.len() > LABEL_MAX {
        return Err(invalid("it must have 1 to 63 characters"));
    }
    if !label_ok(name) {
        return Err(invalid(
            "it must consist of lower case letters, digits and '-', and start and end with a letter or digit",
        ));
    }
    Ok(())
}

/// A DNS-1123 subdomain: a VirtualMachine's, a pod's or a webhook configuration's name.
pub fn dns1123_subdomain(name: &str, kind: &'static str) -> Result<(), NameError> {
    let invalid = |why| NameError::Invalid {
        name: name.to_owned(),
        kind,
        why,
    };
    if name.is_empty() || name.len() > SUBDOMAIN_MAX {
        return Err(invalid("it must have 1 to 253 characters"));
    }
    if !name.split('.').all(label_ok) {
        return Err(invalid(
            "it must consist of lower case letters, digits, '-' and '.', and each part start and end with a letter or digit",
        ));
    }
    Ok(())
}

fn label_ok(part: &str) -> bool {
    let bytes = part.as_bytes();
    let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.first().is_some_and(edge)
        && bytes.last().is_some_and(edge)
        && bytes.iter().all(|b| edge(b) || *b == b'-')
}

/// `value` as pretty JSON, with C1 controls and bidirectional overrides escaped as `\uXXXX`
/// (serde_json escapes only what JSON requires: C0 controls, `"` and `\`).
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, SafeFormatter::new());
    value.serialize(&mut serializer)?;
    out.push(b'\n');
    // serde_json writes UTF-8 only.
    Ok(String::from_utf8(out).unwrap_or_default())
}

/// serde_json's pretty printer, escaping what a terminal could act on inside strings.
struct SafeFormatter {
    pretty: serde_json::ser::PrettyFormatter<'static>,
}

impl SafeFormatter {
    fn new() -> Self {
        Self {
            pretty: serde_json::ser::PrettyFormatter::new(),
        }
    }
}

impl serde_json::ser::Formatter for SafeFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        for c in fragment.chars() {
            if c.is_control() || is_bidi_control(c) {
                write!(writer, "\\u{:04x}", u32::from(c))?;
            } else {
                let mut buf = [0; 4];
                writer.write_all(c.encode_utf8(&mut buf).as_bytes())?;
            }
        }
        Ok(())
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.pretty.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.pretty.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "vm;touch /tmp/x;#\n\u{1b}[31mred\u{1b}]0;title\u{7}\r\u{9b}2J\u{202e}";

    #[test]
    fn escapes_what_a_terminal_acts_on() {
        let cases = [
            ("vm-1", "vm-1"),
            ("a\\b", "a\\\\b"),
            ("a\nb", "a\\nb"),
            ("a\tb\r", "a\\tb\\r"),
            ("\u{1b}[2J", "\\u{1b}[2J"),
            ("bell\u{7}", "bell\\u{7}"),
            ("del\u{7f}", "del\\u{7f}"),
            ("csi\u{9b}", "csi\\u{9b}"),
            ("rlo\u{202e}txt", "rlo\\u{202e}txt"),
            ("≥ 1.0 →", "≥ 1.0 →"),
        ];
        for (text, want) in cases {
            assert_eq!(escape(text), want, "{text:?}");
        }
        let escaped = escape(HOSTILE);
        assert!(
            !escaped.chars().any(needs_escape_but_backslash),
            "{escaped}"
        );
        assert_eq!(escaped.lines().count(), 1);
    }

    fn needs_escape_but_backslash(c: char) -> bool {
        c != '\\' && needs_escape(c)
    }

    #[test]
    fn quotes_shell_words() {
        let cases = [
            ("vm-1", "vm-1"),
            ("", "''"),
            ("a b", "'a b'"),
            ("vm;touch /tmp/x;#", "'vm;touch /tmp/x;#'"),
            ("it's", r"'it'\''s'"),
            ("$(id)", "'$(id)'"),
            ("{\"a\":1}", "'{\"a\":1}'"),
        ];
        for (word, want) in cases {
            assert_eq!(shell_quote(word), want, "{word:?}");
        }
    }

    #[test]
    fn kubernetes_names() {
        let labels = [
            ("vms", true),
            ("a", true),
            ("a-1", true),
            ("-a", false),
            ("a-", false),
            ("A", false),
            ("a.b", false),
            ("", false),
            ("vm;touch /tmp/x;#", false),
            ("vm\n", false),
        ];
        for (name, ok) in labels {
            assert_eq!(dns1123_label(name, "namespace").is_ok(), ok, "{name:?}");
        }
        assert!(dns1123_label(&"a".repeat(63), "namespace").is_ok());
        assert!(dns1123_label(&"a".repeat(64), "namespace").is_err());
        let subdomains = [
            ("vm-1", true),
            ("vm.1", true),
            ("a..b", false),
            (".a", false),
            ("a.", false),
            ("Vm", false),
            ("vm_1", false),
            ("vm\u{1b}[31m", false),
        ];
        for (name, ok) in subdomains {
            assert_eq!(dns1123_subdomain(name, "VM").is_ok(), ok, "{name:?}");
        }
        assert!(dns1123_subdomain(&"a".repeat(254), "VM").is_err());
        let error = dns1123_subdomain("vm;x\n", "VirtualMachine").unwrap_err();
        assert_eq!(
            escape(&error.to_string()),
            "vm;x\\n is not a valid VirtualMachine name: it must consist of lower case letters, digits, '-' and '.', and each part start and end with a letter or digit"
        );
    }

    #[test]
    fn json_escapes_c1_and_bidi_and_stays_json() {
        let text = to_json(&serde_json::json!({"vm": HOSTILE})).unwrap();
        assert!(
            !text
                .chars()
                .any(|c| c != '\n' && needs_escape_but_backslash(c)),
            "{text}"
        );
        assert!(text.contains("\\u001b[31m"), "{text}");
        assert!(text.contains("\\u009b"), "{text}");
        assert!(text.contains("\\u202e"), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["vm"], HOSTILE);
        assert_eq!(
            to_json(&serde_json::json!([1, {"a": "b"}])).unwrap(),
            "[\n  1,\n  {\n    \"a\": \"b\"\n  }\n]\n"
        );
    }
}
