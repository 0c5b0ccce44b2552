//! OCaml string literals and comment text.

use std::fmt::Write as _;

/// A double-quoted OCaml string literal of the UTF-8 bytes of `text`, ASCII only:
/// quotes, backslashes, control characters and every non-ASCII byte are escaped.
pub(crate) fn ml_str(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for byte in text.bytes() {
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\r' => out.push_str("\\r"),
            0x20..=0x7e => out.push(char::from(byte)),
            other => {
                let _ = write!(out, "\\x{other:02x}");
            }
        }
    }
    out.push('"');
    out
}

/// `text` made safe inside `(* ... *)`: OCaml lexes string and character literals and
/// nested comments inside comments, so quotes and comment brackets are defused.
pub(crate) fn ml_comment(text: &str) -> String {
    text.replace('"', "'")
        .replace("(*", "( *")
        .replace("*)", "* )")
        .replace("{|", "{ |")
        .replace("|}", "| }")
        .chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_literals_escape_per_byte() {
        assert_eq!(ml_str("a\"b\\c\n"), r#""a\"b\\c\n""#);
        assert_eq!(ml_str("é\u{0}"), r#""\xc3\xa9\x00""#);
    }

    #[test]
    fn comments_cannot_be_closed_or_unbalanced_by_the_text() {
        assert_eq!(
            ml_comment("say \"hi\" (* x *) {|q|}"),
            "say 'hi' ( * x * ) { |q| }"
        );
    }
}
