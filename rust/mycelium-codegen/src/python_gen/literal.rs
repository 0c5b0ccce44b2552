//! Python string literals. Rust's `{:?}` is not Python syntax (`\u{1f344}`), so text that
//! reaches generated code goes through these.

use std::fmt::Write as _;

/// A double-quoted Python `str` literal, ASCII only: quotes, backslashes, control and
/// non-ASCII characters are escaped, so any schema text is safe to embed.
pub(crate) fn py_str(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    push_escaped(&mut out, text, true);
    out.push('"');
    out
}

/// A triple-quoted docstring. Line breaks stay real line breaks; everything that could end
/// the literal early or be read as an escape is escaped.
pub(crate) fn py_docstring(text: &str) -> String {
    let mut out = String::from("\"\"\"");
    // Every quote is escaped, so no run of three can close the literal early, and a quote
    // just before the closing `"""` stays part of the text.
    push_escaped(&mut out, text, false);
    out.push_str("\"\"\"");
    out
}

fn push_escaped(out: &mut String, text: &str, escape_newlines: bool) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' if escape_newlines => out.push_str("\\n"),
            '\n' => out.push('\n'),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_ascii() => out.push(c),
            c if (c as u32) <= 0xffff => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_python_would_misread() {
        assert_eq!(py_str("a\"b\\c\n\t\u{0}"), r#""a\"b\\c\n\t\x00""#);
        assert_eq!(py_str("é🍄"), r#""\u00e9\U0001f344""#);
    }

    #[test]
    fn docstrings_keep_line_breaks_and_never_close_early() {
        assert_eq!(py_docstring("a\nb"), "\"\"\"a\nb\"\"\"");
        assert_eq!(
            py_docstring("say \"\"\"hi\"\"\""),
            r#""""say \"\"\"hi\"\"\"""""#
        );
    }
}
